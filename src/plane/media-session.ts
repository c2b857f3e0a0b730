import type { Logger } from 'pino';
import type { MediaStream } from '../media/media-stream.js';
import type { AudioSink } from '../media/capture-stage.js';
import type { LegSummary } from '../recording/metadata.js';
import { mixerCapacity, Recording, type FinalizedRecording, type RecordingDeps } from '../recording/recording.js';
import { ChannelMixer } from '../recording/channel-mixer.js';
import type { SampleClock } from '../media/sample-clock.js';
import type { NegotiatedMedia } from '../media/negotiated-media.js';
import { ToneInjector } from '../media/tone-injector.js';
import type { AlertTone, PartyRole, SessionStatus } from './plane-protocol.js';

/** How often a stopping recording looks whether its streams have caught up with the stop instant, ms. */
const SETTLE_CHECK_MS = 10;
/** A check this long after the previous one means the thread itself stalled: that interval proves nothing. */
const STALLED_CHECK_MS = 50;
/**
 * A stream that has not reached the stop instant counts as gone quiet (its party hung up) once nothing came from it
 * for this long, ms of the thread's own running time: ten packet times, far more than a busy thread leaves a socket
 * unread.
 */
const QUIET_MS = 200;

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
  private closing: Promise<void> | null = null;
  /** The running recording's alert tone, or null. */
  private tone: AlertTone | null = null;
  /** Called when the recording's files could not be opened: it ended with nothing written. */
  onOpenFailed: (mediaId: string, err: Error) => void = () => undefined;

  /**
   * The legs' audio on fixed slots, held for the hold horizon whether or not a recording runs: a recording starts at
   * its request's instant (back as far as the horizon: the request may have waited behind a busy thread) and takes
   * its frames from here; one that starts right behind another (a SIPREC session's next part) starts where the first
   * ended, sample for sample. Nothing records: what is older than the hold is discarded.
   */
  private readonly mixer: ChannelMixer;
  /** A stop waiting for its streams to catch up with the stop instant (a start waits behind it). */
  private stopping: Promise<FinalizedRecording | null> | null = null;

  constructor(
    readonly key: string,
    readonly log: Logger,
    private readonly clock: SampleClock,
    /** The recording hold (jitter wait + horizon), samples. */
    private readonly hold: number,
    /** How long a stop waits at most for the streams to reach its instant, ms of the thread's own running time. */
    private readonly settleMs: number,
    /**
     * How far behind what the streams reached encoding stays, samples: a leg's placement may still move back by up to
     * the skew limit (a drift correction), and what it writes there must not be late.
     */
    private readonly margin = 0,
    /** The recordings' encode batch (encoder.batchMs), samples: the mixer holds it on top of the hold. */
    batch = 0,
  ) {
    this.mixer = new ChannelMixer(2, 2, clock.now() - hold, mixerCapacity(hold, batch));
  }

  /** Slots whose own mixer input a stream already writes. */
  private readonly slotsTaken = new Set<number>();

  /**
   * Where a new stream of `slot` writes its audio: the slot's own mixer input for its first stream, a further input
   * for each one after it (a third party of a conference, a SIPREC fork of more than two streams, a transferred
   * party's successor): the mixer sums a slot's inputs, so a side with several streams is heard mixed.
   */
  sinkFor(slot: number): AudioSink {
    let input = slot;
    if (this.slotsTaken.has(slot)) input = this.mixer.addInput(slot);
    this.slotsTaken.add(slot);
    return (_slot, at, pcm) => this.mixer.write(input, at, pcm);
  }

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

  /**
   * Periodic work: release due packets, encode what is final (nothing records: drop what is older than the hold).
   * `giveUpGaps` false right after the thread stalled: a gap's packets may still be unread in the socket.
   */
  tick(giveUpGaps = true): void {
    for (const l of this.legs.values()) for (const s of l.streams) s.poll(giveUpGaps);
    if (this.rec) this.rec.tick(this.reached());
    else if (!this.stopping) this.mixer.discard(this.clock.now() - this.hold);
  }

  /**
   * The clock position every live stream not on hold has played its audio up to (streams that never sent are not
   * waited for: their first packet anchors at its arrival, after it), less the margin; -inf when there is none.
   */
  private reached(): number {
    let least = Number.POSITIVE_INFINITY;
    for (const l of this.legs.values()) {
      if (l.ended) continue;
      for (const s of l.streams) {
        if (s.isClosed || s.held || s.capture.reached === Number.NEGATIVE_INFINITY) continue;
        if (s.capture.reached < least) least = s.capture.reached;
      }
    }
    return least === Number.POSITIVE_INFINITY ? Number.NEGATIVE_INFINITY : least - this.margin;
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
   * Starts a recording at clock position `start.at` (its request's arrival; no earlier than the mixer holds), with
   * its media id; its files are opened meanwhile. A stop still settling is waited for, so a next part starts where
   * the stopped one ends. Returns its media id.
   */
  async start(deps: RecordingDeps, ctx: Recording['ctx'], maxSamples: number, start: { at?: number; mediaId?: string } = {}, tone: AlertTone | null = null): Promise<string> {
    if (this.stopping) await this.stopping.catch(() => undefined);
    if (this.closed) throw new Error('the media session is closed');
    if (this.rec) throw new Error(`a recording is already running: ${this.rec.mediaId}`);
    const rec = new Recording(deps, ctx, start, this.mixer);
    rec.maxSamples = maxSamples;
    this.rec = rec;
    this.tone = tone;
    for (const l of this.legs.values()) this.toneFor(l);
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

  /**
   * Stops the running recording (null: none) at clock position `at` (its request's arrival; default now) and
   * finalizes its files. Every packet that reached the recorder before that instant goes in, however far behind the
   * thread is: the stop first waits until each live stream has played out audio up to the instant, or has gone
   * quiet, or `settleMs` of running time passed. Rejects as Recording.stop does. A second stop while one settles
   * returns the first one's promise.
   */
  stop(reason: string, at?: number): Promise<FinalizedRecording | null> {
    if (this.stopping) return this.stopping;
    const rec = this.rec;
    if (!rec) return Promise.resolve(null);
    const stopAt = Math.min(at ?? this.clock.now(), this.clock.now());
    rec.endsAt(stopAt);
    for (const s of this.streamsWithTone()) s.tone = null;
    this.tone = null;
    const stopping = this.settle(stopAt).then(() => {
      for (const l of this.legs.values()) for (const s of l.streams) s.drain();
      this.rec = null;
      return rec.stop(reason, this.summaries(), stopAt);
    });
    this.stopping = stopping;
    const clear = (): void => {
      if (this.stopping === stopping) this.stopping = null;
    };
    stopping.then(clear, clear);
    return stopping;
  }

  /**
   * Resolves once every live stream not on hold that has sent anything has reached `at` or gone quiet, or the settle
   * time ran out.
   */
  private settle(at: number): Promise<void> {
    let ran = 0;
    /** Running time since each stream's last packet, as the checks saw it (a stall does not count). */
    const quietFor = new Map<MediaStream, { last: number; ms: number }>();
    let last = performance.now();
    return new Promise((resolve) => {
      const check = (): void => {
        const now = performance.now();
        const gap = now - last;
        last = now;
        // time the thread itself stood still does not count: the backlog it left is still to be read
        const trusted = gap < STALLED_CHECK_MS;
        if (trusted) ran += gap;
        let waiting = false;
        for (const l of this.legs.values()) {
          for (const s of l.streams) {
            // a stream that never sent has nothing on its way either
            if (s.isClosed || s.held || s.capture.jitter.stats.received === 0) continue;
            s.poll(trusted);
            if (s.capture.reached >= at) continue;
            const q = quietFor.get(s);
            if (!q || q.last !== s.lastPacketAt) quietFor.set(s, { last: s.lastPacketAt, ms: 0 });
            else if (trusted) q.ms += gap;
            if ((quietFor.get(s)?.ms ?? 0) >= QUIET_MS) continue;
            waiting = true;
          }
        }
        if (!waiting || ran >= this.settleMs || this.closed) resolve();
        else setTimeout(check, SETTLE_CHECK_MS);
      };
      // the I/O queued so far (the packets before the instant) is read before the first look
      setImmediate(check);
    });
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

  /**
   * Closes every stream; a recording still running (its main thread gone) or stopping is finalized first.
   * Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.rec || this.stopping) await this.stop('record.terminate').catch((err: Error) => this.log.error({ err: err.message }, 'recording could not be finalized'));
      this.closed = true;
      for (const l of this.legs.values()) for (const s of l.streams) s.close();
    })();
    return this.closing;
  }
}
