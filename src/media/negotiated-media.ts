import type { G711Law } from './g711.js';
import type { SrtpSuite } from './srtp-context.js';

/** An SDP direction attribute. */
export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/**
 * What was agreed for one audio m-line, from the remote side's point of view: what `sip/sdp-answer.ts` negotiates
 * and a media stream is driven by.
 */
export interface NegotiatedMedia {
  /** Index of the m-line in the SDP (0-based, counting every m-line). */
  mline: number;
  payloadType: number;
  codec: G711Law;
  /** RFC 4733 payload type if both sides do telephone-event, else null. */
  telephoneEventPt: number | null;
  /** Where the remote side wants RTP; null when it gave 0.0.0.0 or port 0 (hold), or no address at all (`learnAddress`). */
  remoteAddress: string | null;
  /**
   * The SDP named no address for this m-line (no c= line at media or session level: RFC 4566 requires one, but some
   * SRCs omit it). Not a hold: the stream is recorded, and its address is learnt from where its packets come from
   * (symmetric RTP).
   */
  learnAddress?: boolean;
  remotePort: number;
  /** The remote side's direction attribute. */
  remoteDirection: Direction;
  /** Our direction in the answer. */
  localDirection: Direction;
  ptime: number;
  /** `a=label` if present (SIPREC-style forks). */
  label: string | null;
  /**
   * SRTP (RTP/SAVP with SDES, RFC 4568): the crypto line taken (its tag and suite), the far end's master key and salt
   * (what it sends is under it) and ours (what we send it, in our answer), base64. Absent: plain RTP.
   */
  srtp?: { tag: number; suite: SrtpSuite; remoteKey: string; localKey: string };
}

/** Whether the remote side put this m-line on hold by its address: c=0.0.0.0 or port 0 (not: no address given). */
export function heldByAddress(m: NegotiatedMedia): boolean {
  return m.remoteAddress === null && m.learnAddress !== true;
}
