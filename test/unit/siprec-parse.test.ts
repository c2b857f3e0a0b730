/**
 * SIPREC bodies (RFC 7865 / 7866) as SRCs send them, written from the RFCs and public vendor documentation (facts,
 * not text): a multipart/mixed INVITE body of SDP + recording metadata per vendor, parsed over the raw body, and the
 * channel of each m-line decided by who sends its labelled stream — whatever the m-line order.
 */
import { parse as parseSdp } from 'sdp-transform';
import t from 'tap';
import { parseMultipart } from '../../src/siprec/multipart-body.js';
import { channelsByOrder, channelsOf, parseRecordingMetadata } from '../../src/siprec/recording-metadata.js';
import { metadataUpdate, siprecChannels } from '../../src/siprec/siprec-channels.js';
import { isSiprecInvite, readSiprecBody } from '../../src/siprec/siprec-request.js';
import { negotiate } from '../../src/sip/sdp-answer.js';
import { isMsmlUri, requestUriUser, siprecRecordingUri } from '../../src/sip/request-uri.js';
import { buildRecordingResource } from '../../src/jobs/recording-resource.js';
import type { Sidecar } from '../../src/recording/metadata.js';
import { siprecFixture } from '../harness/siprec-body.js';
import { thrown } from '../harness/thrown.js';

const fixture = siprecFixture;

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

    // as the SIP app reads it: a SIPREC INVITE, its SDP and metadata, negotiated streams and their channels
    t.ok(isSiprecInvite({ contentType: f.contentType, require: '', contact: '' }, f.body, false), 'taken as SIPREC by its metadata part alone');
    const body = readSiprecBody(f.contentType, f.body);
    const streams = negotiate(body.sdp ?? '', ['PCMU', 'PCMA']).map((n) => ({ mline: n.mline, label: n.label }));
    const ch = siprecChannels(body.metadata, body.metadataXml, streams, 'caller', 'call-1');
    t.same(ch.slots, want.slots, 'the same channels from the negotiated m-lines');
    t.equal(ch.info.channelsBy, 'metadata');
    t.same(ch.info.participants.map((p) => [p.aor, p.slot]), [[want.callerAor, 0], [want.calleeAor, 1]], 'caller left, callee right');
    t.same(siprecChannels(body.metadata, body.metadataXml, streams, 'callee', 'call-1').slots, want.slots.map((x) => 1 - x), 'leftChannel callee: swapped');
  });
}

t.test('which INVITEs are SIPREC recording sessions', async (t) => {
  const two = (dir: string, dir2 = dir): string => `v=0\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=${dir}\r\nm=audio 4002 RTP/AVP 0\r\na=${dir2}\r\n`;
  const h = (over: Partial<{ contentType: string; require: string; contact: string }> = {}) => ({ contentType: 'application/sdp', require: '', contact: '<sip:a@b>', ...over });
  t.ok(isSiprecInvite(h(), two('sendonly'), false), 'plain SDP, two sendonly m-lines, no metadata (Cisco NBR): yes');
  t.notOk(isSiprecInvite(h(), two('sendonly'), true), '... but not on an MSML Request-URI (a recording fork of SIP Server)');
  t.notOk(isSiprecInvite(h(), two('sendonly', 'sendrecv'), false), 'one m-line sendrecv: no');
  t.notOk(isSiprecInvite(h(), 'v=0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n', false), 'a single sendonly m-line: no');
  t.ok(isSiprecInvite(h(), `v=0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0\r\n`, false), 'session-level sendonly counts');
  t.ok(isSiprecInvite(h({ require: 'timer, siprec' }), two('sendrecv'), true), 'Require: siprec: yes');
  t.ok(isSiprecInvite(h({ contact: '<sip:src@10.0.0.1>;+sip.src' }), '', true), 'Contact with +sip.src: yes');
  t.notOk(isSiprecInvite(h({ contentType: 'multipart/mixed;boundary=b' }), '--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b--\r\n', true), 'multipart without a metadata part: no');
  t.ok(isSiprecInvite(h({ contentType: 'multipart/mixed;boundary=b' }), '--b\r\nContent-Type: application/rs-metadata+xml\r\n\r\n<recording/>', true), 'a broken multipart with metadata in it: yes (it gets its 400)');
});

