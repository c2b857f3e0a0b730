import { CaptureStage, type AudioSink } from './capture-stage.js';
import type { JitterStats } from './jitter-buffer.js';
import { heldByAddress, type Direction, type NegotiatedMedia } from './negotiated-media.js';
import { transcodeTable, type G711Law } from './g711.js';
import { RelayStage, type RelayStats } from './relay-stage.js';
import { RELAY_DONE, RELAY_JS, RELAY_TRANSCODED, type RelayOutcome, type RtpEndpoint } from './rtp-endpoint.js';
import { parseRtpInto, type RtpPacket } from './rtp-packet.js';
import { SrtpContext } from './srtp-context.js';
import type { ToneInjector } from './tone-injector.js';

export interface StreamOptions {
  jitterMs: number;
  maxSkewMs: number;
  /** Called once when the stream closes, with its final counts (metrics). */
  onClose?: (s: MediaStream) => void;
}

const sends = (d: Direction): boolean => d === 'sendrecv' || d === 'sendonly';
const receives = (d: Direction): boolean => d === 'sendrecv' || d === 'recvonly';

/**
 * One negotiated audio m-line of a leg: what arrives on its endpoint goes through two stages, in this order —
 * - the relay stage (`relay-stage.ts`) of the peer stream (the other party's leg in 3PCC), at once, sent from the
 *   peer's socket to wherever the peer's packets come from (symmetric RTP); on the native engine's endpoints the
 *   engine's thread has relayed it already, by the route this stream keeps set (`syncRoute`), unless an alert tone
 *   plays to the peer: that is mixed in here;
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
  /** SRTP packets that failed authentication (forged, corrupted, another key): dropped, neither relayed nor recorded. */
  srtpRejected = 0;
  /** SRTP: what the far end sends (decrypt) and what we send it (encrypt); null on plain RTP. */
  private srtpIn: SrtpContext | null = null;
  private srtpOut: SrtpContext | null = null;
  /** The decrypted packet (reused). */
  private readonly plain: RtpPacket = { payloadType: 0, marker: false, sequence: 0, timestamp: 0, ssrc: 0, payload: new Uint8Array(0) };
  private peerStream: MediaStream | null = null;
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
    endpoint.onPacket = (p, arrivalMs, from, datagram, relayed) => this.receive(p, arrivalMs, from, datagram, relayed);
  }

  /** The other party's stream, to relay to. */
  get peer(): MediaStream | null {
    return this.peerStream;
  }

  set peer(s: MediaStream | null) {
    this.peerStream = s;
    this.syncRoute();
  }

  /**
   * Tells the native engine how to relay this stream's packets to the peer (what `receive` and the peer's relay
   * stage would do): the audio and telephone-event payload types mapped to the peer's, through a μ-law/A-law table
   * when the codecs differ, and nothing while this party does not send or the peer does not receive. An alert tone
   * playing to the peer is mixed in by this thread: the engine wakes it for each packet instead.
   */
  private syncRoute(): void {
    if (!this.endpoint.routes || this.closed) return;
    const m = this.media;
    const peer = this.peerStream;
    const pm = peer?.media ?? null;
    const none = { peer: null, native: true, wake: false, inAudio: -1, inEvent: -1, outAudio: -1, outEvent: -1, table: null };
    if (!m || !peer || !pm) return this.endpoint.route(none);
    // an alert tone to the peer, or SRTP on either side (decrypted and encrypted here): this thread relays
    if (peer.tone || m.srtp || pm.srtp) return this.endpoint.route({ ...none, native: false, wake: true });
    if (!sends(m.remoteDirection) || heldByAddress(pm) || !receives(pm.remoteDirection)) return this.endpoint.route(none);
    this.endpoint.route({
      peer: peer.endpoint,
      native: true,
      wake: false,
      inAudio: m.payloadType,
      inEvent: m.telephoneEventPt ?? -1,
      outAudio: pm.payloadType,
      outEvent: pm.telephoneEventPt ?? -1,
      table: m.codec === pm.codec ? null : transcodeTable(m.codec, pm.codec),
    });
  }

  get relay(): RelayStats {
    return this.relayStage.stats;
  }

  /** The alert tone this stream's party hears in what is relayed to it (null: none). */
  set tone(t: ToneInjector | null) {
    this.relayStage.tone = t;
    // what the other party sends to this one is relayed by this thread while the tone plays
    this.peerStream?.syncRoute();
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
    // a new key in a re-INVITE (either side's) takes effect with it
    const k = media.srtp;
    if (!k) this.srtpIn = this.srtpOut = null;
    else {
      if (this.srtpIn?.masterKey !== k.remoteKey || this.srtpIn.suite !== k.suite) this.srtpIn = new SrtpContext(k.suite, k.remoteKey);
      if (this.srtpOut?.masterKey !== k.localKey || this.srtpOut.suite !== k.suite) this.srtpOut = new SrtpContext(k.suite, k.localKey);
    }
    const out = this.srtpOut;
    this.relayStage.protect = out ? (rtp) => out.protect(rtp) : null;
    if (moved) {
      this.remote = media.remoteAddress ? { address: media.remoteAddress, port: media.remotePort } : null;
      this.endpoint.setRemote(media.remoteAddress, media.remotePort);
    }
    this.syncRoute();
    this.peerStream?.syncRoute();
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

  private receive(p: RtpPacket, arrivalMs: number, from: { address: string; port: number }, datagram: Buffer, relayed: RelayOutcome): void {
    const m = this.media;
    if (this.closed || !m) return;
    if (this.srtpIn) {
      // only what authenticates counts: a forged packet neither moves the far end nor reaches the recording
      const plain = this.srtpIn.unprotect(datagram);
      if (!plain || parseRtpInto(plain, this.plain) !== null) {
        this.srtpRejected++;
        return;
      }
      datagram = plain;
      p = this.plain;
    }
    this.lastPacketAt = arrivalMs;
    const isAudio = p.payloadType === m.payloadType;
    if (!isAudio && p.payloadType !== m.telephoneEventPt) {
      this.ignoredPackets++;
      return;
    }
    const r = this.remote;
    if (!r || r.port !== from.port || r.address !== from.address) this.remote = { address: from.address, port: from.port };
    // a party that said it will not send (a=inactive, recvonly) is not relayed either
    const to = this.peerStream && sends(m.remoteDirection) ? this.peerStream : null;
    if (relayed !== RELAY_JS) {
      // the engine's thread did it (or, by this stream's route, did not)
      const st = (to ?? this).relayStage.stats;
      if (relayed === RELAY_DONE || relayed === RELAY_TRANSCODED) st.relayed++;
      else st.dropped++;
      if (relayed === RELAY_TRANSCODED) st.transcoded++;
    } else if (to) to.forward(p, datagram, isAudio ? m.codec : null);
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

  get stats(): JitterStats & { ssrcChanges: number; reanchors: number; latePlaced: number; ignored: number; held: number; malformed: number; srtpRejected: number } {
    return { ...this.capture.stats, ignored: this.ignoredPackets, held: this.heldPackets, malformed: this.endpoint.stats.malformed, srtpRejected: this.srtpRejected };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.peerStream = null;
    this.endpoint.close();
    this.opts.onClose?.(this);
  }
}
