/** What a bounded wait came to: the value, or why there is none. */
export type Bounded<T> = { ok: true; value: T } | { ok: false; timedOut: boolean; error: Error | null };

/**
 * Waits for `work` at most `ms`. Never rejects and never leaves a timer behind: a step that hangs (a client whose
 * server is gone) or throws is reported, and the caller goes on.
 */
export async function bounded<T>(work: Promise<T> | (() => Promise<T>), ms: number): Promise<Bounded<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Bounded<T>>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, timedOut: true, error: null }), ms);
  });
  try {
    const p = typeof work === 'function' ? work() : work;
    return await Promise.race([p.then((value): Bounded<T> => ({ ok: true, value })), timeout]);
  } catch (err) {
    return { ok: false, timedOut: false, error: err instanceof Error ? err : new Error(String(err)) };
  } finally {
    clearTimeout(timer);
  }
}
