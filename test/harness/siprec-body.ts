/** SIPREC INVITE bodies (RFC 7865 / 7866) for tests: a multipart of SDP and recording metadata, shaped as SRCs send them. */
import { readdirSync, readFileSync } from 'node:fs';

const FIXTURES = new URL('../fixtures/siprec/', import.meta.url);

/** A vendor fixture of `test/fixtures/siprec/`: its first line is the Content-Type, the rest the body (CRLF line ends unless the name says lf). */
export function siprecFixture(name: string): { contentType: string; body: string } {
  const text = readFileSync(new URL(name, FIXTURES), 'utf8');
  const nl = text.indexOf('\n');
  const body = text.slice(nl + 1);
  return { contentType: text.slice(0, nl), body: name.includes('-lf') ? body : body.replace(/\r?\n/g, '\r\n') };
}

/** Every vendor fixture, as seeds for fuzzing. */
export const siprecSeeds = readdirSync(FIXTURES).map(siprecFixture);

export interface SiprecStreamSpec {
  port: number;
  label: string;
  /** 'PCMU' (0) or 'PCMA' (8) */
  codec?: 'PCMU' | 'PCMA';
  direction?: 'sendonly' | 'inactive' | 'sendrecv';
}

export interface SiprecParticipantSpec {
  id: string;
  aor: string;
  name?: string;
  /** Labels of the streams it sends. */
  sends: string[];
}

/** An SRC's SDP: one m-line per stream, each with its a=label, sendonly unless told. */
export function siprecSdp(streams: SiprecStreamSpec[], version = 1, address = '127.0.0.1'): string {
  const lines = ['v=0', `o=SRC 4711 ${version} IN IP4 ${address}`, 's=SIPREC', `c=IN IP4 ${address}`, 't=0 0'];
  for (const s of streams) {
    const pt = s.codec === 'PCMA' ? 8 : 0;
    lines.push(`m=audio ${s.port} RTP/AVP ${pt} 101`, `a=rtpmap:${pt} ${s.codec ?? 'PCMU'}/8000`, 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', `a=label:${s.label}`, `a=${s.direction ?? 'sendonly'}`);
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** RFC 7865 metadata naming the participants and which labelled stream each sends (the other receives it). */
export function siprecMetadata(sessionId: string, participants: SiprecParticipantSpec[], extra = ''): string {
  const streams = participants.flatMap((p) => p.sends);
  const x = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<recording xmlns="urn:ietf:params:xml:ns:recording:1">',
    '  <datamode>complete</datamode>',
    `  <session session_id="${sessionId}"><sipSessionID>abc123;remote=def456</sipSessionID></session>`,
    ...participants.map((p) => `  <participant participant_id="${p.id}"><nameID aor="${p.aor}">${p.name ? `<name xml:lang="en">${p.name}</name>` : ''}</nameID></participant>`),
    ...streams.map((l) => `  <stream stream_id="st-${l}" session_id="${sessionId}"><label>${l}</label></stream>`),
    ...participants.map((p) => {
      const recv = streams.filter((l) => !p.sends.includes(l));
      return `  <participantstreamassoc participant_id="${p.id}">${p.sends.map((l) => `<send>st-${l}</send>`).join('')}${recv.map((l) => `<recv>st-${l}</recv>`).join('')}</participantstreamassoc>`;
    }),
    extra,
    '</recording>',
  ];
  return `${x.filter((l) => l !== '').join('\r\n')}\r\n`;
}

/** A multipart/mixed body of the parts, with the Content-Type it goes under. */
export function multipart(parts: { type: string; content: string; disposition?: string }[], boundary = 'OSS-unique-boundary-42'): { contentType: string; body: string } {
  const body = parts.map((p) => `--${boundary}\r\nContent-Type: ${p.type}\r\n${p.disposition ? `Content-Disposition: ${p.disposition}\r\n` : ''}\r\n${p.content}`).join('\r\n');
  return { contentType: `multipart/mixed;boundary=${boundary}`, body: `${body}\r\n--${boundary}--\r\n` };
}

/** The whole SIPREC INVITE body: SDP and metadata. */
export function siprecOffer(streams: SiprecStreamSpec[], sessionId: string, participants: SiprecParticipantSpec[]): { contentType: string; body: string } {
  return multipart([
    { type: 'application/sdp', content: siprecSdp(streams) },
    { type: 'application/rs-metadata+xml', content: siprecMetadata(sessionId, participants), disposition: 'recording-session' },
  ]);
}
