/**
 * Places the RTP packets of one leg on the recorder's sample clock (8 kHz samples since an arbitrary monotonic
 * origin). The first packet of an SSRC anchors RTP time to its arrival; later packets follow their RTP timestamps,
 * so loss and silence suppression become gaps at the right place. Positions are whole samples. Pure: arrival time is
 * passed in.
 *
 * - Late packets that continue the stream (the next sequence numbers, the timestamp not going back) keep their
 *   place however late they are: a stall of the recorder or of the sender (a paused process, a throttled pod, a
 *   burst held back by the network) delivers the backlog in a burst, and each packet still belongs where its
 *   timestamp puts it. Whether that place is still open is the recording's business (its hold horizon); what came
 *   too late for it is counted there, never moved elsewhere.
 * - A backlog drains faster than real time, so its lateness shrinks with every packet. Lateness that does not shrink
 *   for `classifyMs` of arrival time is a sender that shifted (a pause whose timestamps did not advance): that
 *   re-anchors, as do a new SSRC, a packet that runs ahead of arrival by more than `maxSkewSamples` (a timestamp
 *   jump), and a late packet that does not continue the stream (sequence or timestamp jumped back). A re-anchor
 *   shifts only this leg.
 * - Clock drift: a sender's 8 kHz clock is never exactly ours (±100 ppm is 0.36 s an hour). The offset follows the
 *   least-delayed packets of the last few seconds (jitter only ever adds delay, so their arrival is the truest), in
 *   steps of `slewSamples` (2.5 ms) at most once a second, so two legs stay aligned to within a few ms however long
 *   the call, and a recorder that reads its sockets late for a while (a busy node) moves no leg by more than that. In
 *   the first seconds after an anchor the correction is not bounded: it removes the delay of the packet that
 *   anchored the leg. Late packets (a backlog) do not feed it.
 */
export interface TimelineOptions {
  blockPackets?: number;
  blocks?: number;
  slewSamples?: number;
  /** How long (samples of arrival time) lateness may fail to shrink before the leg re-anchors. */
  classifySamples?: number;
}

/** Sequence numbers a continuing packet may skip (loss in front of it). */
const MAX_SEQ_STEP = 100;

export class LegTimeline {
  ssrcChanges = 0;
  reanchors = 0;
  /** Drift corrections applied (each a step of at least `slewSamples`). */
  slews = 0;
  /** Packets placed by their timestamp although they arrived more than the skew limit late (a backlog ridden out). */
  latePlaced = 0;
  private ssrc: number | null = null;
  private lastExt = 0;
  private lastSeq = 0;
  private offset = 0;
  private block: number[] = [];
  private mins: number[] = [];
  /** The late episode in progress: arrival and lateness of its first packet (arrival -1: none). */
  private episodeArrival = -1;
  private episodeLate = 0;

  constructor(
    private readonly maxSkewSamples: number,
    private readonly opts: TimelineOptions = {},
  ) {}

  private extend(ts: number): number {
    // 32-bit wrap: pick the candidate nearest to the last extended timestamp
    const base = this.lastExt - (this.lastExt % 0x1_0000_0000);
    let best = base + ts;
    const below = best - 0x1_0000_0000;
    const above = best + 0x1_0000_0000;
    if (Math.abs(below - this.lastExt) < Math.abs(best - this.lastExt)) best = below;
    if (Math.abs(above - this.lastExt) < Math.abs(best - this.lastExt)) best = above;
    return best;
  }

  private anchor(ext: number, arrivalSample: number): void {
    this.offset = Math.round(arrivalSample) - ext;
    this.block = [];
    this.mins = [];
    this.episodeArrival = -1;
  }

  /** Forgets the stream: the next packet anchors afresh (the party came back from hold, the stream was renegotiated). */
  reset(): void {
    this.ssrc = null;
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
    this.block.length = 0;
    if (this.mins.length > blocks) this.mins.shift();
    let target = this.mins[0];
    for (const m of this.mins) if (m < target) target = m;
    target = Math.round(target);
    const step = target - this.offset;
    if (Math.abs(step) >= slew) {
      // once the window is full, one step of `slew` a block at most (2.5 ms a second: 30x a ±100 ppm clock): a
      // recorder slowed for seconds (a busy node) delays every packet alike, which must not move the leg by that much
      this.offset += this.mins.length >= blocks ? Math.sign(step) * slew : step;
      this.slews++;
    }
  }

  /** Returns the sample-clock position of the packet's first sample. */
  place(ssrc: number, sequence: number, timestamp: number, arrivalSample: number): number {
    if (ssrc !== this.ssrc) {
      if (this.ssrc !== null) this.ssrcChanges++;
      this.ssrc = ssrc;
      this.lastExt = timestamp;
      this.lastSeq = sequence;
      this.anchor(timestamp, arrivalSample);
      return timestamp + this.offset;
    }
    const ext = this.extend(timestamp);
    const seqStep = (sequence - this.lastSeq + 0x10000) & 0xffff;
    const continues = seqStep >= 1 && seqStep <= MAX_SEQ_STEP && ext >= this.lastExt;
    if (ext > this.lastExt) this.lastExt = ext;
    this.lastSeq = sequence;
    const pos = ext + this.offset;
    const late = arrivalSample - pos;
    if (late > this.maxSkewSamples && continues) {
      if (this.episodeArrival < 0) {
        this.episodeArrival = arrivalSample;
        this.episodeLate = late;
      } else {
        const span = arrivalSample - this.episodeArrival;
        // a backlog drains faster than real time: its lateness shrinks by most of the arrival time that passes
        if (span >= (this.opts.classifySamples ?? 1600) && this.episodeLate - late < span / 2) return this.reanchorAt(ext, arrivalSample);
      }
      this.latePlaced++;
      return pos;
    }
    if (Math.abs(late) > this.maxSkewSamples) return this.reanchorAt(ext, arrivalSample);
    this.episodeArrival = -1;
    this.trackDrift(ext, arrivalSample);
    return pos;
  }

  private reanchorAt(ext: number, arrivalSample: number): number {
    this.reanchors++;
    this.anchor(ext, arrivalSample);
    return ext + this.offset;
  }
}
