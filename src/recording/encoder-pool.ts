import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { workerMemory, type ThreadMemory } from '../ops/thread-memory.js';
import { EncoderCrashError, RecorderError } from '../errors.js';
import { DEFAULT_LAME_QUALITY, type EncoderEngine, type Mp3Format } from './mp3-encoder.js';
import type { EncoderWorkerData, WorkerItem, WorkerReply, WorkerRequest } from './encoder-worker.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Pending = { resolve: (b: Uint8Array) => void; reject: (e: Error) => void; sentAt: number };

interface Slot {
  worker: Worker;
  dead: boolean;
  pending: Map<number, Pending>;
  recordings: Set<string>;
  /** Requests of this turn of the event loop, sent as one message. */
  outbox: WorkerItem[];
  outboxTransfer: ArrayBuffer[];
  /** The most recordings it had at once since it was started (what its WASM memory grew to). */
  peak: number;
  /** Replaces it with a fresh thread once it has been idle for `retire.idleMs`. */
  retireTimer: NodeJS.Timeout | null;
}

/**
 * When an idle encoder thread is replaced by a fresh one: after `idleMs` without a recording, if it ever had
 * `minPeak` or more at once. Its WASM instance is dropped with its last encoder, but an idle thread allocates nothing,
 * so V8 never collects it: in the soak each encoder thread still held 30-35 MB minutes after the last call, and a
 * forced GC freed it. Ending the thread frees its whole isolate at once.
 */
export interface EncoderRetire {
  idleMs: number;
  minPeak: number;
}
export const DEFAULT_ENCODER_RETIRE: EncoderRetire = { idleMs: 30_000, minPeak: 8 };

// Under tsx (tests, demo) this module is a .ts file and so is the worker; compiled, both are .js.
const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './encoder-worker.ts' : './encoder-worker.js', import.meta.url);

/**
 * A fixed pool of worker threads that encode MP3. A recording is pinned to the least-loaded worker when it
 * opens. If a worker dies, the calls pending on it reject with EncoderCrashError and a fresh worker takes its place;
 * `Recording` then opens a new encoder for each of its recordings and sends the lost batch again (a splice, not the
 * rest of the recording). A thread idle for a while after many recordings is replaced by a fresh one (EncoderRetire).
 */
export class EncoderPool {
  private slots: Slot[] = [];
  private byRecording = new Map<string, Slot>();
  private nextMsg = 1;
  private closed = false;
  /** Each encoder thread's memory as last asked (`askMemory`); null: not known. */
  memory: (ThreadMemory | null)[] = [];

  constructor(
    private readonly size: number,
    private readonly log: Logger,
    private readonly engine: EncoderEngine = 'wasm',
    private readonly quality = DEFAULT_LAME_QUALITY,
    /** The encoder threads' nice value (0: as the process). */
    private readonly nice = 0,
    private readonly retire: EncoderRetire = DEFAULT_ENCODER_RETIRE,
  ) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  /** Asks every encoder thread for its memory; `memory` has the answers when they come. */
  async askMemory(): Promise<void> {
    this.memory = await Promise.all(this.slots.map((s) => (s.dead ? null : workerMemory(s.worker))));
  }

  /** Every live encoder thread collects its garbage (for an idle recorder: see collectGarbage). */
  async collectGarbage(): Promise<void> {
    await Promise.all(this.slots.filter((s) => !s.dead).map((s) => this.call(s, { op: 'gc' }).catch(() => undefined)));
  }

