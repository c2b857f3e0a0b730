/** The benches' test of a whole recording: every 10 ms window of each channel carries its party's tone. */
import type { Decoded } from '../test/harness/audio.js';

/** RMS below which a 10 ms window of a -15 dBFS tone counts as missing audio (a 20 ms hole covers a whole window). */
const MIN_RMS = 1000;

const rms = (x: Int16Array): number => {
  let a = 0;
  for (let i = 0; i < x.length; i++) a += x[i] * x[i];
  return Math.sqrt(a / Math.max(1, x.length));
};

/**
 * The 10 ms windows from `from` to `to` seconds in which a channel is far below the tone's level, skipping what
 * `skip(channel, t)` excludes (a pause, a hold); each as "t s (L rms, R rms)". A phase step from a clock correction
 * does not lower the level, so it is not a hole.
 */
export function silentWindows(d: Decoded, from: number, to: number, skip: (channel: number, t: number) => boolean = () => false): string[] {
  const out: string[] = [];
  for (let w = from; w + 0.01 <= to; w += 0.01) {
    const i0 = Math.round(w * 8000);
    const levels = d.channels.map((c) => rms(c.subarray(i0, i0 + 80)));
    if (levels.some((l, ch) => l < MIN_RMS && !skip(ch, w) && !skip(ch, w + 0.01))) out.push(`${w.toFixed(2)} s (L ${levels[0].toFixed(0)}, R ${(levels[1] ?? 0).toFixed(0)})`);
  }
  return out;
}
