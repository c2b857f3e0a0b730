import type { Logger } from 'pino';
import { bounded } from '../bounded.js';

/** One step of a shutdown: what it closes, and how long it may take before the shutdown goes on without it. */
export interface CloseStep {
  name: string;
  timeoutMs: number;
  run: () => unknown;
}

/**
 * Runs close steps in order, each guarded and bounded (the way BullMQ's `Worker.close()` runs its clean-up): a step
 * that throws or hangs (a client whose server is gone) is logged and skipped, so a shutdown always ends, in at most
 * the sum of the steps' bounds.
 */
export async function closeSteps(steps: CloseStep[], log: Logger): Promise<void> {
  for (const step of steps) {
    const t0 = performance.now();
    const r = await bounded(async () => step.run(), step.timeoutMs);
    if (!r.ok) {
      const ms = Math.round(performance.now() - t0);
      if (r.timedOut) log.warn({ step: step.name, ms }, 'close step timed out; going on');
      else log.warn({ step: step.name, ms, err: r.error?.message }, 'close step failed; going on');
    }
  }
}

/** What a process does on SIGTERM / SIGINT: the first signal drains, a second stops at once. */
export interface Stoppable {
  drain(reason: string): Promise<void>;
  stop(reason: string): Promise<void>;
}

/**
 * Wires SIGTERM and SIGINT to a drain (first signal) and a stop (second), then exits 0. A drain or stop that fails
 * still ends the process (exit 1, logged): a pod must never sit in Terminating because a close step broke.
 */
export function exitOnSignals(target: Stoppable, log: Logger): void {
  let signals = 0;
  const onSignal = (sig: string): void => {
    signals++;
    const done = signals === 1 ? target.drain(sig) : target.stop(`second ${sig}`);
    done.then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ err: err.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
