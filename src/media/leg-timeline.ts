/**
 * Places the RTP packets of one leg on the recorder's sample clock (8 kHz samples since an arbitrary monotonic
 * origin). The first packet of an SSRC anchors RTP time to its arrival; later packets follow their RTP timestamps,
 * so loss and silence suppression become gaps at the right place. Pure: arrival time is passed in.
 *
 * - A new SSRC, or a timestamp that strays more than `maxSkewSamples` from arrival (a sender restart, a hold whose
 *   timestamps did not advance), anchors again. That shifts only this leg.
 * - Clock drift: a sender's 8 kHz clock is never exactly ours (±100 ppm is 0.36 s an hour). The offset follows the
 *   least-delayed packets of the last few seconds (jitter only ever adds delay, so their arrival is the truest), in
 *   steps once it is `slewSamples` off, so two legs stay aligned to within a few ms however long the call. The same
 *   correction removes the delay of the packet that anchored the leg, within the first second.
 */
export class LegTimeline {
  ssrcChanges = 0;
  reanchors = 0;
  /** Drift corrections applied (each a step of at least `slewSamples`). */
  slews = 0;
  private ssrc: number | null = null;
  private lastExt = 0;
  private offset = 0;
  private block: number[] = [];
  private mins: number[] = [];

  constructor(
    private readonly maxSkewSamples: number,
    private readonly opts: { blockPackets?: number; blocks?: number; slewSamples?: number } = {},
  ) {}

  private extend(ts: number): number {
    // 32-bit wrap: pick the candidate nearest to the last extended timestamp
    const base = this.lastExt - (this.lastExt % 0x1_0000_0000);
    let best = base + ts;
    for (const c of [best - 0x1_0000_0000, best + 0x1_0000_0000]) {
      if (Math.abs(c - this.lastExt) < Math.abs(best - this.lastExt)) best = c;
    }
    return best;
  }

  private anchor(ext: number, arrivalSample: number): void {
    this.offset = arrivalSample - ext;
    this.block = [];
    this.mins = [];
  }

  /**
   * Tracks arrival − timestamp. Each block of packets contributes its 10th-percentile value (not its minimum: a
   * sender that sends a packet early must not pull the whole leg earlier); the offset moves to the smallest of the
   * last few blocks' values when it is off by `slewSamples` or more. Until the window is full (the first seconds
   * after an anchor, when the anchoring packet's own delay is still in the offset) every block may correct it.
   */
  private trackDrift(ext: number, arrivalSample: number): void {
    const blockPackets = this.opts.blockPackets ?? 50;
    const blocks = this.opts.blocks ?? 4;
    const slew = this.opts.slewSamples ?? 20;
    this.block.push(arrivalSample - ext);
    if (this.block.length < blockPackets) return;
    this.block.sort((a, b) => a - b);
    this.mins.push(this.block[Math.floor(this.block.length / 10)]);
    this.block = [];
    if (this.mins.length > blocks) this.mins.shift();
    const target = Math.min(...this.mins);
    if (Math.abs(target - this.offset) >= slew) {
      this.offset = target;
      this.slews++;
    }
  }

  /** Returns the sample-clock position of the packet's first sample. */
  place(ssrc: number, timestamp: number, arrivalSample: number): number {
    if (ssrc !== this.ssrc) {
      if (this.ssrc !== null) this.ssrcChanges++;
      this.ssrc = ssrc;
      this.lastExt = timestamp;
      this.anchor(timestamp, arrivalSample);
      return arrivalSample;
    }
    const ext = this.extend(timestamp);
    if (ext > this.lastExt) this.lastExt = ext;
    let pos = ext + this.offset;
    if (Math.abs(pos - arrivalSample) > this.maxSkewSamples) {
      this.reanchors++;
      this.anchor(ext, arrivalSample);
      pos = arrivalSample;
    } else {
      this.trackDrift(ext, arrivalSample);
    }
    return pos;
  }
}
