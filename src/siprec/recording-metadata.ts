import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { MultipartError } from './multipart-body.js';

/** A participant of the recorded call (RFC 7865 §6.4): its id, address of record, name, and the streams it sends / receives. */
export interface MetadataParticipant {
  id: string;
  aor: string | null;
  name: string | null;
  send: string[];
  recv: string[];
  /** This participant's own vendor data (Acme `callingParty`, …), as dotted paths below the participant. */
  extensions: Record<string, string>;
}

/** What a SIPREC metadata body (RFC 7865, `application/rs-metadata+xml`) says, and everything else it carries. */
export interface RecordingMetadata {
  sessionId: string | null;
  participants: MetadataParticipant[];
  /** Streams by id, with the SDP `a=label` they go with. */
  streams: { id: string; label: string | null }[];
  /**
   * Elements of other namespaces or not in RFC 7865 (Cisco `callData`, Avaya UCID, …) of the recording and its
   * session, as dotted paths → text. A participant's own are with that participant.
   */
  extensions: Record<string, string>;
}

const KNOWN = new Set(['datamode', 'group', 'session', 'participant', 'stream', 'sessionrecordingassoc', 'participantsessionassoc', 'participantstreamassoc']);
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  isArray: (name) => ['participant', 'stream', 'participantstreamassoc', 'send', 'recv', 'nameID', 'session', 'aor', 'name'].includes(name),
  processEntities: false,
});

type Node = Record<string, unknown>;
const text = (v: unknown): string | null => {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return text(v[0]);
  if (v && typeof v === 'object' && '#text' in v) return String((v as Node)['#text']);
  return null;
};
const list = (v: unknown): Node[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).map((x) => (typeof x === 'object' && x !== null ? (x as Node) : { '#text': String(x) }));
const attr = (n: Node, ...names: string[]): string | null => {
  for (const a of names) if (typeof n[`@${a}`] === 'string') return n[`@${a}`] as string;
  return null;
};

/** Vendor extensions as dotted paths (attributes as path@name), bounded. */
function flatten(n: unknown, path: string, out: Record<string, string>): void {
  if (Object.keys(out).length >= 100) return;
  if (typeof n !== 'object' || n === null) {
    if (n !== undefined && n !== '') out[path] = String(n).slice(0, 500);
    return;
  }
  if (Array.isArray(n)) return n.forEach((x, i) => flatten(x, n.length > 1 ? `${path}[${i}]` : path, out));
  for (const [k, v] of Object.entries(n)) flatten(v, k === '#text' ? path : k.startsWith('@') ? `${path}${k}` : `${path}.${k}`, out);
}

/** A participant's elements beyond RFC 7865's, as dotted paths below it. */
function ownExtensions(p: Node): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p)) if (!k.startsWith('@') && !['nameID', 'aor', 'name', 'send', 'recv'].includes(k)) flatten(v, k, out);
  return out;
}

/**
 * Parses SIPREC recording metadata (RFC 7865, namespace `urn:ietf:params:xml:ns:recording:1` under any prefix, and
 * the older draft shape where `<participant>` holds its own `<send>`/`<recv>`). Participants' streams come from
 * `participantstreamassoc` or the participant itself. Throws MultipartError (400) naming what is wrong. Pure.
 */
export function parseRecordingMetadata(xml: string): RecordingMetadata {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new MultipartError('recording metadata with a DOCTYPE or ENTITY is refused');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new MultipartError(`recording metadata is not XML: ${valid.err.msg} (line ${valid.err.line})`);
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (err) {
    throw new MultipartError(`recording metadata is not XML: ${(err as Error).message}`);
  }
  const rec = doc.recording as Node | undefined;
  if (!rec || typeof rec !== 'object') throw new MultipartError('recording metadata has no <recording> element');
  const sessions = list(rec.session);
  const participants: MetadataParticipant[] = list(rec.participant).map((p, i) => {
    const nameID = list(p.nameID)[0];
    return {
      id: attr(p, 'participant_id', 'id') ?? `participant${i + 1}`,
      aor: (nameID && attr(nameID, 'aor')) ?? text(p.aor) ?? null,
      name: (nameID && text(nameID.name)) ?? text(p.name) ?? null,
      send: list(p.send).map((s) => text(s) ?? '').filter(Boolean),
      recv: list(p.recv).map((s) => text(s) ?? '').filter(Boolean),
      extensions: ownExtensions(p),
    };
  });
  for (const a of list(rec.participantstreamassoc)) {
    const p = participants.find((x) => x.id === attr(a, 'participant_id'));
    if (!p) continue;
    p.send.push(...list(a.send).map((s) => text(s) ?? '').filter(Boolean));
    p.recv.push(...list(a.recv).map((s) => text(s) ?? '').filter(Boolean));
  }
  const streams = list(rec.stream).map((s, i) => ({ id: attr(s, 'stream_id', 'id') ?? `stream${i + 1}`, label: text(s.label) }));
  const extensions: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec)) if (!k.startsWith('@') && !KNOWN.has(k)) flatten(v, k, extensions);
  for (const s of sessions) for (const [k, v] of Object.entries(s)) if (!k.startsWith('@') && k !== 'sipSessionID') flatten(v, `session.${k}`, extensions);
  return { sessionId: (sessions[0] && attr(sessions[0], 'session_id', 'id')) ?? null, participants, streams, extensions };
}

/** The recording slot of each of `count` m-lines by their order: the first left (0), all the others right (1). Pure. */
export function channelsByOrder(count: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.min(i, 1));
}

/**
 * The recording slot (0 = left, 1 = right) of each m-line: by metadata when it says who sends the stream with the
 * m-line's `a=label` — the `left` participant (default: the first listed, the caller for the SRCs in the fixtures)
 * left, the others right — else by m-line order (first left). Never by which RTP arrives first. Pure.
 */
export function channelsOf(meta: RecordingMetadata | null, labels: (string | null)[], left: (m: RecordingMetadata) => MetadataParticipant | undefined = (m) => m.participants[0]): number[] {
  const byOrder = channelsByOrder(labels.length);
  if (!meta || meta.participants.length === 0) return byOrder;
  const caller = left(meta);
  return labels.map((label, i) => {
    const stream = label === null ? undefined : meta.streams.find((s) => s.label === label);
    if (!stream) return byOrder[i];
    const sender = meta.participants.find((p) => p.send.includes(stream.id));
    if (!sender) return byOrder[i];
    return sender === caller ? 0 : 1;
  });
}
