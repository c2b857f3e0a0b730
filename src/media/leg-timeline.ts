/**
 * Places the RTP packets of one leg on the recorder's sample clock (8 kHz samples since an arbitrary
 * monotonic origin). The first packet of an SSRC anchors RTP time to the packet's arrival; later packets
 * follow their RTP timestamps, so loss and silence suppression become gaps at the right place. A new SSRC,
 * or a timestamp that strays more than `maxSkewSamples` from arrival time (a sender restart, a jump), anchors
 * again, which shifts only this leg. Pure: arrival time is passed in.
 */
export class LegTimeline {
  ssrcChanges = 0;
  reanchors = 0;
  private ssrc: number | null = null;
  private lastExt = 0;
  private offset = 0;

  constructor(private readonly maxSkewSamples: number) {}

  private extend(ts: number): number {
    // 32-bit wrap: pick the candidate nearest to the last extended timestamp
    const base = this.lastExt - (this.lastExt % 0x1_0000_0000);
    let best = base + ts;
    for (const c of [best - 0x1_0000_0000, best + 0x1_0000_0000]) {
      if (Math.abs(c - this.lastExt) < Math.abs(best - this.lastExt)) best = c;
    }
    return best;
  }

  /** Returns the sample-clock position of the packet's first sample. */
  place(ssrc: number, timestamp: number, arrivalSample: number): number {
    if (ssrc !== this.ssrc) {
      if (this.ssrc !== null) this.ssrcChanges++;
      this.ssrc = ssrc;
      this.lastExt = timestamp;
      this.offset = arrivalSample - timestamp;
      return arrivalSample;
    }
    const ext = this.extend(timestamp);
    if (ext > this.lastExt) this.lastExt = ext;
    let pos = ext + this.offset;
    if (Math.abs(pos - arrivalSample) > this.maxSkewSamples) {
      this.reanchors++;
      this.offset = arrivalSample - ext;
      pos = arrivalSample;
    }
    return pos;
  }
}
