import type { NegotiatedMedia } from '../sip/sdp-answer.js';
import { decodeG711 } from './g711.js';
import { JitterBuffer, type JitterStats } from './jitter-buffer.js';
import { LegTimeline } from './leg-timeline.js';
import type { RtpEndpoint } from './rtp-endpoint.js';
import type { RtpPacket } from './rtp-packet.js';
import { SAMPLE_RATE } from './sample-clock.js';

/** Where decoded audio goes: a recording slot, at a clock position. */
export type AudioSink = (slot: number, at: number, pcm: Int16Array) => void;

interface Arrived {
  sequence: number;
  packet: RtpPacket;
  payload: Uint8Array;
  arrival: number;
}

export interface StreamOptions {
  jitterMs: number;
  maxSkewMs: number;
}

/**
 * One negotiated audio m-line of a leg: receives RTP on its endpoint, reorders it, places it on the clock and
 * decodes it into its recording slot. Packets of other payload types (telephone-event, comfort noise, an
 * unnegotiated codec) are counted and not recorded: their time becomes silence.
 */
export class MediaStream {
  readonly jitter: JitterBuffer<Arrived>;
  readonly timeline: LegTimeline;
  ignoredPackets = 0;
  /** The far end learnt from where its packets come from (symmetric RTP); SDP address until then. */
  remote: { address: string; port: number } | null;
  private pcm = new Int16Array(1024);
  private closed = false;

  constructor(
    readonly endpoint: RtpEndpoint,
    public media: NegotiatedMedia | null,
    readonly slot: number,
    private readonly sink: AudioSink,
    private readonly opts: StreamOptions,
  ) {
    this.jitter = new JitterBuffer(opts.jitterMs);
    this.timeline = new LegTimeline((opts.maxSkewMs * SAMPLE_RATE) / 1000);
    this.remote = media?.remoteAddress ? { address: media.remoteAddress, port: media.remotePort } : null;
    endpoint.onPacket = (p, arrivalMs, from) => this.receive(p, arrivalMs, from);
  }

  /** Applies a new negotiation (re-INVITE, 3PCC answer in the ACK). The recording slot stays. */
  update(media: NegotiatedMedia): void {
    this.media = media;
    this.remote = media.remoteAddress ? { address: media.remoteAddress, port: media.remotePort } : null;
  }

  private receive(p: RtpPacket, arrivalMs: number, from: { address: string; port: number }): void {
    if (this.closed || !this.media) return;
    if (p.payloadType !== this.media.payloadType) {
      this.ignoredPackets++;
      return;
    }
    this.remote = from;
    const arrival = (arrivalMs * SAMPLE_RATE) / 1000;
    const item: Arrived = { sequence: p.sequence, packet: p, payload: Uint8Array.from(p.payload), arrival };
    for (const a of this.jitter.push(item, arrivalMs)) this.play(a);
  }

  private play(a: Arrived): void {
    if (!this.media) return;
    const at = this.timeline.place(a.packet.ssrc, a.packet.timestamp, a.arrival);
    if (this.pcm.length < a.payload.length) this.pcm = new Int16Array(a.payload.length);
    const n = decodeG711(this.media.codec, a.payload, this.pcm);
    this.sink(this.slot, at, this.pcm.slice(0, n));
  }

  /** Releases packets whose waiting time ran out. Call periodically. */
  poll(): void {
    for (const a of this.jitter.poll(performance.now())) this.play(a);
  }

  /** Hands over everything still held (before the recording stops). */
  drain(): void {
    for (const a of this.jitter.flush()) this.play(a);
  }

  get stats(): JitterStats & { ssrcChanges: number; ignored: number; malformed: number } {
    return { ...this.jitter.stats, ssrcChanges: this.timeline.ssrcChanges, ignored: this.ignoredPackets, malformed: this.endpoint.stats.malformed };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endpoint.close();
  }
}
