import type Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import { bounded } from '../bounded.js';
import { BodyTooLargeError, RecorderError, SignalingError } from '../errors.js';
import type { CallSession } from '../session/call-session.js';
import { BYE_TIMEOUT_MS, type LegDialog } from '../session/leg.js';
import type { SipAppDeps } from './sip-app-deps.js';

/** A SIP Warning header (RFC 3261 20.43) carrying why a request was refused. */
export function warning(text: string, agent = 'msml-recorder'): Record<string, string> {
  return { Warning: `399 ${agent} "${text.replace(/"/g, "'").slice(0, 200)}"` };
}

/** The sequence number of a request's CSeq header (an ACK carries its INVITE's). */
export function cseqOf(req: Srf.SrfRequest): number {
  return parseInt(req.get('CSeq') ?? '', 10);
}

/** A request's media type, lower-cased, without parameters. */
export function contentType(req: Srf.SrfRequest): string {
  return (req.get('Content-Type') ?? '').split(';')[0].trim().toLowerCase();
}

/** Refuses a body over `maxBytes` (sip.maxBodyBytes) with 413 before anything parses it. */
export function checkBodySize(req: Srf.SrfRequest, maxBytes: number): void {
  const n = Buffer.byteLength(req.body ?? '');
  if (n > maxBytes) throw new BodyTooLargeError(`body of ${n} bytes is over sip.maxBodyBytes (${maxBytes})`);
}

/** Adapts a drachtio-srf Dialog to what a leg needs. */
export function legDialog(dlg: Srf.Dialog): LegDialog {
  const d = dlg as unknown as {
    id: string;
    sip: { callId: string };
    request(opts: object): Promise<unknown>;
    destroy(opts?: object): Promise<unknown>;
  };
  return {
    id: d.id,
    sip: d.sip,
    request: (opts) => d.request(opts),
    destroy: (opts) => d.destroy(opts),
  };
}

/**
 * Answers an INVITE that failed with its error's SIP status and a Warning (a CANCEL's 487 was answered already),
 * after undoing what it had set up: the leg's media if it was opened, the session if no leg of it is left.
 */
export function refuseInvite(
  deps: Pick<SipAppDeps, 'registry' | 'observe'>,
  at: { session: CallSession | null; openedLeg: number | null; res: Srf.SrfResponse; log: Logger; what: string },
  err: unknown,
): void {
  const { session, openedLeg, res, log } = at;
  if (session && openedLeg !== null) void session.media.closeLeg(openedLeg);
  if (session && session.legs.length === 0) {
    deps.registry.remove(session);
    void session.media.close();
  }
  const status = err instanceof RecorderError ? err.sipStatus : ((err as { status?: number }).status ?? 500);
  const text = err instanceof Error ? err.message : String(err);
  if (status === 487) {
    log.info(`${at.what} canceled`);
    return;
  }
  log.warn({ status, err: text }, `${at.what} refused`);
  deps.observe?.invite(status);
  if (!res.finalResponseSent) res.send(status, { headers: warning(text) });
}

/** How long the 200 to an INVITE may wait for drachtio-server's confirmation (SIP's Timer H, 64 × T1). */
export const ANSWER_TIMEOUT_MS = 32_000;

/**
 * Sends the 200 with `sdp` (drachtio-srf createUAS) and hands the new dialog to `onDialog` in the same turn that
 * creates it: drachtio-srf handles a BYE or re-INVITE that arrives right behind the ACK synchronously, possibly in
 * the same read as the 200's echo, before a promise continuation would run — the callback form lets the dialog's
 * listeners be attached first. Rejects as createUAS does (487 on CANCEL), or with SignalingError when drachtio-server
 * has not confirmed the 200 within `timeoutMs` (a dialog that comes after that is ended with a BYE).
 */
export function answerInvite<T>(srf: Srf, req: Srf.SrfRequest, res: Srf.SrfResponse, sdp: string, onDialog: (dlg: Srf.Dialog) => T, timeoutMs = ANSWER_TIMEOUT_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let failed = false;
    // drachtio-server never confirming the 200 (its transaction gone) must not hold the call's ports for ever
    const timer = setTimeout(() => {
      failed = true;
      reject(new SignalingError(`drachtio-server did not confirm the 200 within ${timeoutMs} ms`, { sipStatus: 500 }));
    }, timeoutMs);
    srf.createUAS(req, res, { localSdp: sdp }, (err: unknown, dlg: Srf.Dialog) => {
      clearTimeout(timer);
      if (err) {
        failed = true;
        return reject(err);
      }
      // drachtio-srf can report an error and still send the 200 (a request without Contact): end that dialog
      if (failed) return void bounded(() => legDialog(dlg).destroy(), BYE_TIMEOUT_MS);
      try {
        resolve(onDialog(dlg));
      } catch (e) {
        reject(e);
      }
    });
  });
}
