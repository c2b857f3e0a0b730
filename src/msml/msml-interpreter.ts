import type { Logger } from 'pino';
import { MsmlError, RecorderError } from '../errors.js';
import { MsmlCode } from './msml-codes.js';
import { boundedList, parseMsml, type MsmlRequest } from './msml-parse.js';
import { resultBody } from './msml-respond.js';

export interface MsmlAnswer {
  /** MSML result code. */
  code: number;
  body: string;
  /** The request element the code is about (dialogstart, send, …), or "invalid" when the body did not parse. */
  verb?: string;
  /** Work to do once the answer was sent (MSML events that must follow the 200 OK, e.g. after a dialogend). */
  after?: () => Promise<void>;
}

/** Longest MSML `<description>` we send (a request of any size gets an answer of bounded size). */
export const DESCRIPTION_LIMIT = 512;
export const boundedText = (s: string): string => (s.length > DESCRIPTION_LIMIT ? `${s.slice(0, DESCRIPTION_LIMIT - 1)}…` : s);

export type DialogStart = Extract<MsmlRequest, { kind: 'dialogstart' }>;

/** What MSML drives: a recording session (CallSession). `D` is its control dialog's type. */
export interface MsmlControlled<D> {
  /**
   * Starts a recording for a `<dialogstart>` on `dialog`, from `atWallMs` (when its request arrived); throws MsmlError
   * (already running, bad dest, …).
   */
  startRecording(r: DialogStart, dialog: D, atWallMs: number): MsmlAnswer;
  /** Stops the running recording (if any) at `atWallMs`; its finalization goes on without the caller waiting. */
  stopRecording(reason: string, notify?: boolean, atWallMs?: number): Promise<void>;
  pause(): void;
  resume(): void;
  /** Whether an MSML dialog or conference id names the running recording. */
  names(id: string): boolean;
  /** The conference id a `<createconference>` gets. */
  conferenceId(name: string | null): string;
}

/**
 * The MSML a media server takes on a recording session (RFC 5707 and what SIP Server sends): `dialogstart` with
 * `record`, `send` pause / resume / terminate, `dialogend`, `createconference` / `destroyconference`; join, unjoin
 * and the modify verbs are accepted as no-ops (the legs are relayed and recorded already). Every request gets an
 * answer, errors as MSML 4xx/5xx results with a bounded description. Events a request causes (the exit events of a
 * recording it stops) wait until its answer is out, as RFC 5707 orders them: `afterAnswer`.
 */
export class MsmlInterpreter<D> {
  private inRequest = false;
  private deferred: (() => Promise<void>)[] = [];

  constructor(
    private readonly target: MsmlControlled<D>,
    private readonly log: Logger,
  ) {}

  /**
   * Handles one MSML body from an INFO on `dialog` that arrived at `atWallMs` (a recording starts or stops at that
   * instant). Never throws: errors become MSML results.
   */
  async handle(body: string, dialog: D, atWallMs = Date.now()): Promise<MsmlAnswer> {
    let verb = 'invalid';
    try {
      const doc = parseMsml(body);
      if (doc.kind !== 'requests') {
        throw new MsmlError(`Unsupported: a media server does not accept an MSML <${doc.kind}>`, MsmlCode.UNSUPPORTED);
      }
      let last: MsmlAnswer = { code: MsmlCode.OK, body: resultBody(MsmlCode.OK) };
      this.inRequest = true;
      try {
        for (const r of doc.requests) {
          verb = r.kind;
          last = await this.apply(r, dialog, atWallMs);
        }
      } finally {
        this.inRequest = false;
      }
      if (doc.ignored.length) this.log.warn({ ignored: boundedList(doc.ignored), count: doc.ignored.length }, 'MSML elements ignored');
      const deferred = this.deferred.splice(0);
      last.verb = verb;
      return deferred.length ? { ...last, after: async () => { for (const d of deferred) await d(); } } : last;
    } catch (err) {
      const code = err instanceof RecorderError ? err.msmlCode : MsmlCode.INTERNAL;
      const description = boundedText(err instanceof Error ? err.message : String(err));
      this.log.warn({ code, description }, 'MSML request refused');
      return { code, body: resultBody(code, { description }), verb };
    }
  }

  /** Runs `send` now, or, while a request is being applied, once its answer is out. */
  async afterAnswer(send: () => Promise<void>): Promise<void> {
    if (this.inRequest) this.deferred.push(send);
    else await send();
  }

  private async apply(r: MsmlRequest, dialog: D, atWallMs: number): Promise<MsmlAnswer> {
    const ok = (): MsmlAnswer => ({ code: MsmlCode.OK, body: resultBody(MsmlCode.OK) });
    const named = (id: string): void => {
      if (!this.target.names(id)) throw new MsmlError(`No such dialog: ${id}`, MsmlCode.NO_SUCH_OBJECT);
    };
    switch (r.kind) {
      case 'dialogstart':
        return this.target.startRecording(r, dialog, atWallMs);
      case 'dialogend':
        named(r.id);
        await this.target.stopRecording('record.terminate', true, atWallMs);
        return ok();
      case 'send':
        named(r.target);
        switch (r.event.toLowerCase()) {
          case 'pause':
          case 'suspend':
            this.target.pause();
            break;
          case 'resume':
            this.target.resume();
            break;
          case 'terminate':
          case 'stop':
            await this.target.stopRecording('record.terminate', true, atWallMs);
            break;
          default:
            throw new MsmlError(`Unsupported event "${r.event}": pause, resume and terminate are`, MsmlCode.UNSUPPORTED);
        }
        return ok();
      case 'createconference':
        return { code: MsmlCode.OK, body: resultBody(MsmlCode.OK, { confId: this.target.conferenceId(r.name ?? null) }) };
      case 'destroyconference':
        await this.target.stopRecording('record.terminate', true, atWallMs);
        return ok();
      default:
        // join/unjoin/modifystream/modifyconference: the legs are already relayed and recorded
        return ok();
    }
  }
}
