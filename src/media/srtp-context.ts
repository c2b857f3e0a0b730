import { createCipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { rtpHeaderLength } from './rtp-packet.js';

/** The SDES (RFC 4568) crypto suites we take: AES counter mode with a 128-bit key, HMAC-SHA1 tags of 80 or 32 bits. */
export type SrtpSuite = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32';
export const SRTP_SUITES: readonly SrtpSuite[] = ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];

const KEY_BYTES = 16;
const SALT_BYTES = 14;
/** Bytes of the master key and salt as `inline:` carries them (base64). */
export const MASTER_BYTES = KEY_BYTES + SALT_BYTES;
const tagBytes = (suite: SrtpSuite): number => (suite === 'AES_CM_128_HMAC_SHA1_80' ? 10 : 4);

/** A fresh master key and salt, base64 (what our `a=crypto` line carries). */
export const newMasterKey = (): string => randomBytes(MASTER_BYTES).toString('base64');

/** The AES-CM key derivation (RFC 3711 §4.3.1, key derivation rate 0): `len` bytes for `label`. */
function derive(masterKey: Buffer, masterSalt: Buffer, label: number, len: number): Buffer {
  const iv = Buffer.alloc(16);
  masterSalt.copy(iv, 0);
  iv[7] ^= label; // key_id = label || r (r = 0), right-aligned in the 112-bit salt
  return createCipheriv('aes-128-ctr', masterKey, iv).update(Buffer.alloc(len));
}

/** What RFC 3711 derives from a master key and salt for SRTP (labels 0, 1, 2). */
export function sessionKeys(masterKey: Buffer, masterSalt: Buffer): { key: Buffer; auth: Buffer; salt: Buffer } {
  return { key: derive(masterKey, masterSalt, 0, KEY_BYTES), auth: derive(masterKey, masterSalt, 1, 20), salt: derive(masterKey, masterSalt, 2, SALT_BYTES) };
}

/** Header length of an RTP datagram (fixed part, CSRCs, extension), or -1 if it is not RTP. */
function headerLength(d: Uint8Array): number {
  if (d.length < 12 || d[0] >> 6 !== 2) return -1;
  const n = rtpHeaderLength(d);
  return n <= d.length ? n : -1;
}

/** Per-SSRC rollover state (RFC 3711 §3.3.1). */
interface SsrcState {
  roc: number;
  /** Highest sequence number seen (receiving: authenticated) . */
  seq: number;
}

/**
 * One direction of an SRTP session (RFC 3711): what a far end sends us (`unprotect`) or what we send it (`protect`),
 * under one master key. Keeps each SSRC's rollover counter: a sender's advances when its sequence number wraps; a
 * receiver's is estimated for every packet (RFC 3711 Appendix A, so a reordered packet from before a wrap still
 * authenticates) and moves only once a packet authenticated. No MKI, key derivation rate 0 (what SDES offers
 * without parameters).
 */
export class SrtpContext {
  private readonly key: Buffer;
  private readonly auth: Buffer;
  private readonly salt: Buffer;
  private readonly tag: number;
  private readonly ssrcs = new Map<number, SsrcState>();
  private readonly iv = Buffer.alloc(16);
  private readonly roc = Buffer.alloc(4);

  constructor(
    readonly suite: SrtpSuite,
    /** base64 of the master key and salt (30 bytes). */
    readonly masterKey: string,
  ) {
    const m = Buffer.from(masterKey, 'base64');
    if (m.length !== MASTER_BYTES) throw new Error(`SRTP master key and salt must be ${MASTER_BYTES} bytes, not ${m.length}`);
    ({ key: this.key, auth: this.auth, salt: this.salt } = sessionKeys(m.subarray(0, KEY_BYTES), m.subarray(KEY_BYTES)));
    this.tag = tagBytes(suite);
  }

