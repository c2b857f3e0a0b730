import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { CapacityError, MediaWorkerLostError, RecorderError } from '../errors.js';
import type { NegotiatedMedia } from '../media/negotiated-media.js';
import type { RtpPortPool } from '../media/rtp-port-pool.js';
import { writeLogLine } from '../ops/logger.js';
import { addCounts, zeroCounts, type StreamCounts } from '../ops/media-tally.js';
import type { RecordingContext } from '../recording/metadata.js';
import type { FinalizedRecording } from '../recording/recording.js';
import { spoolNames } from '../recording/spool-names.js';
import { recoverRecording } from '../recording/spool-recovery.js';
import { MediaHost } from './media-host.js';
import type { MediaWorkerData } from './media-worker.js';
import type { AlertTone, HostConfig, HostStatus, PartyRole, PlaneCommand, PlaneMessage, PlaneRequest, RecordingSettings, SessionStatus } from './plane-protocol.js';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

interface HostSlot {
  index: number;
  post: (req: PlaneRequest) => void;
  /** Ends the host the hard way (a worker is terminated; the in-process host cannot be). */
  terminate: () => void;
  dead: boolean;
  pending: Map<number, Pending>;
  sessions: Set<string>;
  status: HostStatus | null;
  bornAt: number;
}

/** Ports a leg's bind may try before it gives up (another process may hold some of the range). */
const BIND_ATTEMPTS = 16;
/** How long a dead worker's writes are given to land before its recordings are finished from the spool, ms. */
const SETTLE_MS = 100;

// Under tsx (tests, demo) this module is a .ts file and so is the worker; compiled, both are .js.
const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './media-worker.ts' : './media-worker.js', import.meta.url);

/**
 * A media worker's young generation, MB. Its garbage is short-lived (frames, messages), and V8 grows the young
 * generation with the allocation rate up to its default maximum: in the soak (100 calls) a media worker's heap went
 * from 49 MB reserved to 83 MB within 10 minutes with 20-28 MB in use, and the process's RSS with it. Capped, the heap
 * reaches its size within minutes and stays there; a scavenge of a few MB costs well under a millisecond.
 */
const MEDIA_WORKER_LIMITS = { maxYoungGenerationSizeMb: 16 };

export interface PlaneOptions {
  /** Media worker threads; 0: one media host in the main thread. */
  workers: number;
  config: HostConfig;
  ports: RtpPortPool;
  log: Logger;
}

/**
 * The media plane seen from the main thread: media hosts (worker threads, or one in-process host), the calls placed
 * on them (every leg of a conf-id on one host, the least loaded when the conf-id is new), the RTP ports (taken here
 * from the pool, bound there) and what the hosts report. A worker that dies: its recordings are finished from the
 * spool (truncated) and handed to their sessions, which end; its ports are freed; a new worker takes its place.
 */
export class MediaPlane {
  private readonly slots: HostSlot[] = [];
  private readonly handles = new Map<string, PlaneSession>();
  private nextId = 1;
  private closed = false;
  /** Counts of hosts that died (their last report), so the counters only grow. */
  private readonly retired = zeroCounts();
  private retiredWithoutMedia = 0;
  /** Media workers that exited without being asked to. */
  workerExits = 0;

  constructor(private readonly opts: PlaneOptions) {
    const n = Math.max(1, opts.workers);
    for (let i = 0; i < n; i++) this.slots.push(opts.workers === 0 ? this.inProcess(i) : this.spawn(i));
  }

  get logger(): Logger {
    return this.opts.log;
  }

  private inProcess(index: number): HostSlot {
    let host: MediaHost | null = null;
    const slot: HostSlot = {
      index,
      post: (req) => queueMicrotask(() => host?.receive(req)),
      terminate: () => undefined,
      dead: false,
      pending: new Map(),
      sessions: new Set(),
      status: null,
      bornAt: Date.now(),
    };
    host = new MediaHost(this.opts.config, this.opts.log.child({ mediaWorker: 'main' }), (m) => queueMicrotask(() => this.onMessage(slot, m)));
    return slot;
  }

