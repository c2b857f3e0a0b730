import { CaptureStage, type AudioSink } from './capture-stage.js';
import type { JitterStats } from './jitter-buffer.js';
import { heldByAddress, type Direction, type NegotiatedMedia } from './negotiated-media.js';
import type { G711Law } from './g711.js';
import { RelayStage, type RelayStats } from './relay-stage.js';
import type { RtpEndpoint } from './rtp-endpoint.js';
import type { RtpPacket } from './rtp-packet.js';
import type { ToneInjector } from './tone-injector.js';

export interface StreamOptions {
  jitterMs: number;
  maxSkewMs: number;
  /** Called once when the stream closes, with its final counts (metrics). */
  onClose?: (s: MediaStream) => void;
}

const sends = (d: Direction): boolean => d === 'sendrecv' || d === 'sendonly';

/**
 * One negotiated audio m-line of a leg: what arrives on its endpoint goes through two stages, in this order —
 * - the relay stage (`relay-stage.ts`) of the peer stream (the other party's leg in 3PCC), at once, sent from the
 *   peer's socket to wherever the peer's packets come from (symmetric RTP);
 * - its own recording-input stage (`capture-stage.ts`): reordered, placed on the clock, decoded into its slot.
 * While the leg is on hold its audio is not recorded (the recording has silence there, by clock). Packets of other
 * payload types (comfort noise, an unnegotiated codec) are counted and neither relayed nor recorded; telephone-events
 * are relayed when the peer negotiated them.
 */
export class MediaStream {
  readonly capture: CaptureStage;
  private readonly relayStage: RelayStage;
  ignoredPackets = 0;
  /** Packets that arrived while the leg was on hold (not recorded). */
  heldPackets = 0;
  /** The other party's stream, to relay to. */
  peer: MediaStream | null = null;
  /** The far end learnt from where its packets come from (symmetric RTP); SDP address until then. */
  remote: { address: string; port: number } | null = null;
  /** The remote direction of the first negotiation: sendonly from the start is a recording fork, not a hold. */
  private firstDirection: Direction | null = null;
  private closed = false;
  /** What the last offer/answer negotiated for this m-line; null until it is known (3PCC: the answer in the ACK). */
  media: NegotiatedMedia | null = null;
  /** performance.now() of the last packet, or of the stream's creation. */
  lastPacketAt = performance.now();

  constructor(
    readonly endpoint: RtpEndpoint,
    media: NegotiatedMedia | null,
    readonly slot: number,
    sink: AudioSink,
    private readonly opts: StreamOptions,
  ) {
    this.capture = new CaptureStage(opts.jitterMs, opts.maxSkewMs, slot, sink);
    this.relayStage = new RelayStage((data, address, port) => endpoint.send(data, address, port));
    if (media) this.update(media);
    endpoint.onPacket = (p, arrivalMs, from, datagram) => this.receive(p, arrivalMs, from, datagram);
  }

  get relay(): RelayStats {
    return this.relayStage.stats;
  }

  /** The alert tone this stream's party hears in what is relayed to it (null: none). */
  set tone(t: ToneInjector | null) {
    this.relayStage.tone = t;
  }

  get tone(): ToneInjector | null {
    return this.relayStage.tone;
  }

  /** Applies a new negotiation (re-INVITE, transfer, 3PCC answer in the ACK). The recording slot stays. */
  update(media: NegotiatedMedia): void {
    const moved = !this.media || this.media.remoteAddress !== media.remoteAddress || this.media.remotePort !== media.remotePort;
    const wasHeld = this.media !== null && this.held;
    this.media = media;
    this.firstDirection ??= media.remoteDirection;
    if (moved) this.remote = media.remoteAddress ? { address: media.remoteAddress, port: media.remotePort } : null;
    // back from hold: a sender may resume with timestamps that did not advance while it was silent
    if (wasHeld && !this.held) this.capture.resync();
  }

  /**
   * On hold: the far end said it will not send (inactive, recvonly, c=0.0.0.0), or went from sendrecv to sendonly
   * (a hold with music). Its audio is silence in the recording until it is taken off hold.
   */
  get held(): boolean {
    const m = this.media;
    if (!m) return false;
    if (heldByAddress(m) || !sends(m.remoteDirection)) return true;
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
    else this.relayStage.stats.dropped++;
    if (!isAudio) {
      this.ignoredPackets++;
      return;
    }
    if (this.held) {
      this.heldPackets++;
      return;
    }
    this.capture.accept(p, m.codec, arrivalMs);
  }

  /** Relays a packet of the other party to this stream's far end (see RelayStage). */
  forward(p: RtpPacket, datagram: Buffer, codec: G711Law | null): void {
    if (this.closed) {
      this.relayStage.stats.dropped++;
      return;
    }
    this.relayStage.forward(p, datagram, codec, this.media, this.remote);
  }

  /** Releases packets whose waiting time ran out (`giveUpGaps` false: only those in order). Call periodically. */
  poll(giveUpGaps = true): void {
    this.capture.poll(performance.now(), giveUpGaps);
  }

  /** Hands over everything still held (before the recording stops). */
  drain(): void {
    this.capture.drain();
  }

  get stats(): JitterStats & { ssrcChanges: number; reanchors: number; latePlaced: number; ignored: number; held: number; malformed: number } {
    return { ...this.capture.stats, ignored: this.ignoredPackets, held: this.heldPackets, malformed: this.endpoint.stats.malformed };
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
