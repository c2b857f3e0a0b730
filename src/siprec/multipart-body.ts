import { SignalingError } from '../errors.js';

/** One part of a multipart body: its headers (names lower-cased) and its content, exactly as sent. */
export interface BodyPart {
  headers: Record<string, string>;
  /** The part's media type, lower-cased, without parameters ('' when it has no Content-Type). */
  type: string;
  content: string;
}

/** A multipart body that cannot be read: 400, with a Warning naming what is wrong. */
export class MultipartError extends SignalingError {
  constructor(message: string) {
    super(message, { sipStatus: 400, msmlCode: 400 });
  }
}

/** A Content-Type's media type and parameters (names lower-cased; values unquoted). Pure. */
export function parseContentType(header: string): { type: string; params: Record<string, string> } {
  const [type, ...rest] = splitParams(header);
  const params: Record<string, string> = {};
  for (const p of rest) {
    const i = p.indexOf('=');
    if (i < 0) continue;
    let v = p.slice(i + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params[p.slice(0, i).trim().toLowerCase()] = v;
  }
  return { type: (type ?? '').trim().toLowerCase(), params };
}

/** Splits at semicolons outside quotes. */
function splitParams(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"' && s[i - 1] !== '\\') quoted = !quoted;
    if (c === ';' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * Splits a multipart body (RFC 2046 §5.1) into its parts, over the raw body: the boundary parameter quoted or not,
 * CRLF or bare LF line ends, a preamble and an epilogue ignored, part headers in any case (folded lines joined), a
 * part's content kept whole (blank lines and all; drachtio-srf's `payload[]` cuts a part at its first blank line).
 * The line break before a delimiter belongs to the delimiter. Throws MultipartError naming what is wrong. Pure.
 */
export function parseMultipart(contentType: string, body: string): BodyPart[] {
  const { type, params } = parseContentType(contentType);
  if (!type.startsWith('multipart/')) throw new MultipartError(`Content-Type ${type || '(none)'} is not multipart`);
  const boundary = params.boundary;
  if (!boundary) throw new MultipartError(`${type} without a boundary parameter`);
  if (boundary.length > 70) throw new MultipartError(`multipart boundary longer than 70 characters`);
  const delim = `--${boundary}`;
  const parts: BodyPart[] = [];
  // delimiter lines: at the body's start or after a line break, followed by optional "--", spaces and a line break
  let at = body.startsWith(delim) ? 0 : indexOfLine(body, delim, 0);
  if (at < 0) throw new MultipartError(`no multipart boundary "${boundary}" in the body`);
  for (;;) {
    let lineEnd = at + delim.length;
    const closing = body.startsWith('--', lineEnd);
    if (closing) break;
    while (body[lineEnd] === ' ' || body[lineEnd] === '\t') lineEnd++;
    if (body[lineEnd] === '\r') lineEnd++;
    if (body[lineEnd] !== '\n') throw new MultipartError('malformed multipart delimiter line');
    const start = lineEnd + 1;
    const next = indexOfLine(body, delim, start);
    if (next < 0) throw new MultipartError(`multipart body ends without its closing boundary "--${boundary}--"`);
    // the CRLF (or LF) before the next delimiter is the delimiter's
    let end = next;
    if (body[end - 1] === '\n') end--;
    if (body[end - 1] === '\r') end--;
    parts.push(part(body.slice(start, Math.max(start, end))));
    at = next;
  }
  if (parts.length === 0) throw new MultipartError('multipart body with no part');
  return parts;
}

/** Where `delim` starts a line at or after `from` (right after a LF), or -1. */
function indexOfLine(body: string, delim: string, from: number): number {
  let i = from;
  for (;;) {
    i = body.indexOf(delim, i);
    if (i < 0) return -1;
    if (i === 0 || body[i - 1] === '\n') return i;
    i += delim.length;
  }
}

function part(raw: string): BodyPart {
  const m = /\r?\n\r?\n/.exec(raw);
  // a part with no header block starts with its blank line (RFC 2046: then it is text/plain)
  const headText = raw.startsWith('\r\n') || raw.startsWith('\n') ? '' : m ? raw.slice(0, m.index) : raw;
  const content = raw.startsWith('\r\n') ? raw.slice(2) : raw.startsWith('\n') ? raw.slice(1) : m ? raw.slice(m.index + m[0].length) : '';
  const headers: Record<string, string> = {};
  for (const line of headText.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, type: parseContentType(headers['content-type'] ?? '').type, content };
}
