import type { Logger } from 'pino';
import { MsmlError } from '../errors.js';
import { destCollection } from '../jobs/deliver-recording.js';
import { MsmlCode } from '../msml/msml-codes.js';
import { boundedText, MsmlInterpreter, type DialogStart, type MsmlAnswer, type MsmlControlled } from '../msml/msml-interpreter.js';
import { eventBody, resultBody } from '../msml/msml-respond.js';
import { Recording, type FinalizedRecording, type RecordingDeps } from '../recording/recording.js';
import { formatOf } from '../config.js';
import type { RecordingProfile } from '../profiles.js';
import type { RecordingUri } from './recording-uri.js';
import type { Leg, LegDialog, PartyRole } from './leg.js';
import { SAMPLES_PER_MS } from '../media/sample-clock.js';

export interface SessionDeps {
  recording: Omit<RecordingDeps, 'log'>;
  /** Which role is the left channel (slot 0). */
  leftChannel: PartyRole;
  maxDurationMs: number;
  /** A call none of whose parties sent RTP for this long is ended (0: never). Parties on hold do not count. */
  mediaTimeoutMs: number;
  /** Hosts an MSML record dest may name. */
  allowedDestHosts: string[];
  /** Called with every finalized recording (delivery hooks in here). */
  onFinalized: (r: FinalizedRecording) => void;
  /** Called when a recording could not be finalized (disk full): its files stay in the spool for recovery. */
  onFinalizeFailed?: (err: Error) => void;
  /** Called when a recording's files could not be opened (disk full): it ends with nothing written. */
  onOpenFailed?: (err: Error) => void;
}

/** Packets of each slot kept while nothing records, for a recording that starts between them (see `lastAudio`). */
const PREROLL_PACKETS = 4;

interface ActiveRecording {
  rec: Recording;
  dialogId: string;
  name: string;
  control: LegDialog;
  wantsExit: boolean;
  maxTimer: NodeJS.Timeout;
}

/**
 * A recording session: every dialog with the same MSML conf-id (one per call party in 3PCC), their roles and
 * pairing, and the recording that spans them, driven by MSML (`msml/msml-interpreter.ts`). `close()` is idempotent
 * and cascades: recording, then legs.
 */
export class CallSession implements MsmlControlled<LegDialog> {
  readonly legs: Leg[] = [];
  private active: ActiveRecording | null = null;
  /** The MSML that drives it (events a request causes wait until its answer is out). */
  private readonly msml: MsmlInterpreter<LegDialog>;
  private closing: Promise<void> | null = null;
  private recordings = 0;
  onClosed: () => void = () => undefined;

  constructor(
    readonly key: string,
    readonly uri: RecordingUri,
    readonly callUUID: string | null,
    private readonly deps: SessionDeps,
    readonly log: Logger,
    /** The IVR profile its recordings use (destinations, format); null: `deps.recording` as it is. */
    readonly profile: RecordingProfile | null = null,
  ) {
    this.msml = new MsmlInterpreter(this, log);
  }

  private rolesGiven = 0;

  /**
   * The role of the next leg: the first dialog of a conf-id is the far end, the second the recorded DN (SIP Server
   * INVITEs the parties in that order; nothing in the messages says it otherwise). Counted at INVITE time, so two
   * INVITEs racing each other still get different roles.
   */
  nextRole(): PartyRole {
    return this.rolesGiven++ === 0 ? 'other' : 'recordDN';
  }

  /** Notes hold/unhold and similar in the running recording's history. */
  noteCallEvent(type: string): void {
    this.active?.rec.event(type);
  }

  /** The recording slot (0 = left) of a role, or of an m-line index in a single two-m-line dialog. */
  slotOf(role: PartyRole): number {
    return role === this.deps.leftChannel ? 0 : 1;
  }

  addLeg(leg: Leg): void {
    this.legs.push(leg);
    this.link();
  }

  /**
   * Pairs the media of the two parties for relaying: the newest live single-stream leg of each role (a later leg of
   * a role, e.g. after a transfer, takes over). A two-m-line dialog is a recording fork: nothing to relay.
   */
  private link(): void {
    for (const l of this.legs) for (const s of l.streams) s.peer = null;
    const newest = (role: PartyRole): Leg | undefined =>
      [...this.legs].reverse().find((l) => l.role === role && !l.ended && l.streams.length === 1);
    const a = newest('other');
    const b = newest('recordDN');
    if (!a || !b) return;
    a.streams[0].peer = b.streams[0];
    b.streams[0].peer = a.streams[0];
  }

  /**
   * The newest packets' audio of each slot while nothing records (a ring of PREROLL_PACKETS). A recording starts
   * between two packets: what of them falls after its start is its first audio, so it has sound from its first
   * sample. More than one packet: a leg's clock is anchored to its first packet's arrival, and until the drift
   * tracking corrects it (its first second) a late first packet puts the later ones ahead of their arrival.
   */
  private readonly lastAudio = [0, 1].map(() => Array.from({ length: PREROLL_PACKETS }, () => ({ at: 0, n: 0, pcm: new Int16Array(320) })));
  private readonly lastAudioNext = [0, 0];