t.test('reading SIPREC bodies: SDP, metadata, either alone', async (t) => {
  const xml = '<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant participant_id="p"><nameID aor="sip:1@x"/></participant></recording>';
  t.same(readSiprecBody('application/sdp', 'v=0\r\n'), { sdp: 'v=0\r\n', metadata: null, metadataXml: null });
  t.equal(readSiprecBody('application/rs-metadata+xml', xml).metadata?.participants[0].aor, 'sip:1@x', 'metadata alone (an UPDATE)');
  t.same(readSiprecBody('', ''), { sdp: null, metadata: null, metadataXml: null }, 'no body');
  t.match(thrown(() => readSiprecBody('text/plain', 'hi')), { name: 'MultipartError', sipStatus: 400, message: /neither SDP nor SIPREC metadata/ });
  t.match(thrown(() => readSiprecBody('multipart/mixed;boundary=b', '--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--')), { message: /without an application\/sdp or application\/rs-metadata\+xml part/ });
});

t.test('channels: never two streams on one side; a metadata update keeps the channels', async (t) => {
  const meta = parseRecordingMetadata(
    '<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant participant_id="a"><nameID aor="sip:a@x"/></participant><participant participant_id="b"><nameID aor="sip:b@x"/></participant>' +
      '<stream stream_id="s1"><label>1</label></stream><stream stream_id="s2"><label>2</label></stream>' +
      '<participantstreamassoc participant_id="a"><send>s1</send><send>s2</send></participantstreamassoc></recording>',
  );
  const streams = [{ mline: 0, label: '1' }, { mline: 1, label: '2' }];
  const both = siprecChannels(meta, null, streams, 'caller', 'c');
  t.same([both.slots, both.info.channelsBy], [[0, 1], 'm-line order'], 'metadata putting both streams on the caller: by m-line order');
  const partial = siprecChannels(meta, null, [{ mline: 0, label: '1' }, { mline: 1, label: '9' }], 'caller', 'c');
  t.equal(partial.info.channelsBy, 'm-line order', 'a label the metadata does not know: by m-line order');
  const later = parseRecordingMetadata(
    '<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant participant_id="a"><nameID aor="sip:a@x"/></participant><participant participant_id="c"><nameID aor="sip:c@x"/></participant>' +
      '<stream stream_id="s1"><label>1</label></stream><stream stream_id="s2"><label>2</label></stream>' +
      '<participantstreamassoc participant_id="a"><send>s1</send></participantstreamassoc><participantstreamassoc participant_id="c"><send>s2</send></participantstreamassoc></recording>',
  );
  const upd = metadataUpdate(later, '<x/>', both.info.streams) as { participants: { aor: string; slot: number | null }[] };
  t.same(upd.participants.map((p) => [p.aor, p.slot]), [['sip:a@x', 0], ['sip:c@x', 1]], 'the new participant on the channel of the stream it sends now');
});

t.test('Request-URI: MSML or not, its user, a SIPREC recording\'s URI', async (t) => {
  t.ok(isMsmlUri('sip:msml=abc@10.0.0.1;dn=1'));
  t.ok(isMsmlUri('sip:msml@10.0.0.1'));
  t.notOk(isMsmlUri('sip:srs@10.0.0.1'));
  t.notOk(isMsmlUri('sip:10.0.0.1'));
  t.equal(requestUriUser('sip:Bank.Siprec@srs.example.com:5060;transport=tcp'), 'Bank.Siprec');
  t.equal(requestUriUser('sip:%ZZ@x'), null, 'a bad escape: none');
  t.match(siprecRecordingUri('sip:srs@10.0.0.5:5080', 'Bank.Siprec'), { confId: null, host: '10.0.0.5', port: 5080, tenant: 'Bank', ivrProfile: 'Siprec', mediaService: 'siprec' });
  t.match(siprecRecordingUri('sip:10.0.0.5', 'default'), { host: '10.0.0.5', tenant: null, ivrProfile: null });
});