  /** The counter block of packet index `index` of `ssrc` (RFC 3711 §4.1.1). */
  private counter(ssrc: number, index: number): Buffer {
    const iv = this.iv;
    this.salt.copy(iv, 0);
    iv[14] = 0;
    iv[15] = 0;
    iv[4] ^= ssrc >>> 24;
    iv[5] ^= (ssrc >>> 16) & 0xff;
    iv[6] ^= (ssrc >>> 8) & 0xff;
    iv[7] ^= ssrc & 0xff;
    const hi = Math.floor(index / 2 ** 32);
    iv[8] ^= (hi >>> 8) & 0xff;
    iv[9] ^= hi & 0xff;
    iv[10] ^= (index >>> 24) & 0xff;
    iv[11] ^= (index >>> 16) & 0xff;
    iv[12] ^= (index >>> 8) & 0xff;
    iv[13] ^= index & 0xff;
    return iv;
  }

  private mac(data: Uint8Array, roc: number): Buffer {
    this.roc.writeUInt32BE(roc >>> 0, 0);
    return createHmac('sha1', this.auth).update(data).update(this.roc).digest().subarray(0, this.tag);
  }

  /** Encrypts and authenticates an RTP datagram for the far end: a new buffer. Throws on a datagram that is not RTP. */
  protect(rtp: Uint8Array): Buffer {
    const h = headerLength(rtp);
    if (h < 0) throw new Error('not an RTP packet');
    const ssrc = ((rtp[8] << 24) | (rtp[9] << 16) | (rtp[10] << 8) | rtp[11]) >>> 0;
    const seq = (rtp[2] << 8) | rtp[3];
    let st = this.ssrcs.get(ssrc);
    if (!st) this.ssrcs.set(ssrc, (st = { roc: 0, seq }));
    // the sender's own count: it advances when the sequence number wraps; a packet relayed out of order keeps the
    // count it was sent under
    let roc = st.roc;
    if (seq < st.seq && st.seq - seq > 0x8000) {
      st.roc = (st.roc + 1) >>> 0;
      st.seq = seq;
      roc = st.roc;
    } else if (seq > st.seq && seq - st.seq > 0x8000) roc = Math.max(0, st.roc - 1);
    else if (seq > st.seq) st.seq = seq;
    const out = Buffer.allocUnsafe(rtp.length + this.tag);
    out.set(rtp.subarray(0, h), 0);
    const enc = createCipheriv('aes-128-ctr', this.key, this.counter(ssrc, roc * 0x10000 + seq)).update(rtp.subarray(h));
    enc.copy(out, h);
    this.mac(out.subarray(0, rtp.length), roc).copy(out, rtp.length);
    return out;
  }

  /**
   * Authenticates and decrypts an SRTP datagram from the far end: the RTP datagram, or null if it is not SRTP of this
   * session (too short, not RTP, a tag that does not match: forged, corrupted or under another key).
   */
  unprotect(srtp: Uint8Array): Buffer | null {
    const h = headerLength(srtp);
    const end = srtp.length - this.tag;
    if (h < 0 || end < h) return null;
    const ssrc = ((srtp[8] << 24) | (srtp[9] << 16) | (srtp[10] << 8) | srtp[11]) >>> 0;
    const seq = (srtp[2] << 8) | srtp[3];
    const st = this.ssrcs.get(ssrc);
    // the rollover count this packet was sent under (RFC 3711 Appendix A)
    let roc = 0;
    if (st) {
      roc = st.roc;
      if (st.seq < 0x8000) {
        if (seq - st.seq > 0x8000 && roc > 0) roc = st.roc - 1;
      } else if (st.seq - 0x8000 > seq) roc = st.roc + 1;
    }
    const want = this.mac(srtp.subarray(0, end), roc);
    const got = srtp.subarray(end);
    if (!timingSafeEqual(want, got)) return null;
    if (!st) this.ssrcs.set(ssrc, { roc, seq });
    else if (roc > st.roc) {
      st.roc = roc;
      st.seq = seq;
    } else if (roc === st.roc && seq > st.seq) st.seq = seq;
    const out = Buffer.allocUnsafe(end);
    out.set(srtp.subarray(0, h), 0);
    createCipheriv('aes-128-ctr', this.key, this.counter(ssrc, roc * 0x10000 + seq))
      .update(srtp.subarray(h, end))
      .copy(out, h);
    return out;
  }
}
