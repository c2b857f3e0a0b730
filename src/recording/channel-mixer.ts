import { SAMPLE_RATE } from '../media/sample-clock.js';

/**
 * Collects PCM written by the legs at absolute sample-clock positions and hands out contiguous frames: whatever
 * no leg wrote is silence, paused spans are silence, writes behind what was already handed out are dropped and
 * counted. Channels are fixed slots (0 = left, 1 = right), never derived from packet order. Each slot starts with one
 * input (its index is the slot's); `addInput` gives a slot another (a third party in a conference, a SIPREC fork of
 * more than two streams): a slot's inputs are summed (saturated) as they are handed out, so each stream keeps its
 * own samples (a stream that rewrites a span, after a drift correction, replaces its own audio, never adds to it).
 * Pure.
 *
 * The held span lives in a ring (a power of two samples per input, grown by doubling when a write lands beyond it),
 * so handing out or discarding n samples costs O(n), never a shift of the whole buffer.
 */
export interface PlanarFrames {
  /** One array per output channel, equal lengths. */
  channels: Int16Array[];
  /** Clock position of the first sample. */
  start: number;
}

export class ChannelMixer {
  /** Samples dropped because they arrived after their position was handed out. */
  lateSamples = 0;
  /** Positions handed out that no leg wrote (gaps, hold, no media), per slot. */
  readonly silentSamples: number[];
  /** The inputs summed into each slot (its own, index = slot, first). */
  private readonly inputsOf: number[][];
  private buffers: Int16Array[];
  private written: Uint8Array[];
  private mask: number;
  private base: number;
  /** Writes before this position belong to nothing (before a recording's start): cut off, not counted late. */
  private floor = Number.NEGATIVE_INFINITY;
  private pauses: { from: number; to: number }[] = [];

  /**
   * @param inputs number of slots (parties/sides), 1 or 2; each starts with one input
   * @param outputChannels 1 (mono mix of all slots) or 2 (slot 0 left, slot 1 right)
   * @param start clock position of the first output sample (rounded down to a whole sample)
   * @param capacity samples held per input before the ring grows (rounded up to a power of two): it must cover the
   *   hold before encoding (`jitterMs + horizonMs`) and a tick; a recording whose files are slow to open grows it
   */
  constructor(
    readonly inputs: number,
    readonly outputChannels: 1 | 2,
    start: number,
    capacity = SAMPLE_RATE,
  ) {
    this.base = Math.floor(start);
    let cap = 16;
    while (cap < capacity) cap *= 2;
    this.mask = cap - 1;
    this.buffers = Array.from({ length: inputs }, () => new Int16Array(cap));
    this.written = Array.from({ length: inputs }, () => new Uint8Array(cap));
    this.silentSamples = Array.from({ length: inputs }, () => 0);
    this.inputsOf = Array.from({ length: inputs }, (_, i) => [i]);
  }

  /** A further input summed into `slot`; its index for `write`. */
  addInput(slot: number): number {
    if (slot < 0 || slot >= this.inputs) throw new RangeError(`no slot ${slot} (the mixer has ${this.inputs})`);
    const cap = this.mask + 1;
    this.buffers.push(new Int16Array(cap));
    this.written.push(new Uint8Array(cap));
    const input = this.buffers.length - 1;
    this.inputsOf[slot].push(input);
    return input;
  }

  /** Clock position up to which frames were handed out (or discarded). */
  get position(): number {
    return this.base;
  }

  /** Samples per input the ring holds now. */
  get capacity(): number {
    return this.mask + 1;
  }

  /** Makes the ring hold positions [base, base + need). */
  private grow(need: number): void {
    let cap = this.mask + 1;
    if (need <= cap) return;
    const old = cap;
    while (cap < need) cap *= 2;
    const from = this.base & (old - 1);
    const relay = <A extends Int16Array | Uint8Array>(b: A, make: (n: number) => A): A => {
      const n = make(cap);
      // lay the held span out from the new ring's index of `base`
      const to = this.base & (cap - 1);
      for (let i = 0; i < old; i++) n[(to + i) & (cap - 1)] = b[(from + i) & (old - 1)];
      return n;
    };
    this.buffers = this.buffers.map((b) => relay(b, (n) => new Int16Array(n)));
    this.written = this.written.map((b) => relay(b, (n) => new Uint8Array(n)));
    this.mask = cap - 1;
  }

  /**
   * Starts over at `at` (a recording's first sample): drops what is held before it, and from now on a write that
   * reaches back before it (the packet playing when the recording started) keeps only its part from `at` on, with
   * nothing counted late.
   */
  startAt(at: number): void {
    this.discard(at);
    this.floor = Math.floor(at);
  }

