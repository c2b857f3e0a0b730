import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { MediaStream } from '../media/media-stream.js';
import { DgramEndpoint } from '../media/dgram-endpoint.js';
import type { RtpEndpoint } from '../media/rtp-endpoint.js';
import { UdpEngine, udpEngineBinding } from '../media/udp-engine.js';
import { systemClock } from '../media/sample-clock.js';
import { addCounts, countsOf, MediaTally, NO_MEDIA_AFTER_MS, zeroCounts } from '../ops/media-tally.js';
import { EncoderPool } from '../recording/encoder-pool.js';
import { collectGarbage } from '../ops/collect-garbage.js';
import { ownMemory } from '../ops/thread-memory.js';
import { encryptionFromOpen, holdSamples } from '../recording/recording.js';
import { SAMPLES_PER_MS } from '../media/sample-clock.js';
import type { Encryption } from '../recording/cms-envelope.js';
import { MediaSession } from './media-session.js';
import type { HostConfig, HostStatus, PlaneMessage, PlaneRequest, RecordingSettings } from './plane-protocol.js';

/** How often each session is ticked (due packets released, audio encoded), ms. */
const TICK_MS = 100;
/**
 * The sessions are ticked in this many groups, one group every TICK_MS / TICK_GROUPS ms: a tick of every call at
 * once (mixing, WAV, encode requests of hundreds of recordings) would hold up the packets behind it for milliseconds.
 */
const TICK_GROUPS = 10;
/** A group timer this late means the thread itself stalled (its timers fire before the sockets it left unread), ms. */
const STALLED_MS = 50;

/**
 * A media host: the RTP sockets, relay, jitter buffers, timelines, mixing and recordings of the calls placed on it,
 * driven by plane commands (`receive`) and answering with plane messages (`send`). One per media worker thread, or
 * one in the main thread with `media.workers: 0`. It owns its encoder pool. `close()` finalizes what still records.
 */
export class MediaHost {
  private readonly sessions = new Map<string, MediaSession>();
  /** The sessions by tick group (a new session joins the next group round-robin). */
  private readonly groups: Set<MediaSession>[] = Array.from({ length: TICK_GROUPS }, () => new Set());
  private nextGroup = 0;
  private tickGroup = 0;
  private readonly tally = new MediaTally();
  private readonly pool: EncoderPool;
  private readonly histogram: ELDHistogram;
  private readonly timers: NodeJS.Timeout[] = [];
  private loopDelayP99Ms = 0;
  /** Encryption settings loaded from their PEMs, by their JSON (profiles encrypt for the same few sets). */
  private readonly encryptions = new Map<string, Encryption | null>();
  private closing: Promise<void> | null = null;
  /** The recording hold: jitter wait + horizon, samples. */
  private readonly hold: number;
  /** The recordings' encode batch, samples. */
  private readonly batch: number;
  /** The native UDP engine (media.udp native), or null: Node's dgram sockets. */
  private readonly engine: UdpEngine | null;

  constructor(
    private readonly config: HostConfig,
    private readonly log: Logger,
    private readonly send: (m: PlaneMessage) => void,
  ) {
    this.hold = holdSamples(config.jitterMs, config.horizonMs);
    this.batch = config.encoder.batchMs * SAMPLES_PER_MS;
    const binding = config.udp === 'native' ? udpEngineBinding() : null;
    // the main thread loaded it before choosing native: failing here is a broken build
    if (binding instanceof Error) throw binding;
    this.engine = binding ? new UdpEngine(binding) : null;
    this.pool = new EncoderPool(config.encoder.workers, log.child({ part: 'encoder' }), config.encoder.engine, config.encoder.quality, config.encoder.nice);
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    const every = (ms: number, f: () => void): void => {
      const t = setInterval(f, ms);
      t.unref();
      this.timers.push(t);
    };
    let lastGroupAt = performance.now();
    let holdGapsUntil = 0;
    every(TICK_MS / TICK_GROUPS, () => {
      const now = performance.now();
      // the thread stood still (a stop of the process, a throttled pod): for one round of the groups no gap is given
      // up, since timers run before the socket reads that may fill it (they come in the same turn's I/O phase)
      if (now - lastGroupAt > STALLED_MS) holdGapsUntil = now + TICK_MS;
      lastGroupAt = now;
      // what the engine's thread queued first (relayed already): a gap is given up only once its packets were seen
      this.engine?.dispatch();
      this.tickGroup = (this.tickGroup + 1) % TICK_GROUPS;
      for (const s of this.groups[this.tickGroup]) s.tick(now >= holdGapsUntil);
    });
    every(config.statusMs, () => {
      this.send({ kind: 'status', status: this.status() });
      void this.pool.askMemory();
    });
    every(config.loadWindowMs, () => {
      this.loopDelayP99Ms = this.histogram.percentile(99) / 1e6;
      this.histogram.reset();
    });
  }

  /** Handles one command; its reply (result or error) goes out through `send`. */
  receive(req: PlaneRequest): void {
    this.handle(req).then(
      (result) => this.send({ kind: 'reply', id: req.id, result }),
      (err: Error & { sipStatus?: number; msmlCode?: number; openError?: boolean; code?: unknown }) =>
        this.send({
          kind: 'reply',
          id: req.id,
          // code: the system error's (EADDRINUSE: a port another process holds), which the message may not name
          error: { message: err.message, name: err.name, sipStatus: err.sipStatus ?? 500, msmlCode: err.msmlCode ?? 500, openError: err.openError, code: typeof err.code === 'string' ? err.code : undefined },
        }),
    );
  }

