import * as sdpTransform from 'sdp-transform';
import type { MediaDescription, SessionDescription } from 'sdp-transform';
import { SdpError } from '../errors.js';
import type { G711Law } from '../media/g711.js';
import type { Direction, NegotiatedMedia } from '../media/negotiated-media.js';
import { MASTER_BYTES, newMasterKey, SRTP_SUITES, type SrtpSuite } from '../media/srtp-context.js';

export type { Direction, NegotiatedMedia };

/** Static payload types of G.711 (RFC 3551). */
export const G711_STATIC_PT: Record<G711Law, number> = { PCMU: 0, PCMA: 8 };

export interface SdpLocal {
  /** Address we advertise in c=/o=. */
  address: string;
  /** One RTP port per usable audio m-line, in m-line order. */
  ports: number[];
  sessionId: number;
  sessionVersion: number;
}

const REVERSE: Record<Direction, Direction> = { sendrecv: 'sendrecv', sendonly: 'recvonly', recvonly: 'sendonly', inactive: 'inactive' };

function parse(sdp: string): SessionDescription {
  if (typeof sdp !== 'string' || !/^v=0\s*$/m.test(sdp) || !/^m=/m.test(sdp)) {
    throw new SdpError('SDP is malformed: missing v=0 or m= line', { sipStatus: 400 });
  }
  let s: SessionDescription;
  try {
    s = sdpTransform.parse(sdp);
  } catch (err) {
    throw new SdpError(`SDP is malformed: ${(err as Error).message}`, { sipStatus: 400, cause: err });
  }
  if (!Array.isArray(s.media) || s.media.length === 0) throw new SdpError('SDP has no media', { sipStatus: 400 });
  for (const m of s.media) {
    if (!Number.isInteger(m.port) || m.port < 0 || m.port > 65535) throw new SdpError(`SDP m=${m.type} has a bad port`, { sipStatus: 400 });
  }
  return s;
}

function isUsableAudio(m: MediaDescription): boolean {
  return m.type === 'audio' && /^RTP\/S?AVP$/i.test(m.protocol);
}

/**
 * The first `a=crypto` of an RTP/SAVP m-line we can serve (RFC 4568: a suite of SRTP_SUITES, one `inline:` key of
 * 30 bytes, a lifetime allowed, no MKI, no session parameters), or why there is none.
 */
function pickCrypto(m: MediaDescription): { tag: number; suite: SrtpSuite; remoteKey: string } | string {
  const lines = (m as { crypto?: { id: number; suite: string; config: string; sessionConfig?: string }[] }).crypto ?? [];
  if (lines.length === 0) return 'an RTP/SAVP m-line without a=crypto (SDES) is not supported (DTLS-SRTP is not)';
  const why: string[] = [];
  for (const c of lines) {
    const suite = SRTP_SUITES.find((x) => x === c.suite);
    if (!suite) {
      why.push(`suite ${c.suite} is not supported`);
      continue;
    }
    if (c.sessionConfig) {
      why.push(`session parameters (${c.sessionConfig}) are not supported`);
      continue;
    }
    const params = String(c.config).split(';');
    const key = /^inline:([A-Za-z0-9+/=]+)((?:\|[^|]*)*)$/.exec(params[0]);
    if (params.length !== 1 || !key) {
      why.push(`key parameters ${c.config} are not one inline key`);
      continue;
    }
    const extras = key[2].split('|').filter(Boolean);
    if (extras.some((e) => e.includes(':'))) {
      why.push('an MKI is not supported');
      continue;
    }
    if (Buffer.from(key[1], 'base64').length !== MASTER_BYTES) {
      why.push(`an inline key of ${MASTER_BYTES} bytes is needed`);
      continue;
    }
    return { tag: Number(c.id), suite, remoteKey: key[1] };
  }
  return `SRTP: ${why.join('; ')} (we take ${SRTP_SUITES.join(', ')} with one inline key, no MKI)`;
}

function payloadList(m: MediaDescription): number[] {
  return String(m.payloads ?? '')
    .trim()
    .split(/\s+/)
    .filter((p) => p !== '')
    .map(Number);
}

/** Finds the codec name for a payload type: rtpmap first, then the static table. */
function codecOf(m: MediaDescription, pt: number): string | null {
  const rtp = m.rtp?.find((r) => r.payload === pt);
  // sdp-transform gives a number for a codec name that looks like one (`a=rtpmap:0 8 101`)
  if (rtp) return `${String(rtp.codec).toUpperCase()}/${rtp.rate}`;
  if (pt === 0) return 'PCMU/8000';
  if (pt === 8) return 'PCMA/8000';
  return null;
}

/**
 * Picks, for every usable audio m-line of a remote SDP (offer or answer), the first G.711 codec in the remote's
 * order that we allow. Throws SdpError 400 for unparseable SDP and 488 when no audio m-line can be used.
 */
