import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { DeliveryConfig } from '../config.js';
import { bounded } from '../bounded.js';
import { DeliveryError } from '../errors.js';
import { DestinationHealth } from './destination-health.js';
import type { Destination } from '../profiles.js';
import type { Sidecar } from '../recording/metadata.js';
import { deliverRecording, type DeliveryProgress, type RecordingTargets, type SpeechMinerStore } from './deliver-recording.js';
import { parseS3Url, S3Store, type S3Target } from './s3-store.js';
import { WebDavClient } from './webdav-client.js';
import { isSidecar, mediaIdOfSidecar } from '../recording/spool-names.js';

export interface DeliveryJobData {
  /** Sidecar file name in the spool. */
  sidecar: string;
  mediaId: string;
  progress?: DeliveryProgress;
}

/** What the queue tells the metrics. */
export interface DeliveryEvents {
  stageDone(stage: 'put' | 'metadata', seconds: number): void;
  /** A delivery attempt failed at `stage` (mkcol, put, metadata, spool, or "other") for `reason` (http_<status>, network…). */
  attemptFailed(stage: string, reason: string): void;
  /** A recording's delivery failed for good (its job waits for `msml-recorder jobs retry`). */
  deliveryFailed(): void;
}

/** A failure's stage and a short, bounded reason for metrics labels. */
export function failureLabels(err: unknown): { stage: string; reason: string } {
  if (err instanceof DeliveryError) return { stage: err.stage, reason: err.status ? `http_${err.status}` : err.stage === 'spool' ? 'spool' : 'network' };
  return { stage: 'other', reason: 'error' };
}