  private spawn(): Slot {
    // From source (tests, demo) the worker registers tsx itself: Node 20 workers do not inherit loader hooks.
    const workerData: EncoderWorkerData = { engine: this.engine, quality: this.quality, nice: this.nice };
    const worker = workerUrl.pathname.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(workerUrl.href)}); });`, { eval: true, workerData })
      : new Worker(fileURLToPath(workerUrl), { workerData });
    const bornAt = Date.now();
    const slot: Slot = { worker, dead: false, pending: new Map(), recordings: new Set(), outbox: [], outboxTransfer: [], peak: 0, retireTimer: null };
    worker.on('message', (replies: WorkerReply[]) => {
      for (const r of replies) {
        const p = slot.pending.get(r.msgId);
        if (!p) continue;
        slot.pending.delete(r.msgId);
        if (r.error !== undefined) p.reject(new RecorderError(`encoder: ${r.error}`));
        else p.resolve(r.bytes ?? new Uint8Array(0));
      }
      if (slot.pending.size === 0) worker.unref();
    });
    const fail = (why: string): void => {
      if (slot.dead) return;
      slot.dead = true;
      if (slot.retireTimer) clearTimeout(slot.retireTimer);
      const err = new EncoderCrashError(`encoder worker died: ${why}`);
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
      for (const id of slot.recordings) this.byRecording.delete(id);
      const i = this.slots.indexOf(slot);
      if (i >= 0 && !this.closed) {
        this.log.error({ why, recordings: [...slot.recordings] }, 'encoder worker died; its recordings continue on a new one');
        // a worker that dies at birth is broken, not unlucky: wait before trying again
        const delay = Date.now() - bornAt < 2000 ? 2000 : 0;
        setTimeout(() => {
          if (!this.closed && this.slots[i] === slot) this.slots[i] = this.spawn();
        }, delay).unref();
      }
    };
    worker.on('error', (e) => fail(e.message));
    worker.on('exit', (code) => {
      if (!this.closed || slot.pending.size > 0) fail(`exit code ${code}`);
    });
    worker.unref();
    return slot;
  }

  private call(slot: Slot, req: DistributiveOmit<WorkerItem, 'msgId'>, transfer: ArrayBuffer[] = []): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new RecorderError('encoder pool is closed'));
    const msgId = this.nextMsg++;
    return new Promise((resolve, reject) => {
      slot.pending.set(msgId, { resolve, reject, sentAt: Date.now() });
      // an idle pool must not keep the process alive; a busy one must
      if (slot.pending.size === 1) slot.worker.ref();
      // batched: every request of this turn of the event loop (all recordings' ticks) goes in one message
      if (slot.outbox.length === 0) setImmediate(() => this.send(slot));
      slot.outbox.push({ ...req, msgId });
      slot.outboxTransfer.push(...transfer);
    });
  }

  private send(slot: Slot): void {
    const items = slot.outbox.splice(0);
    const transfer = slot.outboxTransfer.splice(0);
    if (items.length === 0 || slot.dead) return;
    slot.worker.postMessage({ op: 'batch', items } satisfies WorkerRequest, transfer);
  }

  private slotOf(id: string): Slot {
    const s = this.byRecording.get(id);
    if (!s) throw new EncoderCrashError(`encoder for recording ${id} is gone (its worker died)`);
    return s;
  }

  async open(id: string, format: Mp3Format): Promise<void> {
    this.byRecording.get(id)?.recordings.delete(id);
    const live = this.slots.filter((s) => !s.dead);
    if (live.length === 0) throw new RecorderError('no MP3 encoder is available');
    const slot = live.reduce((a, b) => (b.recordings.size < a.recordings.size ? b : a));
    slot.recordings.add(id);
    slot.peak = Math.max(slot.peak, slot.recordings.size);
    if (slot.retireTimer) clearTimeout(slot.retireTimer);
    slot.retireTimer = null;
    this.byRecording.set(id, slot);
    await this.call(slot, { op: 'open', id, format });
  }

  encode(id: string, channels: Int16Array[]): Promise<Uint8Array> {
    let slot: Slot;
    try {
      slot = this.slotOf(id);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.call(slot, { op: 'encode', id, channels }, channels.map((c) => c.buffer as ArrayBuffer));
  }

  /** Flushes and drops the encoder of a recording; returns the last MP3 bytes. */
  async finish(id: string): Promise<Uint8Array> {
    const slot = this.slotOf(id);
    try {
      return await this.call(slot, { op: 'close', id });
    } catch (err) {
      // the worker died with the encoder's last frames: what was written stays, the tail is lost
      if (err instanceof EncoderCrashError) return new Uint8Array(0);
      throw err;
    } finally {
      slot.recordings.delete(id);
      this.byRecording.delete(id);
      if (slot.recordings.size === 0 && slot.peak >= this.retire.minPeak && !slot.dead) {
        slot.retireTimer = setTimeout(() => this.retireIdle(slot), this.retire.idleMs).unref();
      }
    }
  }

  /** A fresh thread takes the place of an idle one (see EncoderRetire); one that got work meanwhile stays. */
  private retireIdle(slot: Slot): void {
    slot.retireTimer = null;
    const i = this.slots.indexOf(slot);
    if (this.closed || i < 0 || slot.dead || slot.recordings.size > 0 || slot.pending.size > 0 || slot.outbox.length > 0) return;
    slot.dead = true; // its exit is not a crash
    this.slots[i] = this.spawn();
    this.log.debug({ thread: i, peak: slot.peak }, 'idle encoder thread replaced by a fresh one (its memory goes with it)');
    void slot.worker.terminate().catch(() => undefined);
  }

  /** Requests waiting for an answer, over all workers. */
  get queueDepth(): number {
    return this.slots.reduce((n, s) => n + s.pending.size, 0);
  }

  /** Age of the oldest unanswered request, ms. */
  get oldestPendingMs(): number {
    let oldest = Infinity;
    for (const s of this.slots) for (const p of s.pending.values()) oldest = Math.min(oldest, p.sentAt);
    return oldest === Infinity ? 0 : Date.now() - oldest;
  }

  /** Test hook: makes the worker of a recording exit. */
  crashWorkerOf(id: string): void {
    const slot = this.slotOf(id);
    slot.worker.postMessage({ op: 'crash' } satisfies WorkerRequest);
  }

  /** Stops every worker. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.slots) if (s.retireTimer) clearTimeout(s.retireTimer);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