  /** Audio from a leg's stream. */
  readonly sink = (slot: number, at: number, pcm: Int16Array): void => {
    if (this.active) {
      this.active.rec.write(slot, at, pcm);
      return;
    }
    const ring = this.lastAudio[slot];
    if (!ring) return;
    const last = ring[this.lastAudioNext[slot]];
    this.lastAudioNext[slot] = (this.lastAudioNext[slot] + 1) % PREROLL_PACKETS;
    if (last.pcm.length < pcm.length) last.pcm = new Int16Array(pcm.length);
    last.pcm.set(pcm);
    last.at = at;
    last.n = pcm.length;
  };

  /** Periodic work: release due packets, encode what is old enough, end the call if its media stopped. */
  tick(now = performance.now()): void {
    for (const l of this.legs) for (const s of l.streams) s.poll();
    this.active?.rec.tick();
    const limit = this.deps.mediaTimeoutMs;
    if (limit > 0 && !this.closed && this.legs.length > 0 && this.silentMs(now) >= limit) {
      this.log.warn({ silentMs: Math.round(this.silentMs(now)), timeoutMs: limit }, 'no RTP from any party: ending the call');
      void this.close('media timeout', 'media-timeout');
    }
  }

  /**
   * How long no party has sent RTP: the shortest silence of the streams of live legs that are not on hold (a held
   * party is expected to be silent). 0 when every such stream is on hold: a call on hold is not dead.
   */
  silentMs(now: number): number {
    let least = Number.POSITIVE_INFINITY;
    for (const l of this.legs) {
      if (l.ended) continue;
      for (const s of l.streams) if (!s.held) least = Math.min(least, now - s.lastPacketAt);
    }
    return least === Number.POSITIVE_INFINITY ? 0 : least;
  }

  /** Handles one MSML body from an INFO on `dialog`. Never throws: errors become MSML results. */
  handleMsml(body: string, dialog: LegDialog): Promise<MsmlAnswer> {
    return this.msml.handle(body, dialog);
  }

