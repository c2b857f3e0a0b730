export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` every 100 ms until it holds; after `timeoutMs` throws "timed out: <what>" followed by `context()`
 * (e.g. the last log lines of the processes involved).
 */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, context: () => string = () => ''): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out: ${what}\n${context()}`.trimEnd());
    await sleep(100);
  }
}
