/**
 * Signaling faults seen against a real drachtio-server, each reproduced here: requests right behind the ACK (the
 * simulator writes the 200's echo, the ACK and what follows in one read, as a busy connection delivers them), a 3PCC
 * answer that changes the codec, an unusable answer in the ACK, oversized bodies, XXE, a bare-LF INVITE and a frame
 * drachtio-srf cannot read. After each, the recorder is up and answering.
 */
import t from 'tap';
import { createSocket } from 'node:dgram';
import { buildRtp } from '../../src/media/rtp-packet.js';
import { parsePromText } from '../harness/prom-text.js';
import { startApp, startSim } from '../harness/recorder-harness.js';
import { PCMU_OFFER, SipUac } from '../harness/sip-uac.js';
import { sleep, until } from '../harness/until.js';

const sim = await startSim();
const app = await startApp(sim, { MSMLREC_SIP_MAX_BODY_BYTES: '65536' });
t.teardown(async () => {
  await app.stop();
  await sim.stop();
});
const server = `127.0.0.1:${sim.sipPort}`;
const ruri = (conf: string): string => `sip:msml=${conf}@${server};dn=8463376;record;tenant-dbid=1;media-service=record`;
const sdpType = { 'content-type': 'application/sdp' };
const msmlType = { 'content-type': 'application/vnd.radisys.msml+xml' };
const metric = async (name: string): Promise<number> => parsePromText((await app.ops('/metrics')).body).get(name) ?? 0;
const uac = await new SipUac(server).start();
t.teardown(() => uac.stop());
const context = (): string => app.logs.slice(-12).join('\n');

/**
 * A SIP request as text, the way drachtio-server hands a message over (for what the UAC's stack cannot send: a body
 * too big for UDP, bare-LF line ends). `eol` joins the lines.
 */
function rawRequest(o: { method: string; uri: string; transport: 'TCP' | 'UDP'; branch: string; fromTag: string; toTag?: string; callId: string; cseq: number; contentType: string; body: string; eol?: string }): string {
  return [
    `${o.method} ${o.uri} SIP/2.0`,
    `Via: SIP/2.0/${o.transport} 127.0.0.1:${uac.port};branch=${o.branch}`,
    `From: <sip:test@127.0.0.1:${uac.port}>;tag=${o.fromTag}`,
    `To: <sip:${server}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: ${o.callId}`,
    `CSeq: ${o.cseq} ${o.method}`,
    `Contact: <sip:test@127.0.0.1:${uac.port}>`,
    `Content-Type: ${o.contentType}`,
    `Content-Length: ${o.body.length}`,
    '',
    o.body,
  ].join(o.eol ?? '\r\n');
}

const offer = (port: number, pts: number[]): string =>
  `v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP ${pts.join(' ')}\r\n` +
  pts.map((p) => `a=rtpmap:${p} ${p === 0 ? 'PCMU' : 'PCMA'}/8000\r\n`).join('') +
  'a=sendrecv\r\n';

t.test('a BYE right behind the ACK ends the leg and frees its port', async (t) => {
  sim.batchMs = 40;
  t.teardown(() => (sim.batchMs = 0));
  const n = 6;
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const rs = await uac.request('INVITE', ruri(`byefast${i}`), {
        headers: sdpType,
        body: PCMU_OFFER,
        afterAck: (r) => void uac.request('BYE', '', { dialog: uac.dialogOf(r) }),
      });
      t.equal(rs.status, 200, `call ${i} answered`);
    }),
  );
  await until('every leg ended', async () => (await metric('msmlrec_legs_active')) === 0 && (await metric('msmlrec_calls_active')) === 0, 10_000, context);
  t.equal(await metric('msmlrec_rtp_ports_in_use'), 0, 'no RTP port held');
});

t.test('a re-INVITE right behind the ACK is answered for its own offer', async (t) => {
  sim.batchMs = 40;
  t.teardown(() => (sim.batchMs = 0));
  let reinvite: Promise<import('sip').SipMessage> | null = null;
  const rs = await uac.request('INVITE', ruri('reinvfast'), {
    headers: sdpType,
    body: offer(40010, [0]),
    afterAck: (r) => (reinvite = uac.request('INVITE', '', { dialog: uac.dialogOf(r), headers: sdpType, body: offer(40012, [8]) })),
  });
  t.equal(rs.status, 200);
  const re = await (reinvite as unknown as Promise<import('sip').SipMessage>);
  t.equal(re.status, 200, 're-INVITE answered');
  t.match(re.content, /m=audio \d+ RTP\/AVP 8\b/, 'the answer is PCMA, for the re-INVITE’s offer (not the old PCMU SDP)');
  t.equal((await uac.request('BYE', '', { dialog: uac.dialogOf(rs) })).status, 200);
});

