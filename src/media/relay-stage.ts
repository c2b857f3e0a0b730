import { transcodeG711, type G711Law } from './g711.js';
import type { NegotiatedMedia } from './negotiated-media.js';
import type { RtpPacket } from './rtp-packet.js';

export interface RelayStats {
  /** Packets sent on to the peer leg. */
  relayed: number;
  /** Of those, converted between μ-law and A-law. */
  transcoded: number;
  /** Packets not relayed: no peer, peer on hold or with no address yet. */
  dropped: number;
}

const receives = (m: NegotiatedMedia): boolean => m.remoteDirection === 'sendrecv' || m.remoteDirection === 'recvonly';

/**
 * The relay stage of a stream: sends a packet of the other party to this stream's far end. `codec` null = a
 * telephone-event. The datagram goes on as received (CSRCs, header extension, padding and all) when this side uses
 * the same payload type and codec — the usual case, no copy — else a copy with the payload type rewritten and the
 * payload converted in place (μ-law ↔ A-law is one byte per byte). Nothing goes to a party that said it will not
 * receive (a=inactive, sendonly, hold).
 */
export class RelayStage {
  readonly stats: RelayStats = { relayed: 0, transcoded: 0, dropped: 0 };

  constructor(private readonly send: (data: Uint8Array, address: string, port: number) => void) {}

  forward(p: RtpPacket, datagram: Buffer, codec: G711Law | null, m: NegotiatedMedia | null, to: { address: string; port: number } | null): void {
    if (!m || !to || m.remoteAddress === null || !receives(m)) {
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
    let out = datagram;
    if (transcode || payloadType !== p.payloadType) {
      out = Buffer.from(datagram);
      out[1] = (out[1] & 0x80) | payloadType;
      if (transcode) {
        out.set(transcodeG711(codec, m.codec, p.payload), p.payload.byteOffset - datagram.byteOffset);
        this.stats.transcoded++;
      }
    }
    this.send(out, to.address, to.port);
    this.stats.relayed++;
  }
}