export function negotiate(sdp: string, allowed: readonly G711Law[]): NegotiatedMedia[] {
  const s = parse(sdp);
  const out: NegotiatedMedia[] = [];
  let srtpRefused: string | null = null;
  s.media.forEach((m, mline) => {
    if (!isUsableAudio(m) || (m.port === 0 && out.length > 0)) return;
    let srtp: NegotiatedMedia['srtp'];
    if (/SAVP/i.test(m.protocol)) {
      const c = pickCrypto(m);
      if (typeof c === 'string') {
        srtpRefused = c;
        return;
      }
      srtp = { ...c, localKey: newMasterKey() };
    }
    const pts = payloadList(m);
    let chosen: { pt: number; codec: G711Law } | null = null;
    for (const pt of pts) {
      const name = codecOf(m, pt);
      const codec = allowed.find((c) => name === `${c}/8000`);
      if (codec) {
        chosen = { pt, codec };
        break;
      }
    }
    if (!chosen) return;
    const te = pts.find((pt) => /^TELEPHONE-EVENT\/8000$/.test(codecOf(m, pt) ?? '')) ?? null;
    const address = m.connection?.ip ?? s.connection?.ip ?? null;
    const remoteDirection = ((m.direction ?? s.direction ?? 'sendrecv') as Direction);
    // no c= at all is not a hold (an SRC that leaves it out still sends): the address is learnt from the packets
    const held = address === '0.0.0.0' || m.port === 0;
    out.push({
      mline,
      payloadType: chosen.pt,
      codec: chosen.codec,
      telephoneEventPt: te,
      remoteAddress: held ? null : address,
      ...(address === null && !held ? { learnAddress: true } : {}),
      remotePort: m.port,
      remoteDirection,
      localDirection: REVERSE[remoteDirection],
      ptime: m.ptime ?? 20,
      label: m.label !== undefined ? String(m.label) : null,
      ...(srtp ? { srtp } : {}),
    });
  });
  if (out.length === 0) {
    throw new SdpError(srtpRefused ?? `SDP offers no usable audio: we accept ${allowed.join('/')} over RTP/AVP or RTP/SAVP (SDES)`, { sipStatus: 488 });
  }
  return out;
}

function audioMedia(port: number, pt: number, codec: G711Law, te: number | null, dir: Direction, ptime: number): MediaDescription {
  const rtp: { payload: number; codec: string; rate: number }[] = [{ payload: pt, codec, rate: 8000 }];
  const fmtp: { payload: number; config: string }[] = [];
  if (te !== null) {
    rtp.push({ payload: te, codec: 'telephone-event', rate: 8000 });
    fmtp.push({ payload: te, config: '0-15' });
  }
  return {
    type: 'audio',
    port,
    protocol: 'RTP/AVP',
    payloads: [pt, ...(te === null ? [] : [te])].join(' '),
    rtp,
    fmtp,
    ptime,
    direction: dir,
  } as MediaDescription;
}

function session(local: SdpLocal, media: MediaDescription[]): string {
  return sdpTransform.write({
    version: 0,
    origin: {
      username: 'msml-recorder',
      sessionId: local.sessionId,
      sessionVersion: local.sessionVersion,
      netType: 'IN',
      ipVer: local.address.includes(':') ? 6 : 4,
      address: local.address,
    },
    name: '-',
    connection: { version: local.address.includes(':') ? 6 : 4, ip: local.address },
    timing: { start: 0, stop: 0 },
    media,
  } as SessionDescription);
}

/**
 * Renders our answer to `offerSdp` given what `negotiate` chose. Every m-line of the offer appears in the answer
 * (RFC 3264 §6): the ones we use with our port, the rest rejected with port 0.
 */
export function renderAnswer(offerSdp: string, chosen: NegotiatedMedia[], local: SdpLocal): string {
  if (local.ports.length !== chosen.length) throw new Error('renderAnswer: one local port per negotiated m-line');
  const offer = parse(offerSdp);
  const media = offer.media.map((m, i) => {
    const k = chosen.findIndex((c) => c.mline === i);
    if (k < 0) {
      return { type: m.type, port: 0, protocol: m.protocol, payloads: m.payloads } as MediaDescription;
    }
    const c = chosen[k];
    const md = audioMedia(local.ports[k], c.payloadType, c.codec, c.telephoneEventPt, c.localDirection, c.ptime);
    if (c.label !== null) md.label = c.label;
    if (c.srtp) {
      // our key for what we send, under the tag and suite the offerer listed (RFC 4568 §5.1.2)
      md.protocol = 'RTP/SAVP';
      (md as { crypto?: unknown[] }).crypto = [{ id: c.srtp.tag, suite: c.srtp.suite, config: `inline:${c.srtp.localKey}` }];
    }
    return md;
  });
  return session(local, media);
}

/**
 * Renders an offer (for an offer-less INVITE or re-INVITE, 3PCC): one audio m-line per port with every allowed codec,
 * sendrecv unless told (a SIPREC recorder offers recvonly), with the given `a=label`s.
 */
export function renderOffer(local: SdpLocal, codecs: readonly G711Law[], opts: { direction?: Direction; labels?: (string | null)[] } = {}): string {
  const telephoneEventPt = 101;
  const media = local.ports.map((port, i) => {
    const rtp: { payload: number; codec: string; rate: number }[] = codecs.map((c) => ({ payload: G711_STATIC_PT[c], codec: c, rate: 8000 }));
    rtp.push({ payload: telephoneEventPt, codec: 'telephone-event', rate: 8000 });
    return {
      type: 'audio',
      port,
      protocol: 'RTP/AVP',
      payloads: [...codecs.map((c) => G711_STATIC_PT[c]), telephoneEventPt].join(' '),
      rtp,
      fmtp: [{ payload: telephoneEventPt, config: '0-15' }],
      ptime: 20,
      direction: opts.direction ?? 'sendrecv',
      ...(opts.labels?.[i] != null ? { label: opts.labels[i] } : {}),
    } as MediaDescription;
  });
  return session(local, media);
}

/** True when an INVITE/ACK body carries no SDP (3PCC offer-less INVITE). */
export function isOfferless(body: string | undefined | null): boolean {
  return body === undefined || body === null || body.trim() === '';
}
