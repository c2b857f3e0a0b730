import { decodeG711, type G711Law } from './g711.js';
import { JitterBuffer, type JitterStats } from './jitter-buffer.js';
import { LegTimeline } from './leg-timeline.js';
import type { RtpPacket } from './rtp-packet.js';
import { SAMPLE_RATE } from './sample-clock.js';

/** Where decoded audio goes: a recording slot, at a clock position. `pcm` is valid during the call only (copy it). */
export type AudioSink = (slot: number, at: number, pcm: Int16Array) => void;

/** A packet waiting in the jitter buffer: its own copy of the payload, in a pooled object (reused after play). */
interface Arrived {
  sequence: number;
  ssrc: number;
  timestamp: number;
  codec: G711Law;
  payload: Uint8Array;
  /** Bytes of `payload` in use. */
  length: number;
  arrival: number;
}

/**
 * The recording-input stage of a stream: reorders a party's audio packets by sequence number, places each on the
 * recorder's clock by its RTP timestamp and decodes it into its recording slot. A new SSRC (transfer, restart) flushes
 * what waits and starts afresh. Allocates nothing per packet: waiting packets are pooled objects, decoding reuses
 * one buffer.
 */
export class CaptureStage {
  readonly jitter: JitterBuffer<Arrived>;
  readonly timeline: LegTimeline;
  private ssrc: number | null = null;
  private pcm = new Int16Array(1024);
  /** The decoded samples of the packet being played (a view kept while packets keep their size). */
  private pcmView = this.pcm.subarray(0, 0);
  /** Clock position up to which this stream's audio has been handed to the sink (-inf: none yet). */
  reached = Number.NEGATIVE_INFINITY;
  /** Arrived objects not in the jitter buffer, for reuse. */
  private readonly free: Arrived[] = [];

  constructor(
    jitterMs: number,
    maxSkewMs: number,
    readonly slot: number,
    private readonly sink: AudioSink,
  ) {
    this.jitter = new JitterBuffer(jitterMs);
    this.timeline = new LegTimeline((maxSkewMs * SAMPLE_RATE) / 1000);
  }

  /** Takes an audio packet in `codec` that arrived at `arrivalMs`. `p` is valid during the call only (copied). */
  accept(p: RtpPacket, codec: G711Law, arrivalMs: number): void {
    if (p.ssrc !== this.ssrc) {
      if (this.ssrc !== null) for (const a of this.jitter.restart()) this.play(a);
      this.ssrc = p.ssrc;
    }
    const item = this.free.pop() ?? { sequence: 0, ssrc: 0, timestamp: 0, codec, payload: new Uint8Array(160), length: 0, arrival: 0 };
    if (item.payload.length < p.payload.length) item.payload = new Uint8Array(p.payload.length);
    item.payload.set(p.payload);
    item.length = p.payload.length;
    item.sequence = p.sequence;
    item.ssrc = p.ssrc;
    item.timestamp = p.timestamp;
    item.codec = codec;
    item.arrival = (arrivalMs * SAMPLE_RATE) / 1000;
    for (const a of this.jitter.push(item, arrivalMs)) this.play(a);
    // refused (a duplicate or a late packet): back to the pool; a played one went back in play()
    if (!this.jitter.accepted) this.free.push(item);
  }

  private play(a: Arrived): void {
    const at = this.timeline.place(a.ssrc, a.sequence, a.timestamp, a.arrival);
    if (this.pcm.length < a.length) {
      this.pcm = new Int16Array(a.length);
      this.pcmView = this.pcm.subarray(0, 0);
    }
    const n = decodeG711(a.codec, a.payload, this.pcm, a.length);
    if (this.pcmView.length !== n) this.pcmView = this.pcm.subarray(0, n);
    this.free.push(a);
    if (at + n > this.reached) this.reached = at + n;
    this.sink(this.slot, at, this.pcmView);
  }

  /** Forgets the stream's timing: its next packet anchors afresh (back from hold, renegotiated). */
  resync(): void {
    this.timeline.reset();
  }

  /**
   * Releases packets whose waiting time ran out. `giveUpGaps` false: only what is in order (the thread itself just
   * stalled, and the packets that fill a gap may be waiting unread in the socket: their wait is not over).
   */
  poll(now = performance.now(), giveUpGaps = true): void {
    for (const a of this.jitter.poll(giveUpGaps ? now : Number.NEGATIVE_INFINITY)) this.play(a);
  }

  /** Hands over everything still held (before the recording stops). */
  drain(): void {
    for (const a of this.jitter.flush()) this.play(a);
  }

  get stats(): JitterStats & { ssrcChanges: number; reanchors: number; latePlaced: number } {
    return { ...this.jitter.stats, ssrcChanges: this.timeline.ssrcChanges, reanchors: this.timeline.reanchors, latePlaced: this.timeline.latePlaced };
  }
}