/** The queue of this recorder instance (see instanceId()): each instance delivers its own spool. */
export function queueName(config: DeliveryConfig, instance: string): string {
  return `${config.queue}-${instance.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

/** Sidecars in the spool: finalized recordings not yet delivered. */
export async function pendingSidecars(spoolDir: string): Promise<string[]> {
  const names = await readdir(spoolDir).catch(() => [] as string[]);
  return names.filter(isSidecar).sort();
}

/**
 * BullMQ delivery of spooled recordings. The spool is the source of truth: a sweeper enqueues every sidecar it finds
 * (jobId = media id, so enqueuing twice is harmless), which covers Redis being down when a recording finished and
 * recordings left by a previous run. Jobs retry with exponential backoff; a non-retryable failure (a 4xx) fails the
 * job at once, and failed jobs stay in Redis until `msml-recorder jobs retry`.
 */
export class DeliveryQueue {
  readonly name: string;
  /** How each destination's latest attempt went (metrics, /status). */
  readonly health = new DestinationHealth();
  private queue: Queue;
  private worker: Worker;
  private readonly connections: Redis[];
  /** Media ids this process enqueued whose sidecars were still in the spool at the last sweep. */
  private queued = new Set<string>();
  private sweeper: NodeJS.Timeout | null = null;
  private sweeping = false;
  private closed = false;
  private redisUp = false;
  private redisDownSince: number | null = Date.now();
  /** S3 clients, one per bucket and credentials. */
  private readonly s3 = new Map<string, S3Store>();

  constructor(
    private readonly config: DeliveryConfig,
    private readonly spoolDir: string,
    private readonly log: Logger,
    instance: string,
    private readonly events: DeliveryEvents | null = null,
    /** Where a recording goes (its profile's destinations); the main delivery config when not given. */
    destinationFor: (profile: string | undefined) => Destination = () => config,
  ) {
    this.name = queueName(config, instance);
    // the producer fails fast while Redis is away (the sweeper tries again); the worker waits for it
    const producer = new Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    producer.on('error', () => undefined);
    producer.on('ready', () => {
      if (!this.redisUp) log.info({ queue: this.name }, 'redis connected');
      this.redisUp = true;
      // a Redis that restarted may have lost jobs: offer every sidecar again (same job id: no duplicates)
      this.queued.clear();
      this.redisDownSince = null;
      void this.sweep();
    });
    producer.on('close', () => {
      if (this.redisUp) log.warn('redis connection lost; recordings stay in the spool until it is back');
      this.redisUp = false;
      this.redisDownSince ??= Date.now();
    });
    const consumer = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
    consumer.on('error', () => undefined);
    this.connections = [producer, consumer];
    this.queue = new Queue(this.name, { connection: producer });
    this.queue.on('error', () => undefined);
    // one WebDAV client per set of credentials (it remembers the collections it made), one S3 client per bucket
    const clients = new Map<string, WebDavClient>();
    const davClient = (user: string, password: string): WebDavClient => {
      const key = `${user}\u0000${password}`;
      let c = clients.get(key);
      if (!c) {
        c = new WebDavClient({ user, password, timeoutMs: config.timeoutMs });
        clients.set(key, c);
      }
      return c;
    };
    const destinationOf = (sidecar: Sidecar): RecordingTargets => {
      const destination = destinationFor(sidecar.profile);
      return { destination, webdav: davClient(destination.webdavUser, destination.webdavPassword), speechMiner: speechMinerOf(destination) };
    };
    const speechMinerOf = (d: Destination): SpeechMinerStore | null => {
      const u = d.speechMinerUrl;
      if (!u) return null;
      const bucket = parseS3Url(u);
      if (!bucket) return { kind: 'webdav', client: davClient(d.speechMinerUser, d.speechMinerPassword), root: u.replace(/\/+$/, '') };
      const target: S3Target = { ...bucket, region: d.s3Region, endpoint: d.s3Endpoint, forcePathStyle: d.s3ForcePathStyle, accessKeyId: d.s3AccessKeyId, secretAccessKey: d.s3SecretAccessKey };
      const key = JSON.stringify(target);
      let store = this.s3.get(key);
      if (!store) {
        store = new S3Store(target, config.timeoutMs);
        this.s3.set(key, store);
      }
      return { kind: 's3', store };
    };
    this.worker = new Worker<DeliveryJobData>(
      this.name,
      async (job: Job<DeliveryJobData>) => {
        try {
          await deliverRecording(
            join(this.spoolDir, job.data.sidecar),
            job.data.progress ?? {},
            async (progress) => {
              await job.updateData({ ...job.data, progress });
            },
            { config, destinationOf, health: this.health, log: log.child({ job: job.id }), observe: (stage, seconds) => this.events?.stageDone(stage, seconds) },
          );
        } catch (err) {
          const retry = !(err instanceof DeliveryError) || err.retryable;
          const { stage, reason } = failureLabels(err);
          this.events?.attemptFailed(stage, reason);
          log.warn({ job: job.id, attempt: job.attemptsMade + 1, err: (err as Error).message, retry }, 'delivery attempt failed');
          if (!retry) throw new UnrecoverableError((err as Error).message);
          throw err;
        }
      },
      { connection: consumer, concurrency: config.concurrency, autorun: true },
    );
    this.worker.on('error', () => undefined);
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError || err.name === 'UnrecoverableError';
      if (!final) return;
      log.error({ job: job.id, err: err.message }, 'delivery failed; the job waits for `msml-recorder jobs retry`');
      this.events?.deliveryFailed();
    });
  }

  get redisConnected(): boolean {
    return this.redisUp;
  }

  /** ms Redis has been unreachable (0 when connected). */
  get redisDownMs(): number {
    return this.redisDownSince === null ? 0 : Date.now() - this.redisDownSince;
  }

  /** Job counts by state, or null while Redis is unreachable. */
  async jobCounts(): Promise<Record<string, number> | null> {
    if (!this.redisUp) return null;
    try {
      return await this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized');
    } catch {
      return null;
    }
  }

  /** Resolves when the spool holds no finalized recording (everything delivered), or after `ms`. */
  async drained(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      if ((await pendingSidecars(this.spoolDir)).length === 0) return true;
      if (Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, until - Date.now()))));
    }
  }

  start(): void {
    this.sweeper = setInterval(() => void this.sweep(), this.config.sweepMs);
    this.sweeper.unref();
    void this.sweep();
  }

  /** Enqueues a finalized recording now (the sweeper catches it later if Redis is away). */
  async enqueue(sidecarName: string): Promise<boolean> {
    const mediaId = mediaIdOfSidecar(sidecarName);
    if (this.queued.has(mediaId) || this.closed) return true;
    try {
      await this.queue.add('deliver', { sidecar: sidecarName, mediaId } satisfies DeliveryJobData, {
        jobId: mediaId,
        attempts: this.config.attempts,
        backoff: { type: 'exponential', delay: this.config.backoffMs },
        removeOnComplete: { age: 86_400, count: 10_000 },
        removeOnFail: false,
      });
      this.queued.add(mediaId);
      return true;
    } catch (err) {
      this.log.warn({ mediaId, err: (err as Error).message }, 'could not enqueue; the recording stays in the spool');
      return false;
    }
  }

  /** Recordings enqueued and still in the spool as of the last sweep (bounded by the spool, not by the uptime). */
  get tracked(): number {
    return this.queued.size;
  }

  /** Enqueues every sidecar in the spool not yet queued by this process. */
  async sweep(): Promise<void> {
    if (this.sweeping || this.closed) return;
    this.sweeping = true;
    try {
      const pending = await pendingSidecars(this.spoolDir);
      // what left the spool (delivered) is forgotten: the set holds what still waits, not every recording ever made
      // (one that was enqueued after the listing is offered again next sweep: same job id, no duplicate)
      const waiting = new Set(pending.map(mediaIdOfSidecar));
      for (const id of this.queued) if (!waiting.has(id)) this.queued.delete(id);
      for (const name of pending) {
        if (!(await this.enqueue(name))) break;
      }
    } finally {
      this.sweeping = false;
    }
  }

  /**
   * Stops the worker (letting a running delivery finish while Redis is there: a cut PUT is simply redone next
   * start), then the queue, then drops both connections. Bounded whatever Redis does: BullMQ's close waits for
   * Redis for ever when it is gone.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    const graceful = await bounded(() => this.worker.close(), this.redisUp ? 5000 : 200);
    if (!graceful.ok) await bounded(() => this.worker.close(true), 500);
    await bounded(() => this.queue.close(), this.redisUp ? 1000 : 200);
    for (const c of this.connections) c.disconnect();
    for (const s of this.s3.values()) s.close();
  }
}