t.test('3PCC: the answer in the re-INVITE’s ACK is used, even right behind the first ACK and with another codec', async (t) => {
  sim.batchMs = 40;
  t.teardown(() => (sim.batchMs = 0));
  const rtp = createSocket('udp4');
  await new Promise<void>((r) => rtp.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => rtp.close());
  const rtpPort = rtp.address().port;
  let reinvite: Promise<import('sip').SipMessage> | null = null;
  const rs = await uac.request('INVITE', ruri('ackcodec'), {
    headers: sdpType,
    body: offer(rtpPort, [0]),
    // the offer-less re-INVITE follows the first ACK at once; its 200 carries our offer, its ACK our answer: PCMA
    afterAck: (r) => (reinvite = uac.request('INVITE', '', { dialog: uac.dialogOf(r), ackBody: offer(rtpPort, [8]) })),
  });
  t.equal(rs.status, 200);
  const re = await (reinvite as unknown as Promise<import('sip').SipMessage>);
  t.equal(re.status, 200, 'offer-less re-INVITE answered');
  t.match(re.content, /m=audio \d+ RTP\/AVP 0 8/, '... with our offer (PCMU, PCMA)');
  const port = Number(/m=audio (\d+)/.exec(re.content ?? '')?.[1]);
  await sleep(100);
  const before = await metric('msmlrec_rtp_packets_total');
  for (let k = 0; k < 10; k++) {
    rtp.send(buildRtp({ payloadType: 8, marker: k === 0, sequence: k, timestamp: k * 160, ssrc: 77, payload: new Uint8Array(160).fill(0xd5) }), port, '127.0.0.1');
  }
  await until('PCMA packets taken as audio', async () => (await metric('msmlrec_rtp_packets_total')) - before >= 10, 5000, context);
  t.notOk(app.logs.some((l) => l.includes('ACK carried no SDP')), 'the first ACK was not taken as the answer');
  t.equal((await uac.request('BYE', '', { dialog: uac.dialogOf(rs) })).status, 200);
});

t.test('an unusable answer in the ACK: the leg is ended with a BYE', async (t) => {
  const g729 = 'v=0\r\no=- 3 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40020 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n';
  const before = uac.received.filter((r) => r.method === 'BYE').length;
  const rs = await uac.request('INVITE', ruri('badack'), { ackBody: g729 });
  t.equal(rs.status, 200, 'offer-less INVITE answered with our offer');
  await until('the recorder sent BYE', () => uac.received.filter((r) => r.method === 'BYE').length > before, 5000, context);
  await until('the leg is gone', async () => (await metric('msmlrec_legs_active')) === 0, 5000, context);
});

t.test('oversized and hostile bodies get bounded answers', async (t) => {
  const rs = await uac.request('INVITE', ruri('bodies'), { headers: sdpType, body: PCMU_OFFER });
  t.equal(rs.status, 200);
  const dialog = uac.dialogOf(rs);
  // 60 kB of unknown elements (under the limit): MSML 402 whose description is bounded
  const unknown = `<msml version="1.1">${'<foo/>'.repeat(10_000)}</msml>`;
  const r1 = await uac.request('INFO', '', { dialog, headers: msmlType, body: unknown });
  t.equal(r1.status, 200);
  t.match(r1.content, /response="402"/, 'unknown elements: 402');
  t.match(r1.content, /and 9990 more/, 'the list is cut, with a count');
  const len = (r1.content ?? '').length;
  t.ok(len > 0 && len < 2000, `answer of ${len} bytes for a ${unknown.length}-byte request`);
  const xxe = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><msml version="1.1"><send target="conf:x" event="&e;"/></msml>';
  const r2 = await uac.request('INFO', '', { dialog, headers: msmlType, body: xxe });
  t.match(r2.content, /response="400"/, 'DOCTYPE/ENTITY: MSML 400');
  t.notMatch(r2.content, /root:/, 'no file content');
  // a body over sip.maxBodyBytes, in the dialog (TCP-sized: injected as drachtio-server would hand it over)
  const dlgId = `${dialog.callId};from-tag=${dialog.fromTag}`;
  const big = `<msml version="1.1">${'<foo/>'.repeat(95_000)}</msml>`;
  const info = rawRequest({ method: 'INFO', uri: dialog.target, transport: 'TCP', branch: 'z9hG4bK-big1', fromTag: dialog.fromTag, toTag: dialog.toTag, callId: dialog.callId, cseq: 900, contentType: 'application/vnd.radisys.msml+xml', body: big });
  const txn = sim.injectRequest(info, { protocol: 'TCP', address: '127.0.0.1', port: uac.port }, dlgId);
  await until('the big INFO answered', () => sim.answerTo(txn) !== null, 10_000, context);
  t.match(sim.answerTo(txn) ?? '', /^SIP\/2\.0 413/, `a ${big.length}-byte INFO: 413 before parsing`);
  t.equal((await uac.request('BYE', '', { dialog })).status, 200, 'the call still ends normally');
});

