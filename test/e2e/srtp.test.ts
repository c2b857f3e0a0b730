/**
 * SRTP (RTP/SAVP with SDES keys, RFC 4568) end to end, with ffmpeg's `srtp://` output as the SRTP party (a peer we
 * did not write) and werift-rtp's SRTP (another implementation) reading what the recorder sends: a 3PCC call whose
 * SRTP leg is relayed to a plain-RTP leg and back, and a SIPREC session whose two streams are SRTP.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import t from 'tap';
import { ProtectionProfileAes128CmHmacSha1_80, SrtpSession } from 'werift-rtp';
import { decodeG711 } from '../../src/media/g711.js';
import { parseRtp, type RtpPacket } from '../../src/media/rtp-packet.js';
import { decode, medianToneShare, toneShare } from '../harness/audio.js';
import { startCapture } from '../harness/capture.js';
import { startApp, startSim } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { SipUac } from '../harness/sip-uac.js';
import { multipart, siprecMetadata, siprecSdp } from '../harness/siprec-body.js';
import { freeUdpPort } from '../harness/free-port.js';
import { sleep, until } from '../harness/until.js';

const sim = await startSim();
const app = await startApp(sim, {});
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
t.teardown(async () => {
  uac.stop();
  await app.stop();
  await sim.stop();
});

const SUITE = 'AES_CM_128_HMAC_SHA1_80';
const newKey = (): string => randomBytes(30).toString('base64');


/** ffmpeg sends `freq` Hz as SRTP (PCMU, 20 ms packets) from `fromPort` to `toPort` under `key`, in real time. */
function ffmpegSrtp(fromPort: number, toPort: number, freq: number, seconds: number, key: string): Promise<number | null> {
  const p = spawn(
    'ffmpeg',
    ['-v', 'error', '-re', '-f', 'lavfi', '-i', `sine=frequency=${freq}:sample_rate=8000:duration=${seconds}`, '-c:a', 'pcm_mulaw', '-ar', '8000', '-ac', '1', '-f', 'rtp',
      '-srtp_out_suite', SUITE, '-srtp_out_params', key, `srtp://127.0.0.1:${toPort}?pkt_size=186&localrtpport=${fromPort}`],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return new Promise((resolve) => p.on('exit', (code) => resolve(code)));
}

const cryptoOf = (sdp: string): { tag: number; suite: string; key: string }[] =>
  [...sdp.matchAll(/a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)/g)].map((m) => ({ tag: Number(m[1]), suite: m[2], key: m[3] }));

/** The PCM of G.711 RTP packets, in arrival order. */
function pcmOf(packets: RtpPacket[]): Int16Array {
  const out = new Int16Array(packets.reduce((n, p) => n + p.payload.length, 0));
  let at = 0;
  for (const p of packets) at += decodeG711(p.payloadType === 8 ? 'PCMA' : 'PCMU', p.payload, out.subarray(at), p.payload.length);
  return out;
}

/** werift-rtp's SRTP reading what was sent under `key`. */
function weriftReader(key: string): (srtp: Buffer) => Buffer | null {
  const k = Buffer.from(key, 'base64');
  const keys = { localMasterKey: k.subarray(0, 16), localMasterSalt: k.subarray(16), remoteMasterKey: k.subarray(0, 16), remoteMasterSalt: k.subarray(16) };
  const session = new SrtpSession({ keys, profile: ProtectionProfileAes128CmHmacSha1_80 });
  return (srtp) => {
    try {
      return Buffer.from(session.decrypt(srtp));
    } catch {
      return null;
    }
  };
}

/** The spooled recording whose media id starts with `id` (the conf-id, or the SIPREC session id). */
async function spooledFor(id: string): Promise<{ mp3: string }> {
  const find = (): { mp3: string } | undefined =>
    app.logs.map((l) => JSON.parse(l) as { msg?: string; mp3?: string }).find((o) => o.msg === 'recording spooled' && o.mp3?.includes(`/${id}_`)) as { mp3: string } | undefined;
  await until(`${id} spooled`, () => find() !== undefined, 30_000);
  return find() as { mp3: string };
}

