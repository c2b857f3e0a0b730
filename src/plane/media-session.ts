import type { Logger } from 'pino';
import type { MediaStream } from '../media/media-stream.js';
import type { LegSummary } from '../recording/metadata.js';
import { Recording, type FinalizedRecording, type RecordingDeps } from '../recording/recording.js';
import type { NegotiatedMedia } from '../media/negotiated-media.js';
import { ToneInjector } from '../media/tone-injector.js';
import type { AlertTone, PartyRole, SessionStatus } from './plane-protocol.js';

/** Packets of each slot kept while nothing records, for a recording that starts between them (see `lastAudio`). */
const PREROLL_PACKETS = 4;

/** One SIP dialog's media on the host: its streams (one per usable m-line) and who it carries. */
interface MediaLeg {
  legId: number;
  callId: string;
  role: PartyRole;
  ended: boolean;
  streams: MediaStream[];
}

/**
 * The media side of one recording session (a conf-id) on a media host: its legs' streams, the pairing that relays
 * one party to the other, and the recording their audio goes into. The main thread's CallSession drives it with
 * plane commands. `close()` is idempotent and closes every stream (sockets, ports).
 */
export class MediaSession {
  private readonly legs = new Map<number, MediaLeg>();
  private rec: Recording | null = null;
  private closed = false;
  /** The running recording's alert tone, or null. */
  private tone: AlertTone | null = null;
  /** Called when the recording's files could not be opened: it ended with nothing written. */
  onOpenFailed: (mediaId: string, err: Error) => void = () => undefined;

  constructor(
    readonly key: string,
    readonly log: Logger,
  ) {}

  /**
   * The newest packets' audio of each slot (a ring of PREROLL_PACKETS). A recording starts between two packets: what
   * of them falls after its start is its first audio, so it has sound from its first sample. More than one packet: a
   * leg's clock is anchored to its first packet's arrival, and until the drift tracking corrects it (its first
   * second) a late first packet puts the later ones ahead of their arrival. Kept while a recording runs too: a
   * recording that starts right behind another (a SIPREC session's next part) gets the rest of the packet the first
   * one ended in.
   */
  private readonly lastAudio = [0, 1].map(() => Array.from({ length: PREROLL_PACKETS }, () => ({ at: 0, n: 0, pcm: new Int16Array(320) })));
  private readonly lastAudioNext = [0, 0];

  /** Audio from a leg's stream. */
  readonly sink = (slot: number, at: number, pcm: Int16Array): void => {
    this.rec?.write(slot, at, pcm);
    const ring = this.lastAudio[slot];
    if (!ring) return;
    const last = ring[this.lastAudioNext[slot]];
    this.lastAudioNext[slot] = (this.lastAudioNext[slot] + 1) % PREROLL_PACKETS;
    if (last.pcm.length < pcm.length) last.pcm = new Int16Array(pcm.length);
    last.pcm.set(pcm);
    last.at = at;
    last.n = pcm.length;
  };

  addLeg(legId: number, callId: string, role: PartyRole, streams: MediaStream[]): void {
    const leg = { legId, callId, role, ended: false, streams };
    this.legs.set(legId, leg);
    this.link();
    if (this.rec) this.toneFor(leg);
  }

  /** Gives a leg's streams the alert tone when its party is one that hears it (null: takes it away). */
  private toneFor(leg: MediaLeg): void {
    const t = this.tone;
    const hears = t !== null && t.hears.includes(leg.role) && this.rec !== null;
    for (const s of leg.streams) {
      if (!hears) {
        s.tone = null;
        continue;
      }
      const rec = this.rec;
      s.tone = new ToneInjector(t.pcm, t.silenceMs, () => rec?.event(`tone.${leg.role}`));
      if (rec?.paused) s.tone.pause();
    }
  }

  /** A new negotiation for a leg's m-lines (re-INVITE, 3PCC answer in the ACK); hold changes go in the history. */
  updateLeg(legId: number, media: (NegotiatedMedia | null)[]): void {
    const leg = this.legs.get(legId);
    if (!leg) return;
    leg.streams.forEach((s, i) => {
      const n = media[i];
      if (!n) return;
      const wasHeld = s.held;
      s.update(n);
      if (s.held !== wasHeld) this.rec?.event(s.held ? 'hold' : 'unhold');
    });
  }

  legEnded(legId: number): void {
    const leg = this.legs.get(legId);
    if (!leg) return;
    leg.ended = true;
    this.link();
  }

  /** Closes a leg's streams (its counts stay for the sidecar). */
  closeLeg(legId: number): void {
    const leg = this.legs.get(legId);
    if (!leg) return;
    leg.ended = true;
    for (const s of leg.streams) s.close();
    this.link();
  }