  /** Writes samples of `input` (a slot's own, or one `addInput` gave) starting at clock position `at` (rounded to a whole sample). */
  write(input: number, at: number, pcm: Int16Array): void {
    let src = pcm;
    let start = Math.round(at);
    if (start < this.floor) {
      const cut = Math.min(this.floor - start, src.length);
      src = src.subarray(cut);
      start += cut;
      if (src.length === 0) return;
    }
    let pos = start - this.base;
    if (pos < 0) {
      const drop = Math.min(-pos, src.length);
      this.lateSamples += drop;
      src = src.subarray(drop);
      pos = 0;
      if (src.length === 0) return;
    }
    this.grow(pos + src.length);
    const buf = this.buffers[input];
    const w = this.written[input];
    const cap = this.mask + 1;
    const i = (this.base + pos) & this.mask;
    const first = Math.min(src.length, cap - i);
    buf.set(first === src.length ? src : src.subarray(0, first), i);
    w.fill(1, i, i + first);
    if (first < src.length) {
      buf.set(src.subarray(first), 0);
      w.fill(1, 0, src.length - first);
    }
  }

  /** Silences output from clock position `at` until `resume`. */
  pause(at: number): void {
    const last = this.pauses[this.pauses.length - 1];
    if (last && last.to === Number.POSITIVE_INFINITY) return;
    this.pauses.push({ from: Math.max(Math.round(at), this.base), to: Number.POSITIVE_INFINITY });
  }

  resume(at: number): void {
    const last = this.pauses[this.pauses.length - 1];
    if (last && last.to === Number.POSITIVE_INFINITY) last.to = Math.max(Math.round(at), last.from);
  }

  get paused(): boolean {
    const last = this.pauses[this.pauses.length - 1];
    return last !== undefined && last.to === Number.POSITIVE_INFINITY;
  }

  /** Hands out frames for clock positions [position, until). */
  take(until: number): PlanarFrames {
    const n = Math.max(0, Math.floor(until) - this.base);
    const start = this.base;
    this.grow(n);
    const inputs: Int16Array[] = [];
    for (let s = 0; s < this.inputs; s++) {
      const out = new Int16Array(n);
      const mine = this.inputsOf[s];
      let missing = 0;
      if (mine.length === 1) {
        const w = this.written[s];
        const buf = this.buffers[s];
        for (let k = 0, i = start & this.mask; k < n; k++, i = (i + 1) & this.mask) {
          if (w[i] === 0) missing++;
          else out[k] = buf[i];
        }
      } else {
        for (let k = 0, i = start & this.mask; k < n; k++, i = (i + 1) & this.mask) {
          let v = 0;
          let any = false;
          for (const x of mine) {
            if (this.written[x][i] === 0) continue;
            any = true;
            v += this.buffers[x][i];
          }
          if (!any) missing++;
          else out[k] = clip16(v);
        }
      }
      this.silentSamples[s] += missing;
      inputs.push(out);
    }
    // silence paused spans
    for (const p of this.pauses) {
      const a = Math.max(0, p.from - start);
      const b = Math.min(n, p.to - start);
      if (b > a) for (const out of inputs) out.fill(0, a, b);
    }
    this.clear(n);
    let channels: Int16Array[];
    if (this.outputChannels === 2) {
      channels = [0, 1].map((c) => inputs[c] ?? new Int16Array(n));
    } else {
      channels = [mixDown(inputs)];
    }
    this.pauses = this.pauses.filter((p) => p.to > this.base);
    return { channels, start };
  }

  /** Drops what is held before `until` unheard and uncounted (nothing records it). */
  discard(until: number): void {
    const n = Math.floor(until) - this.base;
    if (n <= 0) return;
    this.clear(Math.min(n, this.mask + 1));
    this.base += n - Math.min(n, this.mask + 1);
    this.pauses = this.pauses.filter((p) => p.to > this.base);
  }

  /** Empties the first n held positions (their written marks: a sample is read only where marked) and moves past them. */
  private clear(n: number): void {
    const i = this.base & this.mask;
    const first = Math.min(n, this.mask + 1 - i);
    for (let s = 0; s < this.written.length; s++) {
      this.written[s].fill(0, i, i + first);
      if (first < n) this.written[s].fill(0, 0, n - first);
    }
    this.base += n;
  }
}

/** A sum of samples saturated to 16 bits. */
const clip16 = (v: number): number => (v > 32767 ? 32767 : v < -32768 ? -32768 : v);

/** Sums planar channels into one, clipped to 16 bits (the mono file is both parties mixed). */
export function mixDown(channels: Int16Array[]): Int16Array {
  const n = channels[0]?.length ?? 0;
  const mix = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (const c of channels) v += c[i];
    mix[i] = clip16(v);
  }
  return mix;
}
