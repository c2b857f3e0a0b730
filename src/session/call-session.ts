import type { Logger } from 'pino';
import { MediaWorkerLostError, MsmlError } from '../errors.js';
import { destCollection } from '../jobs/deliver-recording.js';
import { MsmlCode } from '../msml/msml-codes.js';
import { boundedText, MsmlInterpreter, type DialogStart, type MsmlAnswer, type MsmlControlled } from '../msml/msml-interpreter.js';
import { eventBody, resultBody } from '../msml/msml-respond.js';
import { newMediaId, openEncryption, type FinalizedRecording } from '../recording/recording.js';
import type { PlaneSession } from '../plane/media-plane.js';
import type { AlertTone, PartyRole, RecordingSettings } from '../plane/plane-protocol.js';
import type { AlertToneCache } from '../media/alert-tone-file.js';
import { formatOf } from '../config.js';
import type { RecordingProfile } from '../profiles.js';
import type { RecordingUri } from './recording-uri.js';
import type { Leg, LegDialog } from './leg.js';
import { SAMPLES_PER_MS } from '../media/sample-clock.js';
import type { RecordingContext, SiprecInfo } from '../recording/metadata.js';

/** How much longer than its duration a SIPREC part may record on its host while the next part starts, ms. */
const ROLLOVER_HEADROOM_MS = 5000;

/** A call whose SIP dialog drachtio-server lost ends once no party has sent RTP for this long, ms. */
export const LOST_DIALOG_SILENCE_MS = 5000;

/** The shortest silence between two plays of the alert tone (GIR's minimum tonesilenceduration), ms. */
const MIN_TONE_SILENCE_MS = 1500;

export interface SessionDeps {
  /** How recordings are written when the session has no profile (format, WAV copy, encryption, hold). */
  recording: RecordingSettings;
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
  /** The alert tones, read once (a profile's `alertTone`). */
  tones?: Pick<AlertToneCache, 'get'>;
  /** Called when one of its dialogs is found lost with drachtio-server (metrics). */
  onDialogLost?: () => void;
}

interface ActiveRecording {
  dialogId: string;
  name: string;
  control: LegDialog;
  /** Whether SIP Server is told how it ended with MSML events (a SIPREC session has no MSML). */
  msml: boolean;
  wantsExit: boolean;
  maxTimer: NodeJS.Timeout;
  mediaId: string;
  /** A SIPREC session's recording (it rolls over into a next part at its longest duration), and its part number. */
  siprec?: SiprecInfo;
  part: number;
}

/**
 * A recording session: every dialog with the same MSML conf-id (one per call party in 3PCC), their roles and
 * pairing, and the recording that spans them, driven by MSML (`msml/msml-interpreter.ts`). The media — sockets,
 * relay, capture, the recording's files — is on the session's media host, driven through `media`. `close()` is
 * idempotent and cascades: recording, then legs, then the media session.
 */
