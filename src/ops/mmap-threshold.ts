/**
 * The C heap's mmap threshold the recorder fixes at start (the native engine's `fixMmapThreshold`): blocks of 128 kB
 * and more get a mapping of their own, given back to the system when freed. glibc's default threshold starts there but
 * rises to the largest block freed so far (up to 32 MB), and from then on blocks up to that size come from the thread
 * arenas, where the holes they leave when freed can keep the memory (after a 4 MB block was freed, 64 blocks of 512 kB
 * grew the main arena 32 MB). A bound, not a cure: the hour-long soak's arenas ended about where they did without it.
 */
export const MMAP_THRESHOLD_BYTES = 128 * 1024;

/** The threshold to fix, or null where the operator set glibc's own (MALLOC_MMAP_THRESHOLD_, GLIBC_TUNABLES). */
export function mmapThresholdToFix(env: NodeJS.ProcessEnv): number | null {
  if (env.MALLOC_MMAP_THRESHOLD_ !== undefined || /glibc\.malloc\.mmap_threshold=/.test(env.GLIBC_TUNABLES ?? '')) return null;
  return MMAP_THRESHOLD_BYTES;
}