const metric = async (name: string): Promise<number> => Number(new RegExp(`^${name} (\\d+)`, 'm').exec((await app.ops('/metrics')).body)?.[1] ?? 0);

t.test('3PCC: an SRTP leg (ffmpeg) relayed to a plain-RTP leg and back, recorded, each party hearing the other', async (t) => {
  const conf = 'srtp3pcc000001';
  const ruri = (dn: string): string => `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=${dn};record;tenant-dbid=1;media-service=record;gvp-tenant-id=T.P`;
  const ffPort = await freeUdpPort();
  const keyA = newKey();
  const b = await RtpSender.open();
  t.teardown(() => b.close());
  const atB: RtpPacket[] = [];
  b.socket.on('message', (m) => {
    const p = parseRtp(m);
    if (typeof p !== 'string') atB.push({ ...p, payload: Buffer.from(p.payload) });
  });
  const offerA = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${ffPort} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:7 ${SUITE} inline:${keyA}\r\n`;
  const ra = await uac.request('INVITE', ruri('7001'), { headers: { 'content-type': 'application/sdp' }, body: offerA });
  t.equal(ra.status, 200, 'the SRTP offer is taken');
  const answerA = String(ra.content);
  t.match(answerA, /m=audio \d+ RTP\/SAVP 0/, 'answered RTP/SAVP');
  const [crypto] = cryptoOf(answerA);
  t.match(crypto, { tag: 7, suite: SUITE }, 'under the offer\'s tag and suite');
  t.not(crypto.key, keyA, 'with a key of our own');
  const portA = Number(/m=audio (\d+)/.exec(answerA)?.[1]);
  const rb = await uac.request('INVITE', ruri('7002'), { headers: { 'content-type': 'application/sdp' }, body: `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${b.port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n` });
  t.equal(rb.status, 200);
  t.match(String(rb.content), /RTP\/AVP/, 'the plain leg stays plain');
  const portB = Number(/m=audio (\d+)/.exec(String(rb.content))?.[1]);
  const toA = await startCapture(`udp and src port ${portA} and dst port ${ffPort}`);
  const talk = Promise.all([ffmpegSrtp(ffPort, portA, 500, 5, keyA), b.play(portB, { law: 'PCMU', freq: 1100, seconds: 5, ssrc: 0xb0b })]);
  await sleep(700);
  const info = (body: string): Promise<unknown> => uac.request('INFO', '', { dialog: uac.dialogOf(ra), headers: { 'content-type': 'application/vnd.radisys.msml+xml' }, body: `<msml version="1.1">${body}</msml>` });
  await info(`<dialogstart target="conf:${conf}" name="rec"><record format="audio/mp3"/></dialogstart>`);
  await sleep(3500);
  await info(`<dialogend id="conf:${conf}/dialog:rec"/>`);
  const [ffExit] = await talk;
  t.equal(ffExit, 0, 'ffmpeg sent its SRTP');
  const sent = await toA.stop();
  // a forged packet (an RTP header and garbage) on the SRTP leg: refused, counted
  const forged = Buffer.concat([Buffer.from([0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9]), randomBytes(170)]);
  b.socket.send(forged, portA, '127.0.0.1');
  await until('the forged packet counted', async () => (await metric('msmlrec_srtp_auth_failed_total')) >= 1, 10_000);
  for (const d of [ra, rb]) await uac.request('BYE', '', { dialog: uac.dialogOf(d) });
  const rec = await spooledFor(conf);
  const [left, right] = decode(rec.mp3).channels;
  const secs = left.length / 8000;
  t.ok(medianToneShare(left, 500, 0.3, secs - 0.3) > 0.5, 'the SRTP party (500 Hz, decrypted) on the left');
  t.ok(medianToneShare(right, 1100, 0.3, secs - 0.3) > 0.5, 'the plain party (1100 Hz) on the right');
  t.ok(atB.length > 150, `the plain party got the SRTP party's audio relayed in the clear (${atB.length} packets)`);
  t.ok(toneShare(pcmOf(atB.slice(10)), 500) > 0.5, '... and it is the 500 Hz tone');
  const read = weriftReader(crypto.key);
  const decrypted = sent.map((c) => read(c.payload)).filter((x): x is Buffer => x !== null);
  t.ok(sent.length > 150, `the SRTP party was sent SRTP (${sent.length} packets)`);
  t.equal(decrypted.length, sent.length, 'every one authenticates under the key of our answer (werift-rtp)');
  t.ok(toneShare(pcmOf(decrypted.slice(10).map((d) => parseRtp(d) as RtpPacket)), 1100) > 0.5, '... and decrypts to the plain party\'s 1100 Hz');
  t.ok(sent.every((c) => c.payload.length === 12 + 160 + 10), 'RTP header, 160 bytes of encrypted audio, an 80-bit tag');
});

t.test('SIPREC: two SRTP streams (RTP/SAVP, a key each) recorded by participant', async (t) => {
  const session = 'c3J0cC1zaXByZWMx';
  const [p1, p2] = [await freeUdpPort(), await freeUdpPort()];
  const [k1, k2] = [newKey(), newKey()];
  const sdp = siprecSdp([{ port: p1, label: '1' }, { port: p2, label: '2' }])
    .replace(/RTP\/AVP/g, 'RTP/SAVP')
    .replace('a=label:1\r\n', `a=label:1\r\na=crypto:1 ${SUITE} inline:${k1}\r\n`)
    .replace('a=label:2\r\n', `a=label:2\r\na=crypto:1 ${SUITE} inline:${k2}\r\n`);
  const meta = siprecMetadata(session, [{ id: 'a', aor: 'sip:+15550001@example.com', sends: ['1'] }, { id: 'b', aor: 'sip:+15550002@example.com', sends: ['2'] }]);
  const offer = multipart([{ type: 'application/sdp', content: sdp }, { type: 'application/rs-metadata+xml', content: meta, disposition: 'recording-session' }]);
  const inv = await uac.request('INVITE', `sip:srs@127.0.0.1:${sim.sipPort}`, { headers: { 'content-type': offer.contentType, require: 'siprec' }, body: offer.body });
  t.equal(inv.status, 200, 'INVITE 200');
  const answer = String(inv.content);
  t.equal((answer.match(/RTP\/SAVP/g) ?? []).length, 2, 'both streams answered RTP/SAVP');
  t.equal(cryptoOf(answer).length, 2, 'each with a key of ours');
  const ports = [...answer.matchAll(/m=audio (\d+)/g)].map((m) => Number(m[1]));
  const codes = await Promise.all([ffmpegSrtp(p1, ports[0], 500, 3, k1), ffmpegSrtp(p2, ports[1], 1100, 3, k2)]);
  t.same(codes, [0, 0], 'ffmpeg sent both streams');
  t.equal((await uac.request('BYE', '', { dialog: uac.dialogOf(inv) })).status, 200);
  const rec = await spooledFor(session);
  const [left, right] = decode(rec.mp3).channels;
  const secs = left.length / 8000;
  t.ok(medianToneShare(left, 500, 0.3, secs - 0.3) > 0.5, 'the first participant (500 Hz, decrypted) on the left');
  t.ok(medianToneShare(right, 1100, 0.3, secs - 0.3) > 0.5, 'the second (1100 Hz) on the right');
});

t.test('SIPREC: an SRC that moves a stream to a new port with a new key mid-call keeps one file, both halves decrypted', async (t) => {
  const session = 'cmVrZXktc2lwcmVj';
  const [p1, p1b, p2] = [await freeUdpPort(), await freeUdpPort(), await freeUdpPort()];
  const [k1, k1b, k2] = [newKey(), newKey(), newKey()];
  const offer = (port1: number, key1: string, version: number): { contentType: string; body: string } => {
    const sdp = siprecSdp([{ port: port1, label: '1' }, { port: p2, label: '2' }], version)
      .replace(/RTP\/AVP/g, 'RTP/SAVP')
      .replace('a=label:1\r\n', `a=label:1\r\na=crypto:1 ${SUITE} inline:${key1}\r\n`)
      .replace('a=label:2\r\n', `a=label:2\r\na=crypto:1 ${SUITE} inline:${k2}\r\n`);
    const meta = siprecMetadata(session, [{ id: 'a', aor: 'sip:+15550001@example.com', sends: ['1'] }, { id: 'b', aor: 'sip:+15550002@example.com', sends: ['2'] }]);
    return multipart([{ type: 'application/sdp', content: sdp }, { type: 'application/rs-metadata+xml', content: meta, disposition: 'recording-session' }]);
  };
  const first = offer(p1, k1, 1);
  const inv = await uac.request('INVITE', `sip:srs@127.0.0.1:${sim.sipPort}`, { headers: { 'content-type': first.contentType, require: 'siprec' }, body: first.body });
  t.equal(inv.status, 200, 'INVITE 200');
  const ports = [...String(inv.content).matchAll(/m=audio (\d+)/g)].map((m) => Number(m[1]));
  const failedBefore = await metric('msmlrec_srtp_auth_failed_total');
  const other = ffmpegSrtp(p2, ports[1], 1100, 5, k2);
  t.equal(await ffmpegSrtp(p1, ports[0], 500, 2, k1), 0, 'the first half, under the first key');
  const second = offer(p1b, k1b, 2);
  const re = await uac.request('INVITE', '', { dialog: uac.dialogOf(inv), headers: { 'content-type': second.contentType }, body: second.body });
  t.equal(re.status, 200, 're-INVITE with a new port and key: 200');
  t.equal([...String(re.content).matchAll(/m=audio (\d+)/g)].map((m) => Number(m[1]))[0], ports[0], 'the stream keeps its port at the recorder');
  t.equal(await ffmpegSrtp(p1b, ports[0], 500, 2, k1b), 0, 'the second half, from the new port under the new key');
  await other;
  t.equal((await uac.request('BYE', '', { dialog: uac.dialogOf(inv) })).status, 200);
  const rec = await spooledFor(session);
  await sleep(500);
  t.equal(readdirSync(app.spoolDir).filter((f) => f.startsWith(`${session}_`) && f.endsWith('.mp3')).length, 1, 'one recording of the session in the spool');
  const [left, right] = decode(rec.mp3).channels;
  const secs = left.length / 8000;
  t.ok(medianToneShare(left, 500, 0.3, 1.7) > 0.5, 'the first half of the moved stream (first key) on the left');
  t.ok(medianToneShare(left, 500, 2.6, 3.8) > 0.5, 'the second half (new port, new key) on the left');
  t.ok(medianToneShare(right, 1100, 0.3, secs - 0.3) > 0.5, 'the other stream throughout on the right');
  t.ok((await metric('msmlrec_srtp_auth_failed_total')) - failedBefore < 5, 'no packet refused for the change of key');
});

t.test('an SRTP offer we cannot serve (an MKI): 488 with a Warning naming why', async (t) => {
  const key = newKey();
  const r = await uac.request('INVITE', `sip:msml=srtp488000001@127.0.0.1:${sim.sipPort};dn=7001;record`, {
    headers: { 'content-type': 'application/sdp' },
    body: `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:1 ${SUITE} inline:${key}|2^20|1:4\r\n`,
  });
  t.equal(r.status, 488);
  t.match(String(r.headers?.warning ?? ''), /MKI is not supported/);
});