  /**
   * Pairs the media of the two parties for relaying: the newest live single-stream leg of each role (a later leg of
   * a role, e.g. after a transfer, takes over). A two-m-line dialog is a recording fork: nothing to relay.
   */
  private link(): void {
    const newestFirst = [...this.legs.values()].reverse();
    for (const l of newestFirst) for (const s of l.streams) s.peer = null;
    const newest = (role: PartyRole): MediaLeg | undefined => newestFirst.find((l) => l.role === role && !l.ended && l.streams.length === 1);
    const a = newest('other');
    const b = newest('recordDN');
    if (!a || !b) return;
    a.streams[0].peer = b.streams[0];
    b.streams[0].peer = a.streams[0];
  }

  /** Periodic work: release due packets, encode what is old enough. */
  tick(): void {
    for (const l of this.legs.values()) for (const s of l.streams) s.poll();
    this.rec?.tick();
  }

  /**
   * How long no party has sent RTP: the shortest silence of the streams of live legs that are not on hold (a held
   * party is expected to be silent). 0 when every such stream is on hold: a call on hold is not dead.
   */
  silentMs(now: number): number {
    let least = Number.POSITIVE_INFINITY;
    for (const l of this.legs.values()) {
      if (l.ended) continue;
      for (const s of l.streams) if (!s.held) least = Math.min(least, now - s.lastPacketAt);
    }
    return least === Number.POSITIVE_INFINITY ? 0 : least;
  }

  status(now: number): SessionStatus {
    const r = this.rec;
    return { key: this.key, silentMs: this.silentMs(now), lagMs: r?.lagMs ?? 0, silentSamples: r?.silentSamples ?? 0, lateSamples: r?.lateSamples ?? 0 };
  }

  /** Live streams (for the host's counts). */
  *streams(): Iterable<MediaStream> {
    for (const l of this.legs.values()) for (const s of l.streams) if (!s.isClosed) yield s;
  }

  /**
   * Starts a recording: capture at once (with the pre-roll), its files opened meanwhile. `start` as for Recording
   * (its request waited `agoMs`; its media id). Returns its media id.
   */
  start(deps: RecordingDeps, ctx: Recording['ctx'], maxSamples: number, start: { agoMs?: number; mediaId?: string } = {}, tone: AlertTone | null = null): string {
    if (this.rec) throw new Error(`a recording is already running: ${this.rec.mediaId}`);
    const rec = new Recording(deps, ctx, start);
    rec.maxSamples = maxSamples;
    this.rec = rec;
    this.tone = tone;
    for (const l of this.legs.values()) this.toneFor(l);
    this.lastAudio.forEach((ring, slot) => {
      for (const last of ring) {
        if (last.n > 0) rec.write(slot, last.at, last.pcm.subarray(0, last.n));
        last.n = 0;
      }
    });
    rec.open().catch((err: Error) => {
      if (this.rec === rec) this.endTone(null);
      this.onOpenFailed(rec.mediaId, err);
    });
    return rec.mediaId;
  }

  pause(): void {
    this.rec?.pause();
    for (const s of this.streamsWithTone()) s.tone?.pause();
  }

  resume(): void {
    this.rec?.resume();
    for (const s of this.streamsWithTone()) s.tone?.resume();
  }

  private *streamsWithTone(): Iterable<MediaStream> {
    for (const l of this.legs.values()) for (const s of l.streams) if (s.tone) yield s;
  }

  /** The recording ended (or never opened): no more tone. */
  private endTone(rec: Recording | null): void {
    this.rec = rec;
    this.tone = null;
    for (const s of this.streamsWithTone()) s.tone = null;
  }

  event(type: string, detail?: Record<string, unknown>): void {
    this.rec?.event(type, detail);
  }

  /** Stops the running recording (null: none) and finalizes its files. Rejects as Recording.stop does. */
  async stop(reason: string): Promise<FinalizedRecording | null> {
    const rec = this.rec;
    if (!rec) return null;
    this.endTone(null);
    for (const l of this.legs.values()) for (const s of l.streams) s.drain();
    return rec.stop(reason, this.summaries());
  }

  get recording(): Recording | null {
    return this.rec;
  }

  private summaries(): LegSummary[] {
    return [...this.legs.values()].flatMap((l) =>
      l.streams.map((s) => ({
        callId: l.callId,
        slot: s.slot,
        role: l.role,
        codec: s.media?.codec ?? null,
        remote: s.remote ? `${s.remote.address}:${s.remote.port}` : null,
        packets: s.stats.received,
        lost: s.stats.lost,
        late: s.stats.late,
        duplicates: s.stats.duplicates,
        ssrcChanges: s.stats.ssrcChanges,
      })),
    );
  }

  /** Closes every stream; a recording still running (its main thread gone) is finalized first. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.rec) await this.stop('record.terminate').catch((err: Error) => this.log.error({ err: err.message }, 'recording could not be finalized'));
    for (const l of this.legs.values()) for (const s of l.streams) s.close();
  }
}
