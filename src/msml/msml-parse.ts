import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { MsmlError } from '../errors.js';
import { MsmlCode } from './msml-codes.js';

/** A namespace-agnostic XML element: local names, attributes by local name, children in document order. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** What `<record>` asks for. Unknown attributes and every `<param>` are kept: they flow into the metadata. */
export interface RecordSpec {
  dest: string | null;
  format: string | null;
  /** `maxtime` in milliseconds, or null when absent. */
  maxtimeMs: number | null;
  attrs: Record<string, string>;
  params: Record<string, string>;
  /** `namelist` of `<recordexit><exit>`: what SIP Server wants back in `moml.exit`; null when absent. */
  exitNamelist: string | null;
}

export type MsmlRequest =
  | { kind: 'dialogstart'; target: string; type: string | null; name: string | null; record: RecordSpec; mark: string | null }
  | { kind: 'dialogend'; id: string; mark: string | null }
  | { kind: 'send'; target: string; event: string; namelist: string | null; mark: string | null }
  | { kind: 'createconference'; name: string | null; mark: string | null }
  | { kind: 'destroyconference'; id: string; mark: string | null }
  | { kind: 'join' | 'unjoin' | 'modifystream' | 'modifyconference'; attrs: Record<string, string>; mark: string | null };

export type MsmlDocument =
  | { kind: 'requests'; version: string; requests: MsmlRequest[]; ignored: string[] }
  | { kind: 'result'; version: string; response: number; description: string | null; ids: string[] }
  | { kind: 'event'; version: string; name: string; id: string; values: [string, string][] };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

type Ordered = Record<string, unknown>;

function toElement(node: Ordered): XmlElement | null {
  const name = Object.keys(node).find((k) => k !== ':@');
  if (name === undefined || name === '#text' || name === '#comment') return null;
  const attrsRaw = (node[':@'] ?? {}) as Record<string, unknown>;
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrsRaw)) attrs[k] = String(v);
  const kids = (node[name] ?? []) as Ordered[];
  const children: XmlElement[] = [];
  let text = '';
  for (const k of kids) {
    if ('#text' in k) text += String(k['#text']);
    else {
      const el = toElement(k);
      if (el) children.push(el);
    }
  }
  return { name, attrs, children, text };
}