t.test('a 250 kB INVITE among 15 in flight: 413 for it, 200 for the others', async (t) => {
  const calls = Array.from({ length: 15 }, (_, i) => uac.request('INVITE', ruri(`flight${i}`), { headers: sdpType, body: PCMU_OFFER }));
  const huge = PCMU_OFFER + `a=x-pad:${'x'.repeat(250_000)}\r\n`;
  const invite = rawRequest({ method: 'INVITE', uri: ruri('huge'), transport: 'TCP', branch: 'z9hG4bK-huge1', fromTag: 'hugetag', callId: 'huge-invite-1', cseq: 1, contentType: 'application/sdp', body: huge });
  const txn = sim.injectRequest(invite, { protocol: 'TCP', address: '127.0.0.1', port: uac.port });
  const answers = await Promise.all(calls);
  t.same(answers.map((a) => a.status), Array(15).fill(200), 'the 15 calls answered 200');
  await until('the huge INVITE answered', () => sim.answerTo(txn) !== null, 10_000, context);
  t.match(sim.answerTo(txn) ?? '', /^SIP\/2\.0 413/, '250 kB INVITE: 413');
  await Promise.all(answers.map((a) => uac.request('BYE', '', { dialog: uac.dialogOf(a) })));
  await until('all calls ended', async () => (await metric('msmlrec_calls_active')) === 0, 10_000, context);
});

t.test('an INVITE with bare-LF line ends is answered', async (t) => {
  const lf = rawRequest({ method: 'INVITE', uri: ruri('barelf'), transport: 'UDP', branch: 'z9hG4bK-lf1', fromTag: 'lftag', callId: 'bare-lf-1', cseq: 1, contentType: 'application/sdp', body: PCMU_OFFER, eol: '\n' });
  const txn = sim.injectRequest(lf, { protocol: 'UDP', address: '127.0.0.1', port: uac.port });
  await until('the bare-LF INVITE answered', () => sim.answerTo(txn) !== null, 5000, context);
  t.match(sim.answerTo(txn) ?? '', /^SIP\/2\.0 200/, 'answered 200 (header lines read with LF ends)');
});

t.test('a frame drachtio-srf cannot read is skipped; the connection, live calls and new calls go on', async (t) => {
  const live = await uac.request('INVITE', ruri('wirefault'), { headers: sdpType, body: PCMU_OFFER });
  t.equal(live.status, 200);
  const faults = await metric('msmlrec_drachtio_wire_faults_total');
  sim.writeRaw('not-a-length#garbage that is no frame at all');
  await until('the fault counted', async () => (await metric('msmlrec_drachtio_wire_faults_total')) === faults + 1, 5000, context);
  t.equal(app.proc.exitCode, null, 'the recorder is running');
  const again = await uac.request('INFO', '', { dialog: uac.dialogOf(live), headers: msmlType, body: '<msml version="1.1"><send target="x" event="pause"/></msml>' });
  t.match(again.content, /response="405"/, 'the live dialog still answers MSML over the same connection');
  const next = await uac.request('INVITE', ruri('wirefault2'), { headers: sdpType, body: PCMU_OFFER });
  t.equal(next.status, 200, 'a new call is answered');
  for (const d of [live, next]) await uac.request('BYE', '', { dialog: uac.dialogOf(d) });
  t.equal(sim.connectedApps, 1, 'no reconnect was needed');
});