  private session(key: string): MediaSession {
    const s = this.sessions.get(key);
    if (!s) throw new Error(`no media session ${key}`);
    return s;
  }

  private async handle(req: PlaneRequest): Promise<unknown> {
    switch (req.op) {
      case 'openLeg': {
        let s = this.sessions.get(req.key);
        if (!s) {
          s = new MediaSession(req.key, this.log.child(req.log), systemClock, this.hold, this.config.horizonMs, this.config.maxSkewMs * SAMPLES_PER_MS, this.batch);
          // the main thread's session logs it and tells SIP Server
          s.onOpenFailed = (mediaId, err) => this.send({ kind: 'openFailed', key: req.key, mediaId, message: err.message });
          this.sessions.set(req.key, s);
          const group = this.groups[this.nextGroup];
          this.nextGroup = (this.nextGroup + 1) % TICK_GROUPS;
          group.add(s);
        }
        const endpoints: RtpEndpoint[] = [];
        try {
          for (const port of req.ports) endpoints.push(this.engine ? this.engine.open(port, this.config.bindAddress) : await DgramEndpoint.bind(port, this.config.bindAddress));
        } catch (err) {
          for (const e of endpoints) e.close();
          throw err;
        }
        const session = s;
        const streams = endpoints.map(
          (ep, i) =>
            new MediaStream(ep, req.media[i] ?? null, req.slots[i], session.sinkFor(req.slots[i]), {
              jitterMs: this.config.jitterMs,
              maxSkewMs: this.config.maxSkewMs,
              onClose: (x) => this.tally.streamClosed(x),
            }),
        );
        s.addLeg(req.legId, req.callId, req.role, streams);
        return null;
      }
      case 'updateLeg':
        this.sessions.get(req.key)?.updateLeg(req.legId, req.media);
        return null;
      case 'legEnded':
        this.sessions.get(req.key)?.legEnded(req.legId);
        return null;
      case 'closeLeg':
        this.sessions.get(req.key)?.closeLeg(req.legId);
        return null;
      case 'start': {
        const s = this.session(req.key);
        const st: RecordingSettings = req.settings;
        return await s.start(
          { pool: this.pool, spoolDir: this.config.spoolDir, clock: systemClock, log: s.log.child({ recording: req.ctx.id }), format: st.format, wav: st.wav, holdSamples: this.hold, batchSamples: this.batch, leftChannel: st.leftChannel, encryption: this.encryption(st.encryption) },
          req.ctx,
          req.maxSamples,
          // a start that waited (behind a busy thread, a stall) starts when it was asked for, back to what the mixer holds
          { mediaId: req.mediaId, at: this.positionOf(req.atWallMs) },
          req.tone,
        );
      }
      case 'pause':
        this.sessions.get(req.key)?.pause();
        return null;
      case 'resume':
        this.sessions.get(req.key)?.resume();
        return null;
      case 'event':
        this.sessions.get(req.key)?.event(req.type, req.detail);
        return null;
      case 'stop': {
        const s = this.sessions.get(req.key);
        if (!s) return null;
        const rec = s.recording;
        try {
          return await s.stop(req.reason, this.positionOf(req.atWallMs));
        } catch (err) {
          if (rec?.openError) Object.assign(err as Error, { openError: true });
          throw err;
        }
      }
      case 'closeSession': {
        const s = this.sessions.get(req.key);
        if (!s) return null;
        this.sessions.delete(req.key);
        for (const g of this.groups) g.delete(s);
        await s.close();
        return null;
      }
      case 'collectGarbage':
        await this.pool.collectGarbage();
        collectGarbage();
        return null;
      case 'close':
        await this.close();
        return null;
    }
  }

  /** The clock position of a wall time (ms) of the main thread, never in the future. */
  private positionOf(wallMs: number): number {
    const now = systemClock.now();
    return Math.min(now, now - (Date.now() - wallMs) * SAMPLES_PER_MS);
  }

  private encryption(e: RecordingSettings['encryption']): Encryption | null {
    if (!e) return null;
    const k = JSON.stringify(e);
    if (!this.encryptions.has(k)) this.encryptions.set(k, encryptionFromOpen(e, 'recording'));
    return this.encryptions.get(k) ?? null;
  }

  status(): HostStatus {
    const now = performance.now();
    const counts = addCounts(zeroCounts(), this.tally.closed);
    if (this.engine) {
      const e = this.engine.stats;
      counts.engineDropped = e.queueDropped;
      counts.relaySendErrors = e.sendErrors;
    }
    let streamsNoMedia = 0;
    const sessions = [];
    for (const s of this.sessions.values()) {
      sessions.push(s.status(now));
      for (const x of s.streams()) {
        addCounts(counts, countsOf(x));
        if (!x.held && now - x.lastPacketAt > NO_MEDIA_AFTER_MS) streamsNoMedia++;
      }
    }
    return {
      sessions,
      counts,
      streamsWithoutMedia: this.tally.streamsWithoutMedia,
      streamsNoMedia,
      encodeQueueDepth: this.pool.queueDepth,
      encodeOldestPendingMs: this.pool.oldestPendingMs,
      loopDelayP99Ms: this.loopDelayP99Ms,
      memory: { host: ownMemory(), encoders: this.pool.memory },
    };
  }

  /** Finalizes every recording, closes every stream and the encoder pool. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.timers) clearInterval(t);
      await Promise.all([...this.sessions.values()].map((s) => s.close()));
      this.sessions.clear();
      for (const g of this.groups) g.clear();
      this.engine?.close();
      await this.pool.close();
      this.histogram.disable();
    })();
    return this.closing;
  }
}
