import { SAMPLE_RATE } from '../media/sample-clock.js';

/**
 * Collects PCM written by the legs at absolute sample-clock positions and hands out contiguous frames: whatever
 * no leg wrote is silence, paused spans are silence, writes behind what was already handed out are dropped and
 * counted. Channels are fixed slots (0 = left, 1 = right), never derived from packet order. Pure.
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
  /** Positions handed out that no leg wrote (gaps, hold, no media), per input slot. */
  readonly silentSamples: number[];
  private buffers: Int16Array[];
  private written: Uint8Array[];
  private base: number;
  private pauses: { from: number; to: number }[] = [];

  /**
   * @param inputs number of input slots (legs/m-lines), 1 or 2
   * @param outputChannels 1 (mono mix of all inputs) or 2 (input 0 left, input 1 right)
   * @param start clock position of the first output sample
   * @param capacity samples held per input before the buffers grow (doubling): 1 s covers the hold before encoding
   *   (`jitterMs + maxSkewMs`, 480 ms) and a tick; a recording whose files are slow to open grows it while it waits
   */
  constructor(
    readonly inputs: number,
    readonly outputChannels: 1 | 2,
    start: number,
    capacity = SAMPLE_RATE,
  ) {
    this.base = start;
    this.buffers = Array.from({ length: inputs }, () => new Int16Array(capacity));
    this.written = Array.from({ length: inputs }, () => new Uint8Array(capacity));
    this.silentSamples = Array.from({ length: inputs }, () => 0);
  }

  /** Clock position up to which frames were handed out. */
  get position(): number {
    return this.base;
  }

  private grow(need: number): void {
    let cap = this.buffers[0].length;
    if (need <= cap) return;
    while (cap < need) cap *= 2;
    this.buffers = this.buffers.map((b) => {
      const n = new Int16Array(cap);
      n.set(b);
      return n;
    });
    this.written = this.written.map((b) => {
      const n = new Uint8Array(cap);
      n.set(b);
      return n;
    });
  }

  /** Writes samples of input `slot` starting at clock position `at`. */
  write(slot: number, at: number, pcm: Int16Array): void {
    let src = pcm;
    let pos = at - this.base;
    if (pos < 0) {
      const drop = Math.min(-pos, src.length);
      this.lateSamples += drop;
      src = src.subarray(drop);
      pos = 0;
      if (src.length === 0) return;
    }
    this.grow(pos + src.length);
    this.buffers[slot].set(src, pos);
    this.written[slot].fill(1, pos, pos + src.length);
  }

  /** Silences output from clock position `at` until `resume`. */
  pause(at: number): void {
    const last = this.pauses[this.pauses.length - 1];
    if (last && last.to === Number.POSITIVE_INFINITY) return;
    this.pauses.push({ from: Math.max(at, this.base), to: Number.POSITIVE_INFINITY });
  }

  resume(at: number): void {
    const last = this.pauses[this.pauses.length - 1];
    if (last && last.to === Number.POSITIVE_INFINITY) last.to = Math.max(at, last.from);
  }

  get paused(): boolean {
    const last = this.pauses[this.pauses.length - 1];
    return last !== undefined && last.to === Number.POSITIVE_INFINITY;
  }

  /** Hands out frames for clock positions [position, until). */
  take(until: number): PlanarFrames {
    const n = Math.max(0, Math.floor(until - this.base));
    const start = this.base;
    this.grow(n);
    for (let s = 0; s < this.inputs; s++) {
      const w = this.written[s];
      let missing = 0;
      for (let i = 0; i < n; i++) if (w[i] === 0) missing++;
      this.silentSamples[s] += missing;
    }
    // silence paused spans
    for (const p of this.pauses) {
      const a = Math.max(0, p.from - start);
      const b = Math.min(n, p.to - start);
      if (b > a) for (const buf of this.buffers) buf.fill(0, a, b);
    }
    let channels: Int16Array[];
    if (this.outputChannels === 2) {
      channels = [0, 1].map((c) => (c < this.inputs ? this.buffers[c].slice(0, n) : new Int16Array(n)));
    } else {
      channels = [mixDown(this.buffers.map((b) => b.subarray(0, n)))];
    }
    // shift the rest down
    for (let s = 0; s < this.inputs; s++) {
      this.buffers[s].copyWithin(0, n);
      this.buffers[s].fill(0, this.buffers[s].length - n);
      this.written[s].copyWithin(0, n);
      this.written[s].fill(0, this.written[s].length - n);
    }
    this.base += n;
    this.pauses = this.pauses.filter((p) => p.to > this.base);
    return { channels, start };
  }
}

/** Sums planar channels into one, clipped to 16 bits (the mono file is both parties mixed). */
export function mixDown(channels: Int16Array[]): Int16Array {
  const n = channels[0]?.length ?? 0;
  const mix = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (const c of channels) v += c[i];
    mix[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return mix;
}
