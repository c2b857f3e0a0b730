/**
 * The fixed RTP header (RFC 3550 §5.1), parsed by hand: ~0.1 µs per packet against ~7 µs for a general
 * parser (shared/reference/perf-notes.md §3). The tests check it against werift's parser.
 */
export interface RtpPacket {
  payloadType: number;
  marker: boolean;
  sequence: number;
  timestamp: number;
  ssrc: number;
  /** A view into the datagram; copy it if it must outlive the receive callback. */
  payload: Uint8Array;
}

/** Returns the parsed packet, or a string saying why the datagram is not RTP. */
export function parseRtp(buf: Uint8Array): RtpPacket | string {
  const p: RtpPacket = { payloadType: 0, marker: false, sequence: 0, timestamp: 0, ssrc: 0, payload: buf };
  return parseRtpInto(buf, p) ?? p;
}

/**
 * Parses into `p` (reused from packet to packet: a receive loop allocates only the payload view). Returns null, or a
 * string saying why the datagram is not RTP (`p` is then unchanged).
 */
export function parseRtpInto(buf: Uint8Array, p: RtpPacket): string | null {
  if (buf.length < 12) return 'shorter than an RTP header';
  const b0 = buf[0];
  if (b0 >> 6 !== 2) return 'RTP version is not 2';
  const b1 = buf[1];
  const payloadType = b1 & 0x7f;
  if (payloadType >= 72 && payloadType <= 76) return 'RTCP packet on the RTP port';
  const offset = rtpHeaderLength(buf);
  if (offset < 0) return 'truncated header extension';
  let end = buf.length;
  if ((b0 & 0x20) !== 0) {
    const pad = buf[buf.length - 1];
    if (pad === 0 || pad > end - offset) return 'bad padding length';
    end -= pad;
  }
  if (offset > end) return 'header longer than the datagram';
  p.payloadType = payloadType;
  p.marker = (b1 & 0x80) !== 0;
  p.sequence = (buf[2] << 8) | buf[3];
  p.timestamp = ((buf[4] << 24) | (buf[5] << 16) | (buf[6] << 8) | buf[7]) >>> 0;
  p.ssrc = ((buf[8] << 24) | (buf[9] << 16) | (buf[10] << 8) | buf[11]) >>> 0;
  p.payload = buf.subarray(offset, end);
  return null;
}

/**
 * Where the payload of an RTP datagram of at least 12 bytes starts: after the fixed header, the CSRCs and the header
 * extension. -1 when the extension's own header is cut off; it may exceed the datagram's length (the caller checks).
 */
export function rtpHeaderLength(buf: Uint8Array): number {
  let offset = 12 + (buf[0] & 0x0f) * 4;
  if ((buf[0] & 0x10) !== 0) {
    if (buf.length < offset + 4) return -1;
    offset += 4 + ((buf[offset + 2] << 8) | buf[offset + 3]) * 4;
  }
  return offset;
}

/** Builds an RTP packet (no CSRC, no extension). Used by the test equipment and the benchmark (the relay forwards datagrams). */
export function buildRtp(p: Omit<RtpPacket, 'payload'> & { payload: Uint8Array }): Buffer {
  const out = Buffer.allocUnsafe(12 + p.payload.length);
  out[0] = 0x80;
  out[1] = (p.marker ? 0x80 : 0) | (p.payloadType & 0x7f);
  out.writeUInt16BE(p.sequence & 0xffff, 2);
  out.writeUInt32BE(p.timestamp >>> 0, 4);
  out.writeUInt32BE(p.ssrc >>> 0, 8);
  out.set(p.payload, 12);
  return out;
}