/** Parses XML into a local-name tree. Throws MsmlError 400 with the parser's reason on malformed XML. */
export function parseXml(xml: string): XmlElement {
  // a DTD can declare external entities (XXE) or entity bombs; MSML never needs one
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new MsmlError('Bad request: a DOCTYPE or ENTITY declaration is not accepted', MsmlCode.BAD_REQUEST);
  const v = XMLValidator.validate(xml);
  if (v !== true) {
    throw new MsmlError(`Bad request: XML parse error: ${v.err.msg} (line ${v.err.line})`, MsmlCode.BAD_REQUEST);
  }
  let nodes: Ordered[];
  try {
    // the validator lets some malformed input through (a broken <?xml ?>, nesting past the parser's limit)
    nodes = parser.parse(xml) as Ordered[];
  } catch (err) {
    throw new MsmlError(`Bad request: XML parse error: ${(err as Error).message}`, MsmlCode.BAD_REQUEST);
  }
  const roots = nodes.map(toElement).filter((e): e is XmlElement => e !== null);
  if (roots.length !== 1) throw new MsmlError('Bad request: XML must have exactly one root element', MsmlCode.BAD_REQUEST);
  return roots[0];
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

/** Parses an MSML time designation (`36000s`, `500ms`); a bare number is seconds. Null for absent/infinite. */
export function parseTime(value: string | undefined, what: string): number | null {
  if (value === undefined || value === '' || /^(infinite|forever)$/i.test(value)) return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$/i.exec(value);
  if (!m) throw new MsmlError(`Invalid time value for ${what}: "${value}"`, MsmlCode.BAD_ATTRIBUTE);
  return Math.round(Number(m[1]) * UNIT_MS[(m[2] ?? 's').toLowerCase()]);
}

function find(el: XmlElement, name: string): XmlElement | null {
  for (const c of el.children) {
    if (c.name === name) return c;
    const deep = find(c, name);
    if (deep) return deep;
  }
  return null;
}

function required(el: XmlElement, attr: string): string {
  const v = el.attrs[attr];
  if (v === undefined || v.trim() === '') {
    throw new MsmlError(`Missing mandatory attribute "${attr}" on <${el.name}>`, MsmlCode.BAD_ATTRIBUTE);
  }
  return v.trim();
}

function recordSpec(rec: XmlElement): RecordSpec {
  const params: Record<string, string> = {};
  const collect = (el: XmlElement): void => {
    for (const c of el.children) {
      if (c.name === 'param' && c.attrs.name) params[c.attrs.name] = c.attrs.value ?? c.attrs.expr ?? c.text;
      else if (c.name !== 'recordexit' && c.name !== 'play') collect(c);
    }
  };
  collect(rec);
  const recordexit = rec.children.find((c) => c.name === 'recordexit');
  const exit = recordexit ? find(recordexit, 'exit') : null;
  return {
    dest: rec.attrs.dest ?? rec.attrs.audiodest ?? null,
    format: rec.attrs.format ?? null,
    maxtimeMs: parseTime(rec.attrs.maxtime, 'record maxtime'),
    attrs: { ...rec.attrs },
    params,
    exitNamelist: exit ? (exit.attrs.namelist ?? '') : null,
  };
}

function request(el: XmlElement): MsmlRequest | null {
  const mark = el.attrs.mark ?? null;
  switch (el.name) {
    case 'dialogstart': {
      const target = required(el, 'target');
      const rec = find(el, 'record');
      if (!rec) {
        throw new MsmlError('Unsupported dialog: this media server only runs <record> dialogs', MsmlCode.UNSUPPORTED);
      }
      return { kind: 'dialogstart', target, type: el.attrs.type ?? null, name: el.attrs.name ?? null, record: recordSpec(rec), mark };
    }
    case 'dialogend':
      return { kind: 'dialogend', id: required(el, 'id'), mark };
    case 'send':
      return { kind: 'send', target: required(el, 'target'), event: required(el, 'event'), namelist: el.attrs.namelist ?? null, mark };
    case 'createconference':
      return { kind: 'createconference', name: el.attrs.name ?? null, mark };
    case 'destroyconference':
      return { kind: 'destroyconference', id: required(el, 'id'), mark };
    case 'join':
    case 'unjoin':
    case 'modifystream':
    case 'modifyconference':
      return { kind: el.name, attrs: { ...el.attrs }, mark };
    default:
      return null;
  }
}

/** How many names an answer or a log line lists before it says "and N more". */
export const LIST_LIMIT = 10;

/** `a, b, c and 997 more`: a list an answer or a log line can carry whatever the request held. */
export function boundedList(items: string[], limit = LIST_LIMIT): string {
  const shown = items.slice(0, limit).map((s) => (s.length > 64 ? `${s.slice(0, 64)}…` : s));
  return items.length > limit ? `${shown.join(', ')} and ${items.length - limit} more` : shown.join(', ');
}

/**
 * Parses an MSML body (RFC 5707). Liberal in what it accepts: namespaces are ignored, unknown elements are
 * listed in `ignored`, unknown attributes and `<param>`s are kept. Throws MsmlError with the code to answer:
 * 400 for malformed XML or a non-MSML root, 402 for MSML with no request we support, 407 for missing attributes.
 */
export function parseMsml(xml: string): MsmlDocument {
  if (typeof xml !== 'string' || xml.trim() === '') throw new MsmlError('Bad request: empty MSML body', MsmlCode.BAD_REQUEST);
  const root = parseXml(xml);
  if (root.name !== 'msml') throw new MsmlError(`Bad request: root element is <${root.name}>, expected <msml>`, MsmlCode.BAD_REQUEST);
  const version = root.attrs.version ?? '1.1';
  const result = root.children.find((c) => c.name === 'result');
  if (result) {
    const description = result.children.find((c) => c.name === 'description')?.text ?? null;
    const ids = result.children.filter((c) => c.name === 'dialogid' || c.name === 'confid').map((c) => c.text);
    const response = Number(result.attrs.response);
    if (!/^\d{3}$/.test(result.attrs.response ?? '')) throw new MsmlError('Bad request: <result> without a 3-digit response', MsmlCode.BAD_REQUEST);
    return { kind: 'result', version, response, description, ids };
  }
  const event = root.children.find((c) => c.name === 'event');
  if (event) {
    const values: [string, string][] = [];
    let pending: string | null = null;
    for (const c of event.children) {
      if (c.name === 'name') pending = c.text;
      else if (c.name === 'value' && pending !== null) {
        values.push([pending, c.text]);
        pending = null;
      }
    }
    return { kind: 'event', version, name: required(event, 'name'), id: required(event, 'id'), values };
  }
  const requests: MsmlRequest[] = [];
  const ignored: string[] = [];
  for (const c of root.children) {
    const r = request(c);
    if (r) requests.push(r);
    else ignored.push(c.name);
  }
  if (requests.length === 0) {
    const what = ignored.length ? boundedList(ignored.map((n) => `<${n}>`)) : 'nothing';
    throw new MsmlError(`Unsupported request: ${what}`, MsmlCode.UNSUPPORTED);
  }
  return { kind: 'requests', version, requests, ignored };
}
