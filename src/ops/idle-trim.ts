import type { Logger } from 'pino';
import { bounded } from '../bounded.js';

/** How an idle recorder gives memory back. */
export interface IdleTrimSteps {
  /**
   * Every JavaScript thread collects its garbage (collectGarbage in the main thread, each media worker and each
   * encoder thread); resolves when they have.
   */
  collect: () => Promise<void>;
  /** The allocator's trim (the native engine's `trimMalloc`): whether memory was given back; null without it. */
  trim: (() => boolean) | null;
}

/**
 * Gives memory back to the system once the recorder has had no call for `idleMs`: first every thread collects its
 * garbage and its V8 heap gives its free pages back (a quiet thread keeps what it held at its busiest: after a short
 * soak the main thread had 98 MB reserved for 37 MB used), then glibc's arenas give back what the threads freed
 * (malloc_trim; after the soak's last call that was ~60 MB). Once per idle period (the first one from the start),
 * never while a call is up: both stop the threads for tens of milliseconds, and the trim walks every arena under
 * its lock while the relay thread allocates. A call that comes meanwhile skips the trim.
 */
export class IdleTrim {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private up = 0;

  constructor(
    private readonly steps: IdleTrimSteps,
    private readonly log: Logger,
    private readonly idleMs = 60_000,
    /** How long the threads may take to collect before the trim goes on without them, ms. */
    private readonly collectMs = 10_000,
  ) {}

  /** The number of calls up now; called whenever it changes. */
  calls(n: number): void {
    this.up = n;
    if (n > 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    } else if (!this.timer && !this.closed) {
      this.timer = setTimeout(() => void this.run(), this.idleMs).unref();
    }
  }

  private async run(): Promise<void> {
    this.timer = null;
    const mb = (x: number): number => +(x / 2 ** 20).toFixed(1);
    const before = process.memoryUsage.rss();
    const t0 = performance.now();
    const collected = await bounded(this.steps.collect, this.collectMs);
    const afterGc = process.memoryUsage.rss();
    const ms = +(performance.now() - t0).toFixed(1);
    if (this.closed || this.up > 0 || !this.steps.trim) {
      this.log.info({ collected: collected.ok, rssBeforeMb: mb(before), rssAfterMb: mb(afterGc), ms }, 'idle: garbage collected');
      return;
    }
    const released = this.steps.trim();
    const after = process.memoryUsage.rss();
    this.log.info(
      { collected: collected.ok, released, rssBeforeMb: mb(before), rssAfterGcMb: mb(afterGc), rssAfterMb: mb(after), ms: +(performance.now() - t0).toFixed(1) },
      'idle: garbage collected, free C heap memory given back to the system',
    );
  }

  /** Idempotent. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
