import { udpEngineBinding } from './udp-engine.js';

/**
 * Lowers the calling thread's CPU priority to nice `n` (Linux: per thread; raising the value needs no privilege),
 * through the native engine's binding. Work that can wait (MP3 encoding) yields the cores to the relay thread the
 * moment a packet arrives. Returns false where it could not (engine not built, not Linux): the thread runs as before.
 */
export function lowerThreadPriority(n: number): boolean {
  const b = udpEngineBinding();
  return !(b instanceof Error) && b.niceThread(n);
}