  private spawn(index: number): HostSlot {
    const workerData: MediaWorkerData = { config: this.opts.config, index };
    // From source (tests, demo) the worker registers tsx itself: Node 20 workers do not inherit loader hooks.
    const worker = workerUrl.pathname.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(workerUrl.href)}); });`, { eval: true, workerData, resourceLimits: MEDIA_WORKER_LIMITS })
      : new Worker(fileURLToPath(workerUrl), { workerData, resourceLimits: MEDIA_WORKER_LIMITS });
    const slot: HostSlot = {
      index,
      post: (req) => worker.postMessage(req),
      terminate: () => void worker.terminate(),
      dead: false,
      pending: new Map(),
      sessions: new Set(),
      status: null,
      bornAt: Date.now(),
    };
    worker.on('message', (m: PlaneMessage) => this.onMessage(slot, m));
    worker.on('error', (err) => this.lost(slot, `uncaught ${err.name}: ${err.message}`));
    worker.on('exit', (code) => this.lost(slot, `exit code ${code}`));
    worker.unref();
    return slot;
  }

  private onMessage(slot: HostSlot, m: PlaneMessage): void {
    switch (m.kind) {
      case 'reply': {
        const p = slot.pending.get(m.id);
        if (!p) return;
        slot.pending.delete(m.id);
        if (m.error) {
          const err = new RecorderError(m.error.message, { sipStatus: m.error.sipStatus, msmlCode: m.error.msmlCode });
          p.reject(Object.assign(err, { openError: m.error.openError === true, code: m.error.code }));
        } else p.resolve(m.result);
        return;
      }
      case 'openFailed':
        this.handles.get(m.key)?.openFailed(m.mediaId, new RecorderError(m.message));
        return;
      case 'status':
        slot.status = m.status;
        for (const s of m.status.sessions) this.handles.get(s.key)?.statusReport(s);
        return;
      case 'log':
        writeLogLine(this.opts.log, m.line);
    }
  }

  /** Sends a command to a host; resolves with its reply. */
  request(slot: HostSlot, cmd: PlaneCommand): Promise<unknown> {
    if (slot.dead) return Promise.reject(new MediaWorkerLostError(`media worker ${slot.index} is gone`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.post({ ...cmd, id } as PlaneRequest);
    });
  }

  /** The media side of a new session (conf-id), placed on the least loaded live host. */
  session(key: string, log: Record<string, unknown>): PlaneSession {
    const live = this.slots.filter((s) => !s.dead);
    if (this.closed || live.length === 0) throw new CapacityError('no media worker is available');
    const slot = live.reduce((a, b) => (b.sessions.size < a.sessions.size ? b : a));
    slot.sessions.add(key);
    const h = new PlaneSession(this, slot, key, log, this.opts.ports);
    this.handles.set(key, h);
    return h;
  }

  /** A session was closed: its host forgets it. */
  forget(h: PlaneSession, slot: HostSlot): void {
    if (this.handles.get(h.key) === h) this.handles.delete(h.key);
    slot.sessions.delete(h.key);
  }

  private lost(slot: HostSlot, why: string): void {
    if (slot.dead) return;
    slot.dead = true;
    const err = new MediaWorkerLostError(`media worker ${slot.index} exited (${why})`);
    for (const p of slot.pending.values()) p.reject(err);
    slot.pending.clear();
    if (slot.status) {
      addCounts(this.retired, slot.status.counts);
      this.retiredWithoutMedia += slot.status.streamsWithoutMedia;
    }
    if (this.closed) return;
    this.workerExits++;
    const keys = [...slot.sessions];
    this.opts.log.error({ worker: slot.index, why, calls: keys.length }, 'media worker died: its recordings are finished from the spool and its calls end');
    const handles = keys.map((k) => this.handles.get(k)).filter((h): h is PlaneSession => h !== undefined);
    setTimeout(() => {
      for (const h of handles) void h.lost(err.message);
    }, SETTLE_MS);
    // a worker that dies at birth is broken, not unlucky: wait before trying again
    const delay = Date.now() - slot.bornAt < 2000 ? 2000 : 0;
    setTimeout(() => {
      const i = this.slots.indexOf(slot);
      if (!this.closed && i >= 0) this.slots[i] = this.spawn(slot.index);
    }, delay).unref();
  }

  /** Finishes a lost recording's files from the spool, as a recording stopped live would be (null: nothing was there). */
  async recover(mediaId: string, why: string): Promise<FinalizedRecording | null> {
    const r = await recoverRecording(this.opts.config.spoolDir, spoolNames(mediaId).open, this.opts.log, {
      endReason: 'media-worker.exit',
      error: `${why}: the recording was finished from what its media worker had written`,
    });
    return r && { ...r, id: r.sidecar.id, silentSamples: 0, lateSamples: 0 };
  }

  /** Ends media worker `index` now, as if it had crashed (POST /media-workers/<n>/restart). False: no such worker. */
  restartWorker(index: number): boolean {
    const slot = this.slots.find((s) => s.index === index && !s.dead);
    if (!slot || this.opts.workers === 0) return false;
    this.opts.log.warn({ worker: index }, 'media worker restart requested');
    slot.terminate();
    return true;
  }

  private statuses(): HostStatus[] {
    return this.slots.filter((s) => !s.dead && s.status).map((s) => s.status as HostStatus);
  }

  /** RTP counts of every stream so far (live and closed, on every host that ever ran). */
  counts(): StreamCounts {
    const c = addCounts(zeroCounts(), this.retired);
    for (const s of this.statuses()) addCounts(c, s.counts);
    return c;
  }

  get streamsWithoutMedia(): number {
    return this.statuses().reduce((n, s) => n + s.streamsWithoutMedia, this.retiredWithoutMedia);
  }

  get streamsNoMedia(): number {
    return this.statuses().reduce((n, s) => n + s.streamsNoMedia, 0);
  }

  get encodeQueueDepth(): number {
    return this.statuses().reduce((n, s) => n + s.encodeQueueDepth, 0);
  }

  get encodeOldestPendingMs(): number {
    return this.statuses().reduce((n, s) => Math.max(n, s.encodeOldestPendingMs), 0);
  }

  /** The worst p99 event-loop delay of a media host's last window, ms. */
  get loopDelayP99Ms(): number {
    return this.statuses().reduce((n, s) => Math.max(n, s.loopDelayP99Ms), 0);
  }

  /** The largest encode lag of a live recording, ms. */
  get maxEncodeLagMs(): number {
    let worst = 0;
    for (const s of this.statuses()) for (const x of s.sessions) worst = Math.max(worst, x.lagMs);
    return worst;
  }

  /** Silent or late samples of the live recordings. */
  /**
   * A session's recording finished (its counts go into the tally now): its host's last report, sent before the stop,
   * must not count them again until the next one comes.
   */
  recordingDone(key: string): void {
    for (const s of this.statuses()) {
      for (const x of s.sessions) {
        if (x.key !== key) continue;
        x.silentSamples = 0;
        x.lateSamples = 0;
      }
    }
  }

  liveSamples(field: 'silentSamples' | 'lateSamples'): number {
    let n = 0;
    for (const s of this.statuses()) for (const x of s.sessions) n += x[field];
    return n;
  }

  /** Live media workers and the calls on each (none with the media in the main thread). */
  hosts(): { index: number; calls: number; loopDelayP99Ms: number; memory: HostStatus['memory'] | null }[] {
    if (this.opts.workers === 0) return [];
    return this.slots.filter((s) => !s.dead).map((s) => ({ index: s.index, calls: s.sessions.size, loopDelayP99Ms: s.status?.loopDelayP99Ms ?? 0, memory: s.status?.memory ?? null }));
  }

  /** Every live host collects its garbage and its encoder threads theirs (an idle recorder's; see collectGarbage). */
  async collectGarbage(): Promise<void> {
    await Promise.all(this.slots.filter((s) => !s.dead).map((s) => this.request(s, { op: 'collectGarbage' }).catch(() => undefined)));
  }

  /** Finalizes what still records on every host and ends the hosts. Bounded by the caller. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.slots.map(async (s) => {
        await this.request(s, { op: 'close' }).catch(() => undefined);
        s.terminate();
      }),
    );
  }
}

/**
 * One session's media, seen from the main thread: the commands its CallSession sends to the session's host, the
 * RTP ports of its legs, and what the host reports back (silence for the media timeout, a failed open, the loss of
 * the worker). Every method is safe after the host is gone (it rejects or does nothing).
 */
export class PlaneSession {
  private nextLeg = 1;
  private readonly legPorts = new Map<number, number[]>();
  /** The media id of the live recording (to finish it from the spool if the worker dies), or null. */
  private mediaId: string | null = null;
  private gone = false;
  /** A recording's files could not be opened: it ended with nothing written. */
  onOpenFailed: (mediaId: string, err: Error) => void = () => undefined;
  /** The worker died: the recording it had (finished from the spool, or null), and why. */
  onLost: (recovered: FinalizedRecording | null, why: string) => void = () => undefined;
  /** A status report came (every HostConfig.statusMs). */
  onStatus: (s: SessionStatus) => void = () => undefined;

  constructor(
    private readonly plane: MediaPlane,
    private readonly slot: HostSlot,
    readonly key: string,
    private readonly log: Record<string, unknown>,
    private readonly ports: RtpPortPool,
  ) {}

  /** The index of the media worker it runs on. */
  get worker(): number {
    return this.slot.index;
  }

  private send(cmd: PlaneCommand): Promise<unknown> {
    if (this.gone) return Promise.reject(new MediaWorkerLostError('the media worker of this call is gone'));
    return this.plane.request(this.slot, cmd);
  }

  /** Sends and forgets (a failure means the host is gone, which `onLost` reports). */
  private post(cmd: PlaneCommand): void {
    this.send(cmd).catch(() => undefined);
  }

  /** Opens a leg's RTP sockets (one per m-line) on the host; returns its id and ports. Throws CapacityError. */
  async openLeg(callId: string, role: PartyRole, slots: number[], media: (NegotiatedMedia | null)[]): Promise<{ legId: number; ports: number[] }> {
    const legId = this.nextLeg++;
    let lastErr: unknown;
    for (let i = 0; i < BIND_ATTEMPTS; i++) {
      const ports: number[] = [];
      try {
        for (let k = 0; k < slots.length; k++) ports.push(this.ports.take());
      } catch (err) {
        for (const p of ports) this.ports.release(p);
        throw err;
      }
      try {
        await this.send({ op: 'openLeg', key: this.key, legId, callId, role, slots, media, ports, log: this.log });
        this.legPorts.set(legId, ports);
        return { legId, ports };
      } catch (err) {
        // taken by another process (EADDRINUSE) or not ours to bind (EACCES): the ports go to the end of the free
        // list, others are tried. By the error's code: the native engine's message is strerror's text.
        for (const p of ports) this.ports.release(p);
        lastErr = err;
        const code = (err as { code?: string }).code;
        if (err instanceof MediaWorkerLostError || (code !== 'EADDRINUSE' && code !== 'EACCES')) throw err;
      }
    }
    throw lastErr;
  }

  updateLeg(legId: number, media: (NegotiatedMedia | null)[]): void {
    this.post({ op: 'updateLeg', key: this.key, legId, media });
  }

  legEnded(legId: number): void {
    this.post({ op: 'legEnded', key: this.key, legId });
  }

  /** Closes a leg's sockets; its ports go back to the pool. */
  async closeLeg(legId: number): Promise<void> {
    await this.send({ op: 'closeLeg', key: this.key, legId }).catch(() => undefined);
    this.releasePorts(legId);
  }

  private releasePorts(legId: number): void {
    for (const p of this.legPorts.get(legId) ?? []) this.ports.release(p);
    this.legPorts.delete(legId);
  }

  /**
   * Starts recording `mediaId` on the host (capture from `atWallMs`, files opened meanwhile). Nothing waits for the
   * host: its failures come as `onOpenFailed` or `onLost`.
   */
  start(settings: RecordingSettings, ctx: Omit<RecordingContext, 'mediaId'>, maxSamples: number, mediaId: string, atWallMs: number, tone: AlertTone | null = null): void {
    this.mediaId = mediaId;
    this.send({ op: 'start', key: this.key, settings, ctx, maxSamples, mediaId, atWallMs, tone }).catch((err: Error) => {
      // a host that could not start it (its worker gone: onLost says so) ends it as a failed open
      if (!(err instanceof MediaWorkerLostError)) this.openFailed(mediaId, err);
    });
  }

  pause(): void {
    this.post({ op: 'pause', key: this.key });
  }

  resume(): void {
    this.post({ op: 'resume', key: this.key });
  }

  /** Notes a call event in the running recording's history (`detail` goes with it into the sidecar). */
  event(type: string, detail?: Record<string, unknown>): void {
    this.post({ op: 'event', key: this.key, type, ...(detail ? { detail } : {}) });
  }

  /**
   * Stops the recording at `atWallMs` (every packet that arrived before goes in) and finalizes it (null: none was
   * running). Rejects with the host's error (`openError` set
   * when its files never opened), or MediaWorkerLostError (then `onLost` brings what was recovered).
   */
  async stop(reason: string, atWallMs = Date.now()): Promise<FinalizedRecording | null> {
    const stopping = this.mediaId;
    const fin = (await this.send({ op: 'stop', key: this.key, reason, atWallMs })) as FinalizedRecording | null;
    // a next recording may have started meanwhile (a SIPREC session's next part)
    if (this.mediaId === stopping) this.mediaId = null;
    if (fin) this.plane.recordingDone(this.key);
    return fin;
  }

  /** Closes every leg and forgets the session on its host. Idempotent. */
  async close(): Promise<void> {
    await this.send({ op: 'closeSession', key: this.key }).catch(() => undefined);
    for (const id of [...this.legPorts.keys()]) this.releasePorts(id);
    this.gone = true;
    this.plane.forget(this, this.slot);
  }

  openFailed(mediaId: string, err: Error): void {
    if (this.mediaId === mediaId) this.mediaId = null;
    this.onOpenFailed(mediaId, err);
  }

  statusReport(s: SessionStatus): void {
    this.onStatus(s);
  }

  /** The host died: ports freed, the recording finished from the spool and reported. */
  async lost(why: string): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    for (const id of [...this.legPorts.keys()]) this.releasePorts(id);
    this.plane.forget(this, this.slot);
    const mediaId = this.mediaId;
    this.mediaId = null;
    let recovered: FinalizedRecording | null = null;
    if (mediaId) {
      try {
        recovered = await this.plane.recover(mediaId, why);
      } catch (err) {
        this.plane.logger.error({ mediaId, err: (err as Error).message }, 'could not finish a lost recording; it stays in the spool for the next start');
      }
    }
    this.onLost(recovered, why);
  }
}
