import type { Direction, NegotiatedMedia } from './negotiated-media.js';
import { decodeG711, transcodeG711, type G711Law } from './g711.js';
import { JitterBuffer, type JitterStats } from './jitter-buffer.js';
import { LegTimeline } from './leg-timeline.js';
import type { RtpEndpoint } from './rtp-endpoint.js';
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

export interface StreamOptions {
  jitterMs: number;
  maxSkewMs: number;
  /** Called once when the stream closes, with its final counts (metrics). */
  onClose?: (s: MediaStream) => void;
}

export interface RelayStats {
  /** Packets sent on to the peer leg. */
  relayed: number;
  /** Of those, converted between μ-law and A-law. */
  transcoded: number;
  /** Packets not relayed: no peer, peer on hold or with no address yet. */
  dropped: number;
}

const sends = (d: Direction): boolean => d === 'sendrecv' || d === 'sendonly';
const receives = (d: Direction): boolean => d === 'sendrecv' || d === 'recvonly';

/**
 * One negotiated audio m-line of a leg. Receives RTP on its endpoint and
 * - relays it at once to the peer stream (the other party's leg in 3PCC), converting μ-law/A-law when the legs
 *   differ, sent from the peer's socket to wherever the peer's packets come from (symmetric RTP);
 * - reorders it, places it on the clock by RTP timestamp and decodes it into its recording slot.
 * While the leg is on hold its audio is not recorded (the recording has silence there, by clock). Packets of other
 * payload types (comfort noise, an unnegotiated codec) are counted and neither relayed nor recorded; telephone-events
 * are relayed when the peer negotiated them.
 */
export class MediaStream {
  readonly jitter: JitterBuffer<Arrived>;
  readonly timeline: LegTimeline;
  readonly relay: RelayStats = { relayed: 0, transcoded: 0, dropped: 0 };
  ignoredPackets = 0;
  /** Packets that arrived while the leg was on hold (not recorded). */
  heldPackets = 0;
  /** The other party's stream, to relay to. */
  peer: MediaStream | null = null;
  /** The far end learnt from where its packets come from (symmetric RTP); SDP address until then. */
  remote: { address: string; port: number } | null;
  /** The remote direction of the first negotiation: sendonly from the start is a recording fork, not a hold. */
  private firstDirection: Direction | null = null;
  private ssrc: number | null = null;
  private pcm = new Int16Array(1024);
  /** The decoded samples of the packet being played (a view kept while packets keep their size). */
  private pcmView = this.pcm.subarray(0, 0);
  /** Arrived objects not in the jitter buffer, for reuse: the capture path allocates nothing per packet. */
  private readonly free: Arrived[] = [];
  private closed = false;
  /** What the last offer/answer negotiated for this m-line; null until it is known (3PCC: the answer in the ACK). */
  media: NegotiatedMedia | null = null;
  /** performance.now() of the last packet, or of the stream's creation. */
  lastPacketAt = performance.now();

  constructor(
    readonly endpoint: RtpEndpoint,
    media: NegotiatedMedia | null,
    readonly slot: number,
    private readonly sink: AudioSink,
    private readonly opts: StreamOptions,
  ) {
    this.jitter = new JitterBuffer(opts.jitterMs);
    this.timeline = new LegTimeline((opts.maxSkewMs * SAMPLE_RATE) / 1000);
    this.remote = null;
    if (media) this.update(media);
    endpoint.onPacket = (p, arrivalMs, from, datagram) => this.receive(p, arrivalMs, from, datagram);
  }

  /** Applies a new negotiation (re-INVITE, transfer, 3PCC answer in the ACK). The recording slot stays. */
  update(media: NegotiatedMedia): void {
    const moved = !this.media || this.media.remoteAddress !== media.remoteAddress || this.media.remotePort !== media.remotePort;
    this.media = media;
    this.firstDirection ??= media.remoteDirection;
    if (moved) this.remote = media.remoteAddress ? { address: media.remoteAddress, port: media.remotePort } : null;
  }

  /**
   * On hold: the far end said it will not send (inactive, recvonly, c=0.0.0.0), or went from sendrecv to sendonly
   * (a hold with music). Its audio is silence in the recording until it is taken off hold.
   */
  get held(): boolean {
    const m = this.media;
    if (!m) return false;
    if (m.remoteAddress === null || !sends(m.remoteDirection)) return true;
    return m.remoteDirection === 'sendonly' && this.firstDirection === 'sendrecv';
  }