/** The sidecar of a 10 s SIPREC recording with `info`. */
const sidecarOf = (info: ReturnType<typeof siprecChannels>['info']): Sidecar => ({
  schema: 1, id: info.sessionId ?? 'x', mediaId: 'm', confId: null, callUUID: null, dialogId: 'siprec:x', dn: null, tenant: null, ivrProfile: null, tenantDbid: null, uriParams: {},
  siprec: info,
  msml: { dest: null, format: null, maxtimeMs: null, attrs: {}, params: {} },
  startTime: '2026-12-01T10:00:00.000Z', stopTime: '2026-12-01T10:00:10.000Z', durationMs: 10000, endReason: 'record.terminate', truncated: false, error: null,
  audio: { type: 'audio/mp3', channels: 2, kbps: 16, sampleRate: 8000, leftChannel: 'other' },
  files: { mp3: { name: 'm.mp3', size: 1 } }, events: [], legs: [],
});

t.test('the metadata POST of a SIPREC recording names its participants and their channels', async (t) => {
  const f = fixture('oracle-sbc.txt');
  const body = readSiprecBody(f.contentType, f.body);
  const { info } = siprecChannels(body.metadata, body.metadataXml, [{ mline: 0, label: '1' }, { mline: 1, label: '2' }], 'caller', 'call-9');
  const s = sidecarOf(info);
  const r = buildRecordingResource(s, { mp3Uri: 'http://dav/m.mp3', wavUri: null }) as { id: string; callerPhoneNumber: string; dialedPhoneNumber: string; siprec: { participants: { aor: string; channel: string }[] }; mediaFiles: { parameters: Record<string, string> }[] };
  t.equal(r.id, info.sessionId, 'id: the SIPREC session id');
  t.same([r.callerPhoneNumber, r.dialedPhoneNumber], ['+14085550101', '7001'], 'caller and dialed numbers from the participants');
  t.same(r.siprec.participants.map((p) => [p.aor, p.channel]), [['sip:+14085550101@carrier.example.net', 'left'], ['sip:7001@cc.example.com', 'right']]);
  t.equal(r.mediaFiles[0].parameters.siprecSessionId, info.sessionId);
});

t.test('part content kept whole: blank lines inside a part, CRLF or LF, any header case', async (t) => {
  const body = 'preamble\r\n--b1\r\ncontent-TYPE: text/xml\r\n\r\n<a>\r\n\r\n<b/></a>\r\n--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b1--\r\n';
  const parts = parseMultipart('multipart/mixed; BOUNDARY="b1"; charset=utf-8', body);
  t.same(parts.map((p) => [p.type, p.content]), [['text/xml', '<a>\r\n\r\n<b/></a>'], ['application/sdp', 'v=0\r\n']]);
  t.same(parseMultipart('multipart/mixed;boundary=b1', body.replace(/\r\n/g, '\n')).map((p) => p.content), ['<a>\n\n<b/></a>', 'v=0\n'], 'bare LF');
});

