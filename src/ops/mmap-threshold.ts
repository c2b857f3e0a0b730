/**
 * The C heap's mmap threshold the recorder fixes at start (the native engine's `fixMmapThreshold`): blocks of 128 kB
 * and more get a mapping of their own, given back to the system when freed. glibc's default threshold starts there but
 * rises to the largest block freed so far; after a busy hour the recorder's per-call buffers then came from the
 * thread arenas, and the holes they left kept the arenas' memory after the calls were gone.
 */
export const MMAP_THRESHOLD_BYTES = 128 * 1024;

/** The threshold to fix, or null where the operator set glibc's own (MALLOC_MMAP_THRESHOLD_, GLIBC_TUNABLES). */
export function mmapThresholdToFix(env: NodeJS.ProcessEnv): number | null {
  if (env.MALLOC_MMAP_THRESHOLD_ !== undefined || /glibc\.malloc\.mmap_threshold=/.test(env.GLIBC_TUNABLES ?? '')) return null;
  return MMAP_THRESHOLD_BYTES;
}
