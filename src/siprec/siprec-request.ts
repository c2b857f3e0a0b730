import { MultipartError, parseContentType, parseMultipart, type BodyPart } from './multipart-body.js';
import { parseRecordingMetadata, type RecordingMetadata } from './recording-metadata.js';

/** The metadata part's media type (RFC 7866 §9.1). */
export const METADATA_TYPE = 'application/rs-metadata+xml';
/** The type the drafts before RFC 7866 used, which SEMS-based SRCs still send. */
const PRE_RFC_METADATA_TYPE = 'application/rs-metadata';
const RECORDING_NS = 'urn:ietf:params:xml:ns:recording:1';

/**
 * Whether a body part of `type` is SIPREC recording metadata: `application/rs-metadata+xml`, the pre-RFC
 * `application/rs-metadata`, or any XML type whose root element is `recording` in the RFC 7865 namespace.
 */
export function isMetadata(type: string, content: string): boolean {
  if (type === METADATA_TYPE || type === PRE_RFC_METADATA_TYPE) return true;
  if (!/^(application|text)\/(xml|[\w.+-]+\+xml)$/.test(type)) return false;
  // the root element (after the XML declaration and comments): recording, under any prefix, in the RFC 7865 namespace
  const root = /^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*)*<(?:([\w.-]+):)?recording\b([^>]*)>/.exec(content);
  if (!root) return false;
  const ns = root[1] ? new RegExp(`xmlns:${root[1]}\\s*=\\s*["']${RECORDING_NS}["']`) : new RegExp(`xmlns\\s*=\\s*["']${RECORDING_NS}["']`);
  return ns.test(root[2]);
}

/** What a SIPREC request (INVITE, re-INVITE, UPDATE) carries: its SDP and its recording metadata, each if present. */
export interface SiprecBody {
  sdp: string | null;
  metadata: RecordingMetadata | null;
  /** The metadata document as sent (kept whole in the sidecar). */
  metadataXml: string | null;
}

/** The headers that decide whether an INVITE is a recording session (names as sent; values may be joined with ','). */
export interface InviteHeaders {
  contentType: string;
  require: string;
  contact: string;
}

/** The headers of an INVITE that say whether it is a SIPREC recording session, from a request (drachtio-srf's `get`). */
export function inviteHeaders(req: { get(name: string): string | undefined }): InviteHeaders {
  return { contentType: req.get('Content-Type') ?? '', require: req.get('Require') ?? '', contact: req.get('Contact') ?? '' };
}

const hasTag = (list: string, tag: string): boolean => list.split(',').some((t) => t.trim().toLowerCase() === tag);

/**
 * Reads a request body that may be multipart (RFC 2046, over the raw body) into its SDP and metadata parts; other
 * parts are ignored. A plain `application/sdp` body is its SDP, a lone metadata body its metadata, an empty body
 * neither. Throws MultipartError (400) naming what is wrong: a broken multipart body, unreadable metadata, a body
 * of another type. Pure.
 */
export function readSiprecBody(contentType: string, body: string | null | undefined): SiprecBody {
  const text = body ?? '';
  if (text.trim() === '') return { sdp: null, metadata: null, metadataXml: null };
  const type = parseContentType(contentType).type;
  if (type.startsWith('multipart/')) return bodyOfParts(type, parseMultipart(contentType, text));
  if (isMetadata(type, text)) return { sdp: null, metadataXml: text, metadata: parseRecordingMetadata(text) };
  // no Content-Type on a body that looks like SDP: taken as SDP (the SDP parser says what is wrong with it)
  if (type === 'application/sdp' || type === '') return { sdp: text, metadata: null, metadataXml: null };
  throw new MultipartError(`body of type ${type} is neither SDP nor SIPREC metadata`);
}

/** The SDP and metadata parts of a multipart body of `type`. Throws MultipartError when it has neither. */
function bodyOfParts(type: string, parts: BodyPart[]): SiprecBody {
  const sdp = parts.find((p) => p.type === 'application/sdp')?.content ?? null;
  const metadataXml = parts.find((p) => isMetadata(p.type, p.content))?.content ?? null;
  if (sdp === null && metadataXml === null) throw new MultipartError(`${type} body without an application/sdp or ${METADATA_TYPE} part`);
  return { sdp, metadataXml, metadata: metadataXml === null ? null : parseRecordingMetadata(metadataXml) };
}

/** The audio m-lines of an SDP and their directions (a quick scan; the SDP parser reads it properly later). */
function audioDirections(sdp: string): string[] {
  const out: string[] = [];
  let session = 'sendrecv';
  let current: string | null = null;
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      if (current !== null) out.push(current);
      current = /^m=audio\s/i.test(line) ? session : null;
      if (current === null) out.push('other');
    } else if (/^a=(sendonly|recvonly|sendrecv|inactive)$/i.test(line)) {
      const d = line.slice(2).toLowerCase();
      if (current !== null) current = d;
      else if (out.length === 0) session = d;
    }
  }
  if (current !== null) out.push(current);
  return out.filter((d) => d !== 'other');
}

/**
 * An INVITE that starts a SIPREC recording session (RFC 7866) rather than an MSML one, read (null: it is not one): a
 * multipart body with a recording-metadata part, `Require: siprec`, a Contact with `+sip.src`, or — when the
 * Request-URI is not an MSML one (`msmlUri` false) — a plain SDP whose two or more audio m-lines are all
 * `a=sendonly` (Cisco network-based recording sends no metadata). The body is read once, as `readSiprecBody` reads
 * it. Throws MultipartError (400) for a SIPREC INVITE whose body cannot be read — a broken multipart body with a
 * metadata part in it is one. Pure.
 */
export function readSiprecInvite(h: InviteHeaders, body: string | null | undefined, msmlUri: boolean): SiprecBody | null {
  if (hasTag(h.require, 'siprec') || /[;\s]\+sip\.src\b/i.test(h.contact)) return readSiprecBody(h.contentType, body);
  const text = body ?? '';
  const { type } = parseContentType(h.contentType);
  if (type.startsWith('multipart/')) {
    let parts: BodyPart[];
    try {
      parts = parseMultipart(h.contentType, text);
    } catch (err) {
      if (text.toLowerCase().includes(PRE_RFC_METADATA_TYPE)) throw err;
      return null;
    }
    return parts.some((p) => isMetadata(p.type, p.content)) ? bodyOfParts(type, parts) : null;
  }
  if (msmlUri || (type !== 'application/sdp' && type !== '')) return null;
  const dirs = audioDirections(text);
  return dirs.length >= 2 && dirs.every((d) => d === 'sendonly') ? { sdp: text, metadata: null, metadataXml: null } : null;
}

/** Whether an INVITE starts a SIPREC recording session (see `readSiprecInvite`; one whose body is broken does). Pure; never throws. */
export function isSiprecInvite(h: InviteHeaders, body: string | null | undefined, msmlUri: boolean): boolean {
  try {
    return readSiprecInvite(h, body, msmlUri) !== null;
  } catch (err) {
    if (err instanceof MultipartError) return true;
    throw err;
  }
}