t.test('no metadata (Cisco NBR style: plain SDP, two sendonly m-lines): channels by m-line order', async (t) => {
  t.same(channelsOf(null, [null, null]), [0, 1]);
  t.same(channelsOf({ sessionId: null, participants: [], streams: [], extensions: {} }, ['1', '2']), [0, 1], 'metadata with no participants: by order');
  t.same([0, 1, 2, 3].map(channelsByOrder), [[], [0], [0, 1], [0, 1, 1]], 'by order: the first m-line left, every other right');
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

/** RFC 7865 metadata of two participants, each with Acme-style vendor data of its own. */
const acmeMetadata = (prefix = ''): string => {
  const p = prefix ? `${prefix}:` : '';
  const ns = prefix ? `xmlns:${prefix}` : 'xmlns';
  return `<?xml version="1.0" encoding="UTF-8"?>
<${p}recording ${ns}="urn:ietf:params:xml:ns:recording:1" xmlns:apkt="http://acmepacket.com/siprec/extensiondata">
  <${p}datamode>complete</${p}datamode>
  <${p}session session_id="c2Vzc2lvbi1hY21l"><${p}sipSessionID>abc</${p}sipSessionID></${p}session>
  <${p}participant participant_id="cA==">
    <${p}nameID aor="sip:+14085550101@carrier.example.net"><${p}name>Caller</${p}name></${p}nameID>
    <${p}extensiondata><apkt:callingParty>true</apkt:callingParty></${p}extensiondata>
  </${p}participant>
  <${p}participant participant_id="cB==">
    <${p}nameID aor="sip:7001@cc.example.com"><${p}name>Agent</${p}name></${p}nameID>
    <${p}extensiondata><apkt:callingParty>false</apkt:callingParty></${p}extensiondata>
  </${p}participant>
  <${p}stream stream_id="c1==" session_id="c2Vzc2lvbi1hY21l"><${p}label>1</${p}label></${p}stream>
  <${p}stream stream_id="c2==" session_id="c2Vzc2lvbi1hY21l"><${p}label>2</${p}label></${p}stream>
  <${p}participantstreamassoc participant_id="cA=="><${p}send>c1==</${p}send></${p}participantstreamassoc>
  <${p}participantstreamassoc participant_id="cB=="><${p}send>c2==</${p}send></${p}participantstreamassoc>
</${p}recording>`;
};
const sdp2 = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=sendonly\r\na=label:1\r\nm=audio 6002 RTP/AVP 0\r\na=sendonly\r\na=label:2\r\n';
const multipart = (type: string, xml: string): { contentType: string; body: string } => ({
  contentType: 'multipart/mixed;boundary=unique-boundary-1',
  body: `--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\n${sdp2}\r\n--unique-boundary-1\r\nContent-Type: ${type}\r\nContent-Disposition: recording-session\r\n\r\n${xml}\r\n--unique-boundary-1--\r\n`,
});

t.test('metadata as SEMS-based and other SRCs type it: application/rs-metadata, or any XML part whose root is an RFC 7865 recording', async (t) => {
  for (const [type, xml] of [
    ['application/rs-metadata', acmeMetadata()],
    ['application/xml', acmeMetadata('rs')],
    ['text/xml', acmeMetadata()],
    ['application/vnd.vendor+xml', acmeMetadata('x')],
  ] as const) {
    const m = multipart(type, xml);
    t.ok(isSiprecInvite({ contentType: m.contentType, require: '', contact: '' }, m.body, false), `${type}: a SIPREC INVITE by its metadata part`);
    const body = readSiprecBody(m.contentType, m.body);
    t.same(body.metadata?.participants.map((p) => p.aor), ['sip:+14085550101@carrier.example.net', 'sip:7001@cc.example.com'], `${type}: its participants are read`);
  }
  const other = multipart('application/xml', '<?xml version="1.0"?><recording xmlns="urn:example:not-siprec"><x/></recording>');
  t.notOk(isSiprecInvite({ contentType: other.contentType, require: '', contact: '' }, other.body, false), 'an XML part of another namespace is not metadata');
  t.equal(readSiprecBody('application/rs-metadata', acmeMetadata()).metadata?.sessionId, 'c2Vzc2lvbi1hY21l', 'a lone pre-RFC metadata body (an UPDATE)');
});

t.test("each participant's vendor data stays with that participant, in the sidecar and the POST", async (t) => {
  const m = multipart('application/rs-metadata+xml', acmeMetadata());
  const body = readSiprecBody(m.contentType, m.body);
  t.same(body.metadata?.participants.map((p) => p.extensions['extensiondata.callingParty']), ['true', 'false'], 'parsed per participant');
  t.notOk(Object.keys(body.metadata?.extensions ?? {}).some((k) => k.includes('callingParty')), 'not folded into the session-wide extensions, where one overwrote the other');
  const { info } = siprecChannels(body.metadata, body.metadataXml, [{ mline: 0, label: '1' }, { mline: 1, label: '2' }], 'caller', 'call-acme');
  const s = sidecarOf(info);
  const r = buildRecordingResource(s, { mp3Uri: 'http://dav/m.mp3', wavUri: null }) as { siprec: { participants: { aor: string; extensions: Record<string, string> }[] }; mediaFiles: { parameters: Record<string, string> }[] };
  t.same(r.siprec.participants.map((p) => p.extensions['extensiondata.callingParty']), ['true', 'false'], 'the POST: each participant with its own');
  t.equal(r.mediaFiles[0].parameters['caller.extensiondata.callingParty'], 'true', "the caller's callingParty is the caller's");
  t.equal(r.mediaFiles[0].parameters['callee.extensiondata.callingParty'], 'false', "and the callee's the callee's");
});