  /** The running recording, if any. */
  get recording(): Recording | null {
    return this.active?.rec ?? null;
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  /** Whether an MSML dialog or conference id names the running recording. */
  names(id: string): boolean {
    const a = this.active;
    if (!a) return false;
    return id === a.dialogId || id.endsWith(`/dialog:${a.name}`) || id === a.name || id === `dialog:${a.name}` || id.endsWith('/record') || id === 'record' || id === this.uri.confId || id === `conf:${this.uri.confId}`;
  }

  conferenceId(name: string | null): string {
    return `conf:${name ?? this.uri.confId ?? this.key}`;
  }

  pause(): void {
    this.active?.rec.pause();
  }

  resume(): void {
    this.active?.rec.resume();
  }

  /** Starts a recording for a `<dialogstart>`: capture at once, the files opened meanwhile. Throws MsmlError. */
  startRecording(r: DialogStart, dialog: LegDialog): MsmlAnswer {
    if (this.closed) throw new MsmlError('Session is ending', MsmlCode.NO_SUCH_OBJECT);
    if (this.active) throw new MsmlError(`A recording is already running: ${this.active.dialogId}`, MsmlCode.ALREADY_EXISTS);
    const profile = this.profile;
    try {
      destCollection(r.record.dest, profile?.allowedDestHosts ?? this.deps.allowedDestHosts);
    } catch (err) {
      throw new MsmlError(`Bad dest: ${(err as Error).message}`, MsmlCode.BAD_ATTRIBUTE);
    }
    const name = r.name ?? `record${this.recordings + 1}`;
    const dialogId = `${r.target}/dialog:${name}`;
    const params = r.record.params;
    const id = params.id ?? `${this.callUUID ?? this.uri.confId ?? this.key}_${this.recordings + 1}`;
    const log = this.log.child({ recording: id });
    // the profile's format and WAV copy; encryption and the rest are the recorder's
    const byProfile = profile ? { format: formatOf(profile.format), wav: profile.wavCopy === 'off' ? null : profile.wavCopy } : {};
    const rec = new Recording(
      { ...this.deps.recording, ...byProfile, log },
      {
        id,
        confId: this.uri.confId,
        callUUID: this.callUUID,
        dialogId,
        dn: this.uri.dn,
        tenant: this.uri.tenant,
        ivrProfile: this.uri.ivrProfile,
        tenantDbid: this.uri.tenantDbid,
        uriParams: this.uri.params,
        ...(profile ? { profile: profile.name, profileVersion: profile.version } : {}),
        msml: { dest: r.record.dest, format: r.record.format, maxtimeMs: r.record.maxtimeMs, attrs: r.record.attrs, params },
      },
    );
    this.recordings++;
    const maxMs = Math.min(r.record.maxtimeMs ?? this.deps.maxDurationMs, this.deps.maxDurationMs);
    rec.maxSamples = maxMs * SAMPLES_PER_MS;
    const maxTimer = setTimeout(() => void this.stopRecording('record.complete.maxlength'), maxMs);
    maxTimer.unref();
    const wantsExit = r.record.exitNamelist !== null;
    // capture starts now: the legs' audio goes to the recording's mixer while its files and encoder are opened, and
    // the answer does not wait for them (a slow disk costs neither audio nor answer time)
    const active: ActiveRecording = { rec, dialogId, name, control: dialog, wantsExit, maxTimer };
    this.active = active;
    this.lastAudio.forEach((ring, slot) => {
      for (const last of ring) {
        if (last.n > 0) rec.write(slot, last.at, last.pcm.subarray(0, last.n));
        last.n = 0;
      }
    });
    rec.open().catch((err: Error) => this.openFailed(active, err));
    log.info({ dialogId, mediaId: rec.mediaId, maxMs }, 'recording started');
    return { code: MsmlCode.OK, body: resultBody(MsmlCode.OK, { dialogId }) };
  }

  /**
   * The recording's files or encoder could not be opened (disk full, spool gone): nothing was written and nothing
   * is left behind. The recording ends and SIP Server is told with its events, the error in a description.
   */
  private openFailed(a: ActiveRecording, err: Error): void {
    if (this.active === a) {
      this.active = null;
      clearTimeout(a.maxTimer);
    }
    this.log.error({ err: err.message, mediaId: a.rec.mediaId }, 'recording could not be opened; it ends');
    this.deps.onOpenFailed?.(err);
    void this.notify(a, 'record.failed', 0, boundedText(err.message));
  }

  /** Stops the running recording (if any), finalizes it and tells SIP Server with MSML events. */
  async stopRecording(reason: string, notify = true): Promise<void> {
    const a = this.active;
    if (!a) return;
    this.active = null;
    clearTimeout(a.maxTimer);
    for (const l of this.legs) for (const s of l.streams) s.drain();
    let fin: FinalizedRecording;
    try {
      fin = await a.rec.stop(reason, this.legs.flatMap((l) => l.summaries()));
    } catch (err) {
      if (a.rec.openError) return; // never opened: openFailed() reported it
      this.log.error({ err }, 'recording could not be finalized; its files stay in the spool and the next start finishes them');
      this.deps.onFinalizeFailed?.(err as Error);
      if (notify) await this.notify(a, 'record.failed', 0);
      return;
    }
    this.deps.onFinalized(fin);
    if (notify) await this.notify(a, a.rec.failed ? 'record.failed' : reason, fin.sidecar.durationMs);
  }

  private notify(a: ActiveRecording, end: string, lenMs: number, description?: string): Promise<void> {
    return this.msml.afterAnswer(() => this.sendEvents(a, end, lenMs, description));
  }

  /** `moml.exit` (when the dialog asked for it) then `msml.dialog.exit`, both carrying why a failed recording failed. */
  private async sendEvents(a: ActiveRecording, end: string, lenMs: number, description?: string): Promise<void> {
    const leg = this.legs.find((l) => l.dialog === a.control);
    if (!leg || leg.ended) return;
    const headers = { 'Content-Type': 'application/vnd.radisys.msml+xml' };
    try {
      const why: [string, string][] = description === undefined ? [] : [['description', description]];
      if (a.wantsExit) {
        await a.control.request({ method: 'INFO', headers, body: eventBody('moml.exit', a.dialogId, [['record.end', end], ['record.len', String(lenMs)], ...why]) });
      }
      await a.control.request({ method: 'INFO', headers, body: eventBody('msml.dialog.exit', a.dialogId, why) });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not send MSML events to SIP Server');
    }
  }

  /** A leg's dialog ended (BYE from SIP Server). The recording ends with the control dialog or the last leg. */
  async legEnded(leg: Leg, reason: string): Promise<void> {
    leg.ended = true;
    this.link();
    this.log.info({ callId: leg.callId, reason }, 'leg ended');
    const controlGone = this.active?.control === leg.dialog;
    if (controlGone || this.legs.every((l) => l.ended)) {
      await this.stopRecording('record.terminate', !controlGone);
    }
    if (this.legs.every((l) => l.ended)) await this.close('all legs ended');
  }

  /**
   * Ends everything: finalizes the recording (with `endReason`), closes the legs (BYE to the ones still up).
   * Idempotent.
   */
  close(reason: string, endReason = 'record.terminate'): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        this.log.info({ reason }, 'session closing');
        await this.stopRecording(endReason, false);
        await Promise.all(this.legs.map((l) => l.close({ bye: !l.ended })));
        this.onClosed();
      })();
    }
    return this.closing;
  }
}
