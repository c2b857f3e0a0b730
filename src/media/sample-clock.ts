/** The recorder's clock, in 8 kHz samples since an arbitrary monotonic origin. */
export interface SampleClock {
  /** Current position, in samples (fractional). */
  now(): number;
  /** Wall-clock time (ms since epoch) of a clock position. */
  wallMs(position: number): number;
}

export const SAMPLE_RATE = 8000;
/** Clock positions per millisecond. */
export const SAMPLES_PER_MS = SAMPLE_RATE / 1000;

export const systemClock: SampleClock = {
  now: () => performance.now() * (SAMPLE_RATE / 1000),
  wallMs: (position) => performance.timeOrigin + position / (SAMPLE_RATE / 1000),
};