  private receive(p: RtpPacket, arrivalMs: number, from: { address: string; port: number }, datagram: Buffer): void {
    const m = this.media;
    if (this.closed || !m) return;
    this.lastPacketAt = arrivalMs;
    const isAudio = p.payloadType === m.payloadType;
    if (!isAudio && p.payloadType !== m.telephoneEventPt) {
      this.ignoredPackets++;
      return;
    }
    const r = this.remote;
    if (!r || r.port !== from.port || r.address !== from.address) this.remote = { address: from.address, port: from.port };
    // a party that said it will not send (a=inactive, recvonly) is not relayed either
    if (this.peer && sends(m.remoteDirection)) this.peer.forward(p, datagram, isAudio ? m.codec : null);
    else this.relay.dropped++;
    if (!isAudio) {
      this.ignoredPackets++;
      return;
    }
    if (this.held) {
      this.heldPackets++;
      return;
    }
    if (p.ssrc !== this.ssrc) {
      // a new sender (transfer, restart): its sequence numbers start afresh
      if (this.ssrc !== null) for (const a of this.jitter.restart()) this.play(a);
      this.ssrc = p.ssrc;
    }
    const item = this.free.pop() ?? { sequence: 0, ssrc: 0, timestamp: 0, codec: m.codec, payload: new Uint8Array(160), length: 0, arrival: 0 };
    if (item.payload.length < p.payload.length) item.payload = new Uint8Array(p.payload.length);
    item.payload.set(p.payload);
    item.length = p.payload.length;
    item.sequence = p.sequence;
    item.ssrc = p.ssrc;
    item.timestamp = p.timestamp;
    item.codec = m.codec;
    item.arrival = (arrivalMs * SAMPLE_RATE) / 1000;
    for (const a of this.jitter.push(item, arrivalMs)) this.play(a);
    // refused (a duplicate or a late packet): back to the pool; a played one went back in play()
    if (!this.jitter.accepted) this.free.push(item);
  }

  /**
   * Sends a packet of the other party to this stream's far end. `codec` null = a telephone-event. The datagram goes
   * on as received (CSRCs, header extension, padding and all) when this side uses the same payload type and codec —
   * the usual case, no copy — else a copy with the payload type rewritten and the payload converted in place
   * (μ-law ↔ A-law is one byte per byte).
   */
  forward(p: RtpPacket, datagram: Buffer, codec: G711Law | null): void {
    const m = this.media;
    const to = this.remote;
    if (this.closed || !m || !to || m.remoteAddress === null || !receives(m.remoteDirection)) {
      this.relay.dropped++;
      return;
    }
    let payloadType = m.payloadType;
    if (codec === null) {
      if (m.telephoneEventPt === null) {
        this.relay.dropped++;
        return;
      }
      payloadType = m.telephoneEventPt;
    }
    const transcode = codec !== null && codec !== m.codec;
    let out = datagram;
    if (transcode || payloadType !== p.payloadType) {
      out = Buffer.from(datagram);
      out[1] = (out[1] & 0x80) | payloadType;
      if (transcode) {
        out.set(transcodeG711(codec, m.codec, p.payload), p.payload.byteOffset - datagram.byteOffset);
        this.relay.transcoded++;
      }
    }
    this.endpoint.send(out, to.address, to.port);
    this.relay.relayed++;
  }

  private play(a: Arrived): void {
    const at = this.timeline.place(a.ssrc, a.timestamp, a.arrival);
    if (this.pcm.length < a.length) {
      this.pcm = new Int16Array(a.length);
      this.pcmView = this.pcm.subarray(0, 0);
    }
    const n = decodeG711(a.codec, a.payload, this.pcm, a.length);
    if (this.pcmView.length !== n) this.pcmView = this.pcm.subarray(0, n);
    this.free.push(a);
    this.sink(this.slot, at, this.pcmView);
  }

  /** Releases packets whose waiting time ran out. Call periodically. */
  poll(): void {
    for (const a of this.jitter.poll(performance.now())) this.play(a);
  }

  /** Hands over everything still held (before the recording stops). */
  drain(): void {
    for (const a of this.jitter.flush()) this.play(a);
  }

  get stats(): JitterStats & { ssrcChanges: number; reanchors: number; ignored: number; held: number; malformed: number } {
    return {
      ...this.jitter.stats,
      ssrcChanges: this.timeline.ssrcChanges,
      reanchors: this.timeline.reanchors,
      ignored: this.ignoredPackets,
      held: this.heldPackets,
      malformed: this.endpoint.stats.malformed,
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.peer = null;
    this.endpoint.close();
    this.opts.onClose?.(this);
  }
}