export class CallSession implements MsmlControlled<LegDialog> {
  readonly legs: Leg[] = [];
  private active: ActiveRecording | null = null;
  /** Recordings started and not yet finalized or failed, by media id (an open failure may come after a stop). */
  private readonly started = new Map<string, ActiveRecording>();
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
    readonly profile: RecordingProfile | null,
    /** Its media on its media host. */
    readonly media: PlaneSession,
  ) {
    this.msml = new MsmlInterpreter(this, log);
    media.onOpenFailed = (mediaId, err) => this.openFailed(mediaId, err);
    media.onLost = (recovered, why) => void this.mediaLost(recovered, why);
    media.onStatus = (st) => this.checkMedia(st.silentMs);
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

  /** The recording slot (0 = left) of a role, or of an m-line index in a single two-m-line dialog. */
  slotOf(role: PartyRole): number {
    return role === this.deps.leftChannel ? 0 : 1;
  }

  addLeg(leg: Leg): void {
    this.legs.push(leg);
  }

  /** INVITEs being answered into this session (their leg is not added yet). */
  private attempts = 0;

  /**
   * An INVITE is being answered into this session: until the returned function is called (answered and its leg
   * added, or refused), the session is not "without legs". Call it in the turn the session was found or made.
   */
  beginAttempt(): () => void {
    this.attempts++;
    let done = false;
    return () => {
      if (!done) this.attempts--;
      done = true;
    };
  }

  /**
   * Ends the call if its media stopped (the host reports how long no party not on hold has sent RTP), and — by
   * construction, whatever path led there — a session with no live leg and no INVITE being answered: nothing can
   * reach it any more, and it must not hold its ports.
   */
  private checkMedia(silentMs: number): void {
    if (!this.closed && this.attempts === 0 && this.legs.every((l) => l.ended)) {
      this.log.warn({ legs: this.legs.length }, 'session without a live leg: closing it');
      void this.close('no leg left');
      return;
    }
    // a call whose SIP side is gone (drachtio-server restarted) can only end by its media: it does once the parties
    // stop sending for LOST_DIALOG_SILENCE_MS (no SIP Server can end it; a hold was never signalled to it either)
    const lost = this.legs.some((l) => l.lost);
    const limit = lost ? Math.min(this.deps.mediaTimeoutMs || Infinity, LOST_DIALOG_SILENCE_MS) : this.deps.mediaTimeoutMs;
    if (limit > 0 && !this.closed && this.legs.length > 0 && silentMs >= limit) {
      this.log.warn({ silentMs: Math.round(silentMs), timeoutMs: limit, sipDialogLost: lost }, 'no RTP from any party: ending the call');
      void this.close(lost ? 'SIP dialog lost and no RTP' : 'media timeout', lost ? 'sip-dialog-lost' : 'media-timeout');
    }
  }

  /**
   * `leg`'s dialog is lost with drachtio-server (the connection it was made on is gone, or drachtio-server restarted
   * with the call up; `dialog-probe.ts` found out): no BYE, INFO or re-INVITE can reach this session on it any more. The conversation goes on through the relay, so the
   * recording does too, and the call ends once no party sends RTP for LOST_DIALOG_SILENCE_MS, recorded as
   * `sip-dialog-lost`.
   */
  dialogLost(leg: Leg): void {
    if (leg.lost || leg.ended || this.closed) return;
    leg.lost = true;
    this.deps.onDialogLost?.();
    this.log.warn({ callId: leg.callId, recording: this.recording }, 'SIP dialog lost with drachtio-server: relay and recording go on while RTP flows, then the call ends as sip-dialog-lost');
  }

  /** Handles one MSML body from an INFO on `dialog` that arrived at `atWallMs`. Never throws: errors become MSML results. */
  handleMsml(body: string, dialog: LegDialog, atWallMs = Date.now()): Promise<MsmlAnswer> {
    return this.msml.handle(body, dialog, atWallMs);
  }

  /** Whether a recording is running. */
  get recording(): boolean {
    return this.active !== null;
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

  /** Whether the running recording is paused (a next SIPREC part starts paused too). */
  private paused = false;

  pause(): void {
    if (!this.active) return;
    this.paused = true;
    this.media.pause();
  }

  resume(): void {
    if (!this.active) return;
    this.paused = false;
    this.media.resume();
  }

  /**
   * Starts a recording for a `<dialogstart>`: capture starts on the media host at once, its files are opened
   * meanwhile (the answer does not wait for them: a slow disk costs neither audio nor answer time). Throws MsmlError.
   */
  startRecording(r: DialogStart, dialog: LegDialog, atWallMs = Date.now()): MsmlAnswer {
    if (this.closed) throw new MsmlError('Session is ending', MsmlCode.NO_SUCH_OBJECT);
    if (this.active) throw new MsmlError(`A recording is already running: ${this.active.dialogId}`, MsmlCode.ALREADY_EXISTS);
    const profile = this.profile;
    try {
      destCollection(r.record.dest, profile?.allowedDestHosts ?? this.deps.allowedDestHosts);
    } catch (err) {
      throw new MsmlError(`Bad dest: ${(err as Error).message}`, MsmlCode.BAD_ATTRIBUTE);
    }
    const { tone, toneNote } = this.alertTone(r.record.params);
    const name = r.name ?? `record${this.recordings + 1}`;
    const dialogId = `${r.target}/dialog:${name}`;
    const params = r.record.params;
    const maxMs = Math.min(r.record.maxtimeMs ?? this.deps.maxDurationMs, this.deps.maxDurationMs);
    const id = params.id ?? `${this.callUUID ?? this.uri.confId ?? this.key}_${this.recordings + 1}`;
    const mediaId = this.begin({
      id,
      dialogId,
      name,
      control: dialog,
      msml: true,
      wantsExit: r.record.exitNamelist !== null,
      maxMs,
      tone,
      atWallMs,
      extra: { msml: { dest: r.record.dest, format: r.record.format, maxtimeMs: r.record.maxtimeMs, attrs: r.record.attrs, params } },
    });
    this.log.info({ dialogId, mediaId, recording: id, maxMs, tone: tone ? { silenceMs: tone.silenceMs, hears: tone.hears } : null }, 'recording started');
    if (toneNote) this.log.warn({ mediaId, why: toneNote }, 'recording runs without its alert tone');
    // the recording runs either way; a tone that could not be played is said in the answer
    return { code: MsmlCode.OK, body: resultBody(MsmlCode.OK, { dialogId, ...(toneNote ? { description: boundedText(toneNote) } : {}) }) };
  }

  /**
   * Starts the recording of a SIPREC recording session (RFC 7866) as its INVITE is answered — no MSML drives it, it
   * stops at the BYE — from `atWallMs` (the INVITE's arrival, back to what the session's mixer holds). `siprec` goes into
   * the sidecar and the metadata POST. At recording.maxDurationSec it goes on in a next part (`part` 2, 3, …: the
   * id gets `_<part>`), nobody being there to start another. Throws when the session is ending or already records.
   */
  startSiprec(control: LegDialog, siprec: SiprecInfo, atWallMs: number, part = 1): string {
    if (this.closed) throw new MsmlError('Session is ending', MsmlCode.NO_SUCH_OBJECT);
    if (this.active) throw new MsmlError(`A recording is already running: ${this.active.dialogId}`, MsmlCode.ALREADY_EXISTS);
    const dialogId = `siprec:${siprec.sessionId ?? siprec.callId}`;
    const base = siprec.sessionId ?? siprec.callId;
    const mediaId = this.begin({
      id: part === 1 ? base : `${base}_${part}`,
      siprec,
      part,
      dialogId,
      name: 'siprec',
      control,
      msml: false,
      wantsExit: false,
      maxMs: this.deps.maxDurationMs,
      tone: null,
      atWallMs,
      extra: { siprec, msml: { dest: null, format: null, maxtimeMs: null, attrs: {}, params: {} } },
    });
    this.log.info({ dialogId, mediaId, part, channelsBy: siprec.channelsBy, streams: siprec.streams, participants: siprec.participants.length }, 'SIPREC recording started');
    return mediaId;
  }

  /**
   * A recording reached its longest duration. An MSML one stops (SIP Server is told and may start another); a
   * SIPREC one goes on in a next part, started on the media host right behind the stop so no audio falls between
   * the two files, paused if it was.
   */
  private atMaxLength(a: ActiveRecording): void {
    if (this.active !== a) return;
    if (!a.siprec || this.closed) return void this.stopRecording('record.complete.maxlength');
    this.active = null;
    clearTimeout(a.maxTimer);
    // the next part starts at the instant the first one stops (the host starts it once the stop has taken its frames)
    const at = Date.now();
    const stopping = this.media.stop('record.complete.maxlength', at);
    const paused = this.paused;
    this.startSiprec(a.control, a.siprec, at, a.part + 1);
    if (paused) this.pause();
    this.track(this.finish(a, stopping, 'record.complete.maxlength', false));
  }

  /**
   * Starts a recording on the media host (capture at once, its files opened meanwhile) with the profile's format,
   * WAV copy and encryption, and a timer for its longest duration. Returns its media id.
   */
  private begin(r: {
    id: string;
    siprec?: SiprecInfo;
    part?: number;
    dialogId: string;
    name: string;
    control: LegDialog;
    msml: boolean;
    wantsExit: boolean;
    maxMs: number;
    tone: AlertTone | null;
    atWallMs: number;
    extra: Pick<RecordingContext, 'msml' | 'siprec'>;
  }): string {
    const profile = this.profile;
    this.recordings++;
    // the profile's format, WAV copy and encryption certificates; the hold and the left channel are the recorder's
    const byProfile = profile ? { format: formatOf(profile.format), wav: profile.wavCopy === 'off' ? null : profile.wavCopy, encryption: openEncryption(profile.encryption) } : {};
    const ctx = {
      id: r.id,
      confId: this.uri.confId,
      callUUID: this.callUUID,
      dialogId: r.dialogId,
      dn: this.uri.dn,
      tenant: this.uri.tenant,
      ivrProfile: this.uri.ivrProfile,
      tenantDbid: this.uri.tenantDbid,
      uriParams: this.uri.params,
      ...(profile ? { profile: profile.name, profileVersion: profile.version } : {}),
      ...r.extra,
    };
    const mediaId = newMediaId(ctx, r.atWallMs);
    // a SIPREC part is rolled over by the timer, so its host-side limit has room to spare: it must not cut the audio
    // that arrives while the next part is being started
    const maxSamples = (r.siprec ? r.maxMs + ROLLOVER_HEADROOM_MS : r.maxMs) * SAMPLES_PER_MS;
    this.media.start({ ...this.deps.recording, ...byProfile }, ctx, maxSamples, mediaId, r.atWallMs, r.tone);
    const active: ActiveRecording = { dialogId: r.dialogId, name: r.name, control: r.control, msml: r.msml, wantsExit: r.wantsExit, maxTimer: setTimeout(() => this.atMaxLength(active), r.maxMs), mediaId, siprec: r.siprec, part: r.part ?? 1 };
    active.maxTimer.unref();
    this.active = active;
    this.paused = false;
    this.started.set(mediaId, active);
    return mediaId;
  }

  /**
   * The alert tone for a new recording: the call's `audiosrc` (on an allowed host) or the profile's, its silence
   * between plays from the call's `tonesilenceduration` when given (at least 1500 ms) — or why there is none to play
   * (`toneNote`). Throws MsmlError for an `audiosrc` on a host not allowed.
   */
  private alertTone(params: Record<string, string>): { tone: AlertTone | null; toneNote?: string } {
    const p = this.profile;
    const src = params.audiosrc ? this.allowedToneSource(params.audiosrc) : (p?.alertTone ?? '');
    if (!p || !src || p.hearsTone.length === 0) return { tone: null };
    const asked = Number(params.tonesilenceduration);
    const silenceMs = params.tonesilenceduration !== undefined && Number.isFinite(asked) ? Math.max(MIN_TONE_SILENCE_MS, Math.round(asked)) : p.toneSilenceMs;
    const t = this.deps.tones?.get(src) ?? null;
    if (t && 'pcm' in t) return { tone: { pcm: t.pcm, silenceMs, hears: p.hearsTone } };
    return { tone: null, toneNote: `alert tone not played: ${t ? t.error : `${src} is still being read (the next recordings play it)`}` };
  }

  /** A call's own tone (MSML `audiosrc`): an http(s) URL on a host the profile allows, as for `dest`. Throws MsmlError. */
  private allowedToneSource(src: string): string {
    try {
      destCollection(src, this.profile?.allowedDestHosts ?? this.deps.allowedDestHosts);
    } catch (err) {
      throw new MsmlError(`Bad audiosrc: ${(err as Error).message.replace('record dest', 'audiosrc')}`, MsmlCode.BAD_ATTRIBUTE);
    }
    return src;
  }

  /**
   * The recording's files or encoder could not be opened (disk full, spool gone): nothing was written and nothing
   * is left behind. The recording ends and SIP Server is told with its events, the error in a description.
   */
  private openFailed(mediaId: string, err: Error): void {
    const a = this.started.get(mediaId);
    this.started.delete(mediaId);
    if (!a) return;
    if (this.active === a) {
      this.active = null;
      clearTimeout(a.maxTimer);
    }
    this.log.error({ err: err.message, mediaId }, 'recording could not be opened; it ends');
    this.deps.onOpenFailed?.(err);
    void this.notify(a, 'record.failed', 0, boundedText(err.message));
  }

  /**
   * The media worker died: the recording (finished from the spool, marked truncated) is delivered, SIP Server is
   * told it failed and why, and the call ends (its media is gone).
   */
  private async mediaLost(recovered: FinalizedRecording | null, why: string): Promise<void> {
    const a = this.active;
    this.active = null;
    if (a) clearTimeout(a.maxTimer);
    this.started.clear();
    if (recovered) this.deps.onFinalized(recovered);
    if (a) await this.notify(a, 'record.failed', recovered?.sidecar.durationMs ?? 0, boundedText(why));
    await this.close(why);
  }

  /**
   * Stops the running recording (if any) at `atWallMs` (when the request that stops it arrived: every packet that
   * came before goes in). Its finalization (the last audio encoded, the files closed) and the MSML events to SIP
   * Server that follow it run on without the caller: an answer to a dialogend never waits for the encoder or the
   * disk. `close()` waits for them.
   */
  async stopRecording(reason: string, notify = true, atWallMs = Date.now()): Promise<void> {
    const a = this.active;
    if (!a) return;
    this.active = null;
    clearTimeout(a.maxTimer);
    this.track(this.finish(a, this.media.stop(reason, atWallMs), reason, notify));
  }

  /** Recordings being finalized, which `close()` waits for. */
  private readonly finishing = new Set<Promise<void>>();

  private track(p: Promise<void>): void {
    this.finishing.add(p);
    void p.finally(() => this.finishing.delete(p));
  }

  /** Takes a stopped recording's finalization: delivered, or its failure reported; SIP Server told if `notify`. */
  private async finish(a: ActiveRecording, stopping: Promise<FinalizedRecording | null>, reason: string, notify: boolean): Promise<void> {
    let fin: FinalizedRecording | null;
    try {
      fin = await stopping;
    } catch (err) {
      // never opened: openFailed() reported it; worker gone: mediaLost() does
      if ((err as { openError?: boolean }).openError || err instanceof MediaWorkerLostError) return;
      this.started.delete(a.mediaId);
      this.log.error({ err: (err as Error).message }, 'recording could not be finalized; its files stay in the spool and the next start finishes them');
      this.deps.onFinalizeFailed?.(err as Error);
      if (notify) await this.notify(a, 'record.failed', 0);
      return;
    }
    this.started.delete(a.mediaId);
    if (!fin) return;
    this.deps.onFinalized(fin);
    if (notify) await this.notify(a, fin.sidecar.truncated ? 'record.failed' : reason, fin.sidecar.durationMs);
  }

  private notify(a: ActiveRecording, end: string, lenMs: number, description?: string): Promise<void> {
    return this.msml.afterAnswer(() => this.sendEvents(a, end, lenMs, description));
  }

  /** `moml.exit` (when the dialog asked for it) then `msml.dialog.exit`, both carrying why a failed recording failed. */
  private async sendEvents(a: ActiveRecording, end: string, lenMs: number, description?: string): Promise<void> {
    if (!a.msml) return;
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

  /**
   * A leg's dialog ended (BYE from SIP Server, arrived at `atWallMs`). The recording ends with the control dialog or
   * the last leg.
   */
  async legEnded(leg: Leg, reason: string, atWallMs = Date.now()): Promise<void> {
    leg.ended = true;
    this.media.legEnded(leg.legId);
    this.log.info({ callId: leg.callId, reason }, 'leg ended');
    const controlGone = this.active?.control === leg.dialog;
    if (controlGone || this.legs.every((l) => l.ended)) {
      await this.stopRecording('record.terminate', !controlGone, atWallMs);
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
        await Promise.all(this.finishing);
        await Promise.all(this.legs.map((l) => l.close({ bye: !l.ended })));
        await this.media.close();
        this.onClosed();
      })();
    }
    return this.closing;
  }
}
