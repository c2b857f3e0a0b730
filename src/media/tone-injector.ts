import { SAMPLES_PER_MS } from './sample-clock.js';

/** How late the wall clock may let a play be when the relayed packets stopped coming, ms. */
const WALL_SLACK_MS = 40;

/**
 * The recording alert tone for one party (GIR's record tone): while it plays, the audio relayed to that party is the
 * tone instead, packet by packet, in the relayed packets themselves (same SSRC, sequence numbers and timestamps, so
 * the party's stream stays continuous); then `silenceMs` without it, then again. The silence is counted in the relayed
 * stream's own time (its packets' samples), so plays are exactly `tone + silenceMs` apart whatever the packets'
 * jitter; should the packets stop, the wall clock starts the next play (at most 40 ms late). The first play comes with
 * the first relayed packet after the recording starts, and after a resume. Nothing plays while paused. Pure: time is
 * passed in.
 */
export class ToneInjector {
  private pos = -1;
  /** The silence still to go before the next play: in relayed samples (stream time), and as a wall-clock fallback. */
  private silenceLeft = 0;
  private nextAtMs = Number.NEGATIVE_INFINITY;
  private paused = false;
  private chunk = new Int16Array(160);

  constructor(
    private readonly pcm: Int16Array,
    private readonly silenceMs: number,
    /** Called when a play starts (the sidecar's history notes it). */
    private readonly onPlay: () => void = () => undefined,
  ) {}

  pause(): void {
    this.paused = true;
    this.pos = -1;
  }

  /** Resumes: the tone plays again with the next relayed packet. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.silenceLeft = 0;
    this.nextAtMs = Number.NEGATIVE_INFINITY;
  }

  /**
   * For a packet of `n` samples relayed at `nowMs`: the tone samples to send in its place (valid until the next
   * call), or null (no tone now: relay the packet as it is).
   */
  next(n: number, nowMs: number): Int16Array | null {
    if (this.paused || this.pcm.length === 0) return null;
    if (this.pos < 0) {
      if (this.silenceLeft > 0 && nowMs < this.nextAtMs + WALL_SLACK_MS) {
        this.silenceLeft -= n;
        return null;
      }
      this.pos = 0;
      this.onPlay();
    }
    if (this.chunk.length !== n) this.chunk = new Int16Array(n);
    const take = Math.min(n, this.pcm.length - this.pos);
    this.chunk.set(this.pcm.subarray(this.pos, this.pos + take));
    this.chunk.fill(0, take);
    this.pos += n;
    if (this.pos >= this.pcm.length) {
      this.pos = -1;
      // silence from the end of this packet's audio
      this.silenceLeft = this.silenceMs * SAMPLES_PER_MS;
      this.nextAtMs = nowMs + n / SAMPLES_PER_MS + this.silenceMs;
    }
    return this.chunk;
  }
}
