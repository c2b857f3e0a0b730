import { encodeG711, transcodeG711, type G711Law } from './g711.js';
import { heldByAddress, type NegotiatedMedia } from './negotiated-media.js';
import type { RtpPacket } from './rtp-packet.js';
import type { ToneInjector } from './tone-injector.js';

export interface RelayStats {
  /** Packets sent on to the peer leg. */
  relayed: number;
  /** Of those, converted between μ-law and A-law. */
  transcoded: number;
  /** Packets not relayed: no peer, peer on hold or with no address yet. */
  dropped: number;
  /** Relayed packets whose audio was the alert tone instead. */
  toned: number;
}

const receives = (m: NegotiatedMedia): boolean => m.remoteDirection === 'sendrecv' || m.remoteDirection === 'recvonly';

/**
 * The relay stage of a stream: sends a packet of the other party to this stream's far end. `codec` null = a
 * telephone-event. The datagram goes on as received (CSRCs, header extension, padding and all) when this side uses
 * the same payload type and codec — the usual case, no copy — else a copy with the payload type rewritten and the
 * payload converted in place (μ-law ↔ A-law is one byte per byte). Nothing goes to a party that said it will not
 * receive (a=inactive, sendonly, hold). While an alert tone plays for this party, the audio in the relayed packets is
 * the tone (the packets, their SSRC, sequence numbers and timestamps are the same: the stream stays continuous).
 * To a party on SRTP the result is encrypted under our key for it (`protect`).
 */
export class RelayStage {
  readonly stats: RelayStats = { relayed: 0, transcoded: 0, dropped: 0, toned: 0 };
  /** The alert tone this party hears, or null. */
  tone: ToneInjector | null = null;

  /** Encrypts what goes to this party (SRTP: its context for what we send), or null: plain RTP. */
  protect: ((rtp: Uint8Array) => Uint8Array) | null = null;

  constructor(private readonly send: (data: Uint8Array, address: string, port: number) => void) {}

  forward(p: RtpPacket, datagram: Buffer, codec: G711Law | null, m: NegotiatedMedia | null, to: { address: string; port: number } | null): void {
    if (!m || !to || heldByAddress(m) || !receives(m)) {
      this.stats.dropped++;
      return;
    }
    let payloadType = m.payloadType;
    if (codec === null) {
      if (m.telephoneEventPt === null) {
        this.stats.dropped++;
        return;
      }
      payloadType = m.telephoneEventPt;
    }
    const transcode = codec !== null && codec !== m.codec;
    const tone = codec !== null && this.tone ? this.tone.next(p.payload.length, performance.now()) : null;
    let out = datagram;
    if (transcode || tone || payloadType !== p.payloadType) {
      // a copy: the received payload is still to be recorded
      out = Buffer.from(datagram);
      out[1] = (out[1] & 0x80) | payloadType;
      const at = p.payload.byteOffset - datagram.byteOffset;
      if (tone) {
        encodeG711(m.codec, tone, out.subarray(at, at + tone.length));
        this.stats.toned++;
      } else if (transcode) {
        out.set(transcodeG711(codec, m.codec, p.payload), at);
        this.stats.transcoded++;
      }
    }
    this.send(this.protect ? this.protect(out) : out, to.address, to.port);
    this.stats.relayed++;
  }
}
