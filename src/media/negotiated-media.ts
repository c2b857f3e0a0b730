import type { G711Law } from './g711.js';

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
  /** Where the remote side wants RTP; null when it gave 0.0.0.0 or port 0 (hold). */
  remoteAddress: string | null;
  remotePort: number;
  /** The remote side's direction attribute. */
  remoteDirection: Direction;
  /** Our direction in the answer. */
  localDirection: Direction;
  ptime: number;
  /** `a=label` if present (SIPREC-style forks). */
  label: string | null;
}
