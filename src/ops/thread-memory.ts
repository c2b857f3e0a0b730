import { getHeapStatistics } from 'node:v8';
import type { Worker } from 'node:worker_threads';

/** A JavaScript thread's memory as V8 sees it (each thread is an isolate of its own), bytes. */
export interface ThreadMemory {
  heapUsed: number;
  heapTotal: number;
  /** Memory outside the heap that its objects hold: ArrayBuffers, WebAssembly memories. */
  external: number;
}

const of = (h: { used_heap_size: number; total_heap_size: number; external_memory: number }): ThreadMemory => ({ heapUsed: h.used_heap_size, heapTotal: h.total_heap_size, external: h.external_memory });

/** The calling thread's. */
export const ownMemory = (): ThreadMemory => of(getHeapStatistics());

/** A worker thread's, asked of it (Node ≥ 22.16 / 24); null where Node cannot tell or the worker is gone. */
export async function workerMemory(w: Worker): Promise<ThreadMemory | null> {
  const ask = (w as Worker & { getHeapStatistics?: () => Promise<ReturnType<typeof getHeapStatistics>> }).getHeapStatistics;
  if (!ask) return null;
  try {
    return of(await ask.call(w));
  } catch {
    return null;
  }
}
