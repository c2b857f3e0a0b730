import type { Logger } from 'pino';

/**
 * Gives the C heap's free memory back to the system once the recorder has had no call for `idleMs`. glibc keeps
 * what the threads freed (Node's and V8's buffers, the engine's queues) in its arenas until malloc_trim: after the
 * soak's last call that was ~60 MB, most of the RSS above the idle recorder's, and a trim took it below it. Once per
 * idle period (the first one from the start), never while a call is up: the trim walks every arena under its lock,
 * and the relay thread allocates.
 */
export class IdleTrim {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    /** The allocator's trim (the native engine's `trimMalloc`); returns whether memory was given back. */
    private readonly trim: () => boolean,
    private readonly log: Logger,
    private readonly idleMs = 60_000,
  ) {}

  /** The number of calls up now; called whenever it changes. */
  calls(n: number): void {
    if (n > 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    } else if (!this.timer && !this.closed) {
      this.timer = setTimeout(() => this.run(), this.idleMs).unref();
    }
  }

  private run(): void {
    this.timer = null;
    const before = process.memoryUsage.rss();
    const t0 = performance.now();
    const released = this.trim();
    const after = process.memoryUsage.rss();
    this.log.info({ released, rssBeforeMb: +(before / 2 ** 20).toFixed(1), rssAfterMb: +(after / 2 ** 20).toFixed(1), ms: +(performance.now() - t0).toFixed(1) }, 'idle: free C heap memory given back to the system');
  }

  /** Idempotent. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
