/**
 * SIPREC bodies (RFC 7865 / 7866) as SRCs send them, written from the RFCs and public vendor documentation (facts,
 * not text): a multipart/mixed INVITE body of SDP + recording metadata per vendor, parsed over the raw body, and the
 * channel of each m-line decided by who sends its labelled stream — whatever the m-line order.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseSdp } from 'sdp-transform';
import t from 'tap';
import { parseMultipart } from '../../src/siprec/multipart-body.js';
import { channelsOf, parseRecordingMetadata } from '../../src/siprec/recording-metadata.js';
import { ROOT } from '../harness/recorder-harness.js';
import { thrown } from '../harness/thrown.js';

/** A fixture: its first line is the Content-Type, the rest the body (CRLF line ends unless the name says lf). */
function fixture(name: string): { contentType: string; body: string } {
  const text = readFileSync(join(ROOT, 'test/fixtures/siprec', name), 'utf8');
  const nl = text.indexOf('\n');
  const body = text.slice(nl + 1);
  return { contentType: text.slice(0, nl), body: name.includes('-lf') ? body : body.replace(/\r?\n/g, '\r\n') };
}

const vendors: [string, { callerAor: string; calleeAor: string; slots: number[]; extension?: RegExp; parts: number }][] = [
  ['oracle-sbc.txt', { callerAor: 'sip:+14085550101@carrier.example.net', calleeAor: 'sip:7001@cc.example.com', slots: [0, 1], parts: 2 }],
  ['avaya-sbce.txt', { callerAor: 'sip:2125550147@pstn.example.org', calleeAor: 'sip:40021@avaya.example.com', slots: [1, 0], extension: /^session\.ucid=00001040231701403551$/m, parts: 2 }],
  ['cisco-cube.txt', { callerAor: 'sip:4085550199@203.0.113.5', calleeAor: 'sip:8005550123@203.0.113.9', slots: [0, 1], extension: /^session\.callData\.gcid=AB12CD3400EF0001$/m, parts: 2 }],
  ['audiocodes-lf.txt', { callerAor: 'sip:+441632960500@gw.example.co.uk', calleeAor: 'sip:2001@pbx.example.co.uk', slots: [0, 1], extension: /^AudiocodesSessionInfo\.ACSessionID=af81c2d3e4$/m, parts: 2 }],
  ['ribbon-sbc.txt', { callerAor: 'sip:+33123456789@ribbon.example.fr', calleeAor: 'sip:+33987654321@ribbon.example.fr', slots: [1, 0], extension: /^callInfo\.gcid=0x00af12bc$/m, parts: 3 }],
];

for (const [name, want] of vendors) {
  t.test(`${name}: parts, participants, channels by metadata`, async (t) => {
    const f = fixture(name);
    const parts = parseMultipart(f.contentType, f.body);
    t.equal(parts.length, want.parts, `${want.parts} parts (an extra one is kept, and ignored by type)`);
    const sdp = parts.find((p) => p.type === 'application/sdp');
    const meta = parts.find((p) => p.type === 'application/rs-metadata+xml');
    t.ok(sdp && meta, 'an SDP part and a metadata part');
    const media = parseSdp(sdp?.content ?? '').media;
    t.equal(media.length, 2, 'two m-lines');
    t.ok(media.every((m) => m.direction === 'sendonly'), 'both sendonly');
    const md = parseRecordingMetadata(meta?.content ?? '');
    t.same(md.participants.map((p) => p.aor), [want.callerAor, want.calleeAor], 'participants by their AoR, in order');
    t.equal(md.streams.length, 2, 'two streams');
    const labels = media.map((m) => (m as { label?: string | number }).label?.toString() ?? null);
    t.same(channelsOf(md, labels), want.slots, `m-lines ${labels.join(', ')} → slots ${want.slots.join(', ')}: the caller left`);
    if (want.extension) t.match(Object.entries(md.extensions).map(([k, v]) => `${k}=${v}`).join('\n'), want.extension, 'the vendor extension is kept');
  });
}

t.test('part content kept whole: blank lines inside a part, CRLF or LF, any header case', async (t) => {
  const body = 'preamble\r\n--b1\r\ncontent-TYPE: text/xml\r\n\r\n<a>\r\n\r\n<b/></a>\r\n--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b1--\r\n';
  const parts = parseMultipart('multipart/mixed; BOUNDARY="b1"; charset=utf-8', body);
  t.same(parts.map((p) => [p.type, p.content]), [['text/xml', '<a>\r\n\r\n<b/></a>'], ['application/sdp', 'v=0\r\n']]);
  t.same(parseMultipart('multipart/mixed;boundary=b1', body.replace(/\r\n/g, '\n')).map((p) => p.content), ['<a>\n\n<b/></a>', 'v=0\n'], 'bare LF');
});

t.test('no metadata (Cisco NBR style: plain SDP, two sendonly m-lines): channels by m-line order', async (t) => {
  t.same(channelsOf(null, [null, null]), [0, 1]);
  t.same(channelsOf({ sessionId: null, participants: [], streams: [], extensions: {} }, ['1', '2']), [0, 1], 'metadata with no participants: by order');
});

t.test('broken bodies get a clear error (400), never a crash', async (t) => {
  const e = (ct: string, body: string): unknown => thrown(() => parseMultipart(ct, body));
  t.match(e('multipart/mixed', '--x\r\n\r\nx\r\n--x--'), { name: 'MultipartError', sipStatus: 400, message: /without a boundary parameter/ });
  t.match(e('multipart/mixed;boundary=zz', '--x\r\n\r\nx\r\n--x--'), { message: /no multipart boundary "zz"/ });
  t.match(e('multipart/mixed;boundary=x', '--x\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n'), { message: /ends without its closing boundary/ });
  t.match(e('application/sdp', 'v=0'), { message: /is not multipart/ });
  t.match(thrown(() => parseRecordingMetadata('<recording><participant>')), { name: 'MultipartError', message: /not XML/ });
  t.match(thrown(() => parseRecordingMetadata('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "b">]><recording/>')), { message: /DOCTYPE or ENTITY/ });
  t.match(thrown(() => parseRecordingMetadata('<other xmlns="x"/>')), { message: /no <recording> element/ });
});
