/**
 * SIPREC (RFC 7866) end to end: an SRC's INVITE (multipart SDP + RFC 7865 metadata, two sendonly m-lines) through the
 * drachtio simulator to the recorder, recorded from the INVITE to the BYE with no MSML, delivered to WebDAV with its
 * metadata POST. SIPp plays both parties from one pcap; the caller is left whatever the m-line order and whichever
 * RTP starts first. A re-INVITE moves one stream to a new port and codec (one file goes on), a=inactive pauses it, an
 * UPDATE brings new metadata into the sidecar's history. Broken bodies get 400 with a Warning naming what is wrong.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Sidecar } from '../../src/recording/metadata.js';
import { decode, medianToneShare, probe, rmsDb, span } from '../harness/audio.js';
import { davServer, filesUnder, metadataReceiver, redisServer } from '../harness/delivery-servers.js';
import { writeRtpPcapStreams } from '../harness/pcap.js';
import { runSipp, startApp, startSim, tempDir } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { SipUac } from '../harness/sip-uac.js';
import { multipart, siprecMetadata, siprecOffer, siprecSdp } from '../harness/siprec-body.js';
import { until } from '../harness/until.js';

const sim = await startSim();
const redis = await redisServer();
const dav = await davServer();
const rp = await metadataReceiver();
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
const spool = tempDir('spool-siprec');
const profilesFile = join(tempDir('siprec-profiles'), 'profiles.yaml');
writeFileSync(profilesFile, ['default:', '  format: mp3-16-stereo', 'Bank.Siprec:', '  format: mp3-8-mono', ''].join('\n'));
const app = await startApp(sim, {
  MSMLREC_PROFILES_FILE: profilesFile,
  MSMLREC_SIPREC_PROFILE_RULE: 'header:X-Recording-Profile',
  MSMLREC_SPOOL_DIR: spool,
  MSMLREC_DELIVERY_ENABLED: 'true',
  MSMLREC_DELIVERY_REDIS_URL: redis.url,
  MSMLREC_DELIVERY_QUEUE: `siprec-${Math.random().toString(36).slice(2, 8)}`,
  MSMLREC_DELIVERY_WEBDAV_URL: dav.url,
  MSMLREC_DELIVERY_WEBDAV_USER: dav.user,
  MSMLREC_DELIVERY_WEBDAV_PASSWORD: dav.password,
  MSMLREC_DELIVERY_METADATA_URL: rp.url,
  MSMLREC_DELIVERY_SWEEP_MS: '300',
  MSMLREC_DELIVERY_BACKOFF_MS: '300',
});
t.teardown(async () => {
  uac.stop();
  await app.stop('SIGKILL');
  for (const server of [sim, dav, rp, redis]) await server.stop();
});
const srs = `sip:srs@127.0.0.1:${sim.sipPort}`;

type Post = { body: { id: string; callerPhoneNumber: string | null; dialedPhoneNumber: string | null; mediaFiles: { mediaUri: string; channels: number; parameters: Record<string, string> }[]; eventHistory: { type: string }[]; siprec?: { sessionId: string; participants: { aor: string; name: string | null; channel: string | null }[] } } };
/** The Recording Processor answers 503 until `release()`: the spooled files stay for the test to read. */
function holdDelivery(): () => void {
  rp.fault = () => 503;
  return () => {
    rp.fault = () => null;
  };
}
const postOf = (id: string): Post | undefined => rp.posts.find((p) => p.body.id === id) as Post | undefined;
/** The sidecar of a spooled recording, as the log line that spooled it names it. */
const spooledFor = (id: string): Promise<{ mp3: string; sidecar: string }> =>
  until(`recording ${id} spooled`, () => app.logs.some((l) => l.includes('recording spooled') && l.includes(id)), 60_000, () => app.logs.slice(-8).join('\n')).then(() => {
    const line = app.logs.find((l) => l.includes('recording spooled') && l.includes(id)) as string;
    return JSON.parse(line) as { mp3: string; sidecar: string };
  });

/** A spooled recording's channels, and where its audio begins (the first sample either party is heard), s. */
async function spooledAudio(id: string): Promise<{ spooled: { mp3: string; sidecar: string }; left: Int16Array; right: Int16Array; t0: number }> {
  const spooled = await spooledFor(id);
  const [left, right] = decode(spooled.mp3).channels;
  let first = 0;
  while (first < left.length && Math.abs(left[first]) < 300 && Math.abs(right[first]) < 300) first++;
  return { spooled, left, right, t0: first / 8000 };
}

/**
 * Whether a channel carries a party's tone over [from, to) s: the median share of its 100 ms windows (a clock
 * correction's phase step lowers one window's share, not the audio) and its quietest 100 ms window (a gap would show).
 */
function heard(ch: Int16Array, freq: number, from: number, to: number): { ok: boolean; text: string } {
  const share = medianToneShare(ch, freq, from, to);
  let quietest = Infinity;
  for (let s = from; s + 0.1 <= to + 1e-9; s += 0.1) quietest = Math.min(quietest, rmsDb(span(ch, s, s + 0.1)));
  return { ok: share > 0.9 && quietest > -22, text: `${freq} Hz share ${share.toFixed(3)}, quietest 100 ms ${quietest.toFixed(1)} dBFS` };
}

const CALLER = { freq: 1000, aor: 'sip:+14085550101@carrier.example.net', name: 'Pat Caller' };
const CALLEE = { freq: 450, aor: 'sip:7001@cc.example.com', name: 'Agent 7001' };

for (const run of [
  { name: 'caller on the first m-line, the callee\'s RTP first', session: 'c2lwcmVjLXJ1bi1h', labels: ['1', '2'], callerMline: 0 },
  { name: 'caller on the second m-line (Avaya-style labels 20/10), the caller\'s RTP first', session: 'c2lwcmVjLXJ1bi1i', labels: ['20', '10'], callerMline: 1 },
]) {
  t.test(`SIPp: ${run.name} — caller left, callee right, both named in the POST`, async (t) => {
    const dir = tempDir('pcap-siprec');
    const pcap = join(dir, 'two-streams.pcap');
    // the second m-line's party starts 600 ms before the first's: channels must not follow RTP order
    const first = { law: 'PCMU' as const, tone: { freq: run.callerMline === 0 ? CALLER.freq : CALLEE.freq, amplitude: 9000 }, seconds: 4, ssrc: 0x1111 };
    const second = { law: 'PCMU' as const, tone: { freq: run.callerMline === 1 ? CALLER.freq : CALLEE.freq, amplitude: 9000 }, seconds: 4.6, ssrc: 0x2222 };
    writeRtpPcapStreams(pcap, [
      { dport: 6000, startSec: 0.6, opts: first },
      { dport: 6002, startSec: 0, opts: second },
    ]);
    const callerLabel = run.labels[run.callerMline];
    const calleeLabel = run.labels[1 - run.callerMline];
    const metadata = siprecMetadata(run.session, [
      { id: 'p-caller', aor: CALLER.aor, name: CALLER.name, sends: [callerLabel] },
      { id: 'p-callee', aor: CALLEE.aor, name: CALLEE.name, sends: [calleeLabel] },
    ]).replace(/\r\n/g, '\n');
    const release = holdDelivery();
    const r = await runSipp(sim, 'siprec-call.xml', { pcap, label1: run.labels[0], label2: run.labels[1], metadata, call_ms: 5200 });
    t.equal(r.code, 0, `SIPp scenario passed ${r.errors}`);
    const answered = JSON.parse(app.logs.filter((l) => l.includes('SIPREC session answered') && l.includes(run.session)).at(-1) as string) as { ports: number[]; slots: number[] };
    t.equal(answered.ports[1], answered.ports[0] + 2, `the two streams got ports ${answered.ports.join(', ')} (SIPp plays the pcap's second stream to the first port + 2)`);
    t.same(answered.slots, run.callerMline === 0 ? [0, 1] : [1, 0], `slots by metadata: ${answered.slots.join(', ')}`);

    const spooled = await spooledFor(run.session);
    t.match(probe(spooled.mp3), { codec: 'mp3', channels: 2, sampleRate: 8000 }, 'stereo MP3');
    const audio = decode(spooled.mp3);
    const [left, right] = audio.channels;
    // the recording starts at the INVITE's arrival, the pcap once SIPp has the 200 OK: both parties send from 0.6 s
    // to 4.6 s of the pcap
    let first0 = 0;
    while (first0 < left.length && Math.abs(left[first0]) < 300 && Math.abs(right[first0]) < 300) first0++;
    const t0 = first0 / 8000;
    t.ok(t0 < 1, `the RTP starts ${t0.toFixed(3)} s into the recording (the time the INVITE took to answer)`);
    const l = heard(left, CALLER.freq, t0 + 0.8, t0 + 4.4);
    const r2 = heard(right, CALLEE.freq, t0 + 0.8, t0 + 4.4);
    t.ok(l.ok, `left: the caller (${l.text})`);
    t.ok(r2.ok, `right: the callee (${r2.text})`);
    t.ok(medianToneShare(left, CALLEE.freq, t0 + 0.8, t0 + 4.4) < 0.05 && medianToneShare(right, CALLER.freq, t0 + 0.8, t0 + 4.4) < 0.05, 'neither party on the other side');
    const sidecar = JSON.parse(readFileSync(spooled.sidecar, 'utf8')) as Sidecar;
    t.equal(sidecar.siprec?.sessionId, run.session, 'the sidecar keeps the SIPREC session id');
    t.equal(sidecar.siprec?.channelsBy, 'metadata');
    t.match(sidecar.siprec?.metadata ?? '', /urn:ietf:params:xml:ns:recording:1/, 'and the metadata document whole');
    t.same(sidecar.events, [], 'no MSML, no pause: an empty history');
    release();

    await until('delivered', () => postOf(run.session) !== undefined, 30_000, () => app.logs.slice(-5).join('\n'));
    const post = postOf(run.session) as Post;
    t.same(post.body.siprec?.participants.map((p) => [p.aor, p.name, p.channel]), [[CALLER.aor, CALLER.name, 'left'], [CALLEE.aor, CALLEE.name, 'right']], 'the POST names both participants and their channels');
    t.equal(post.body.callerPhoneNumber, '+14085550101', 'caller number from the caller participant');
    t.equal(post.body.dialedPhoneNumber, '7001', 'dialed number from the callee');
    t.equal(post.body.mediaFiles[0].parameters.siprecSessionId, run.session, 'the SIPREC session id among the parameters');
    t.ok(filesUnder(dav.root).some((f) => f.includes(run.session) && f.endsWith('.mp3')), 'the MP3 is on WebDAV');
  });
}

/** Ports of our answer's m-lines, and their direction lines. */
const answerOf = (content: unknown): { ports: number[]; dirs: string[]; codecs: string[] } => {
  const sdp = String(content);
  return {
    ports: [...sdp.matchAll(/^m=audio (\d+)/gm)].map((m) => Number(m[1])),
    dirs: [...sdp.matchAll(/^a=(sendonly|recvonly|sendrecv|inactive)\r?$/gm)].map((m) => m[1]),
    codecs: [...sdp.matchAll(/^m=audio \d+ RTP\/AVP (\d+)/gm)].map((m) => (m[1] === '0' ? 'PCMU' : m[1] === '8' ? 'PCMA' : m[1])),
  };
};

t.test('re-INVITE moves a stream to a new port and codec: one file goes on; a=inactive on both pauses it; UPDATE metadata goes in the history', async (t) => {
  const session = 'cmVpbnZpdGUtbW92ZQ';
  const caller = await RtpSender.open();
  const callee = await RtpSender.open();
  const moved = await RtpSender.open();
  t.teardown(() => [caller, callee, moved].forEach((s) => s.close()));
  t.teardown(holdDelivery());
  const participants = [
    { id: 'a', aor: CALLER.aor, sends: ['1'] },
    { id: 'b', aor: CALLEE.aor, sends: ['2'] },
  ];
  const offer = siprecOffer([{ port: caller.port, label: '1' }, { port: callee.port, label: '2' }], session, participants);
  const inv = await uac.request('INVITE', srs, { headers: { 'content-type': offer.contentType, require: 'siprec' }, body: offer.body });
  t.equal(inv.status, 200, 'INVITE 200');
  const a = answerOf(inv.content);
  t.same(a.dirs, ['recvonly', 'recvonly'], 'both m-lines answered recvonly');
  t.match(String(inv.content), /a=label:1[\s\S]*a=label:2/, 'labels echoed');
  const dialog = uac.dialogOf(inv);
  const [p1, p2] = a.ports;
  const play = (seconds: number, second: RtpSender, law: 'PCMU' | 'PCMA', ssrc: number): Promise<unknown> =>
    Promise.all([caller.play(p1, { law: 'PCMU', freq: CALLER.freq, seconds, ssrc: 0xa1 }), second.play(p2, { law, freq: CALLEE.freq, seconds, ssrc })]);
  /** A re-INVITE with a plain SDP: stream 1 from the caller's socket, stream 2 (PCMA) from the moved one. */
  const reinvite = (version: number, direction?: 'inactive') =>
    uac.request('INVITE', '', {
      dialog,
      headers: { 'content-type': 'application/sdp' },
      body: siprecSdp([{ port: caller.port, label: '1', direction }, { port: moved.port, label: '2', codec: 'PCMA', direction }], version),
    });
  await play(2, callee, 'PCMU', 0xb1);

  const re1 = await reinvite(2);
  t.equal(re1.status, 200, 're-INVITE moving stream 2: 200');
  const a1 = answerOf(re1.content);
  t.same(a1.ports, [p1, p2], 'the same ports of ours');
  t.same(a1.codecs, ['PCMU', 'PCMA'], 'stream 2 now PCMA');
  await play(1.5, moved, 'PCMA', 0xb2);

  const re2 = await reinvite(3, 'inactive');
  t.equal(re2.status, 200, 're-INVITE a=inactive on both: 200');
  t.same(answerOf(re2.content).dirs, ['inactive', 'inactive'], 'answered inactive');
  // an SRC that keeps sending while inactive is not recorded either
  await play(1.5, moved, 'PCMA', 0xb2);

  const re3 = await reinvite(4);
  t.equal(re3.status, 200, 're-INVITE sendonly again: 200');
  const transferred = [participants[0], { id: 'c', aor: 'sip:7002@cc.example.com', name: 'Agent 7002', sends: ['2'] }];
  const upd = await uac.request('UPDATE', '', { dialog, headers: { 'content-type': 'application/rs-metadata+xml' }, body: siprecMetadata(session, transferred) });
  t.equal(upd.status, 200, 'UPDATE with metadata only: 200');
  await play(1.5, moved, 'PCMA', 0xb2);
  t.equal((await uac.request('BYE', '', { dialog })).status, 200, 'BYE 200');

  const spooled = await spooledFor(session);
  t.equal(app.logs.filter((l) => l.includes('recording spooled') && l.includes(session)).length, 1, 'one recording');
  const sidecar = JSON.parse(readFileSync(spooled.sidecar, 'utf8')) as Sidecar;
  const ev = (type: string): number => sidecar.events.find((e) => e.type === type)?.offsetMs ?? NaN;
  t.same(sidecar.events.map((e) => e.type), ['hold', 'hold', 'pause', 'unhold', 'unhold', 'resume', 'siprec.metadata'], 'history: both streams inactive and the pause, both back and the resume, the metadata update');
  const meta = sidecar.events.find((e) => e.type === 'siprec.metadata')?.detail as { participants: { aor: string; slot: number | null }[] } | undefined;
  t.same(meta?.participants.map((p) => [p.aor, p.slot]), [[CALLER.aor, 0], ['sip:7002@cc.example.com', 1]], 'the update names the new participant on the right channel');
  const pause = ev('pause') / 1000;
  const resume = ev('resume') / 1000;
  t.ok(pause > 3 && resume - pause > 1.2, `paused ${pause.toFixed(2)}–${resume.toFixed(2)} s`);
  const [left, right] = decode(spooled.mp3).channels;
  for (const [from, to, what] of [[0.3, 1.8, 'before the move'], [2.4, pause - 0.2, 'after the move (PCMA, new port and SSRC)'], [resume + 0.3, resume + 1.3, 'after the resume']] as const) {
    const l = heard(left, CALLER.freq, from, to);
    const r = heard(right, CALLEE.freq, from, to);
    t.ok(l.ok, `left ${what}: the caller (${l.text})`);
    t.ok(r.ok, `right ${what}: the callee (${r.text})`);
  }
  t.ok(rmsDb(span(left, pause + 0.2, resume - 0.2)) < -60 && rmsDb(span(right, pause + 0.2, resume - 0.2)) < -60, 'silent while inactive');
  t.equal(sidecar.legs.find((l) => l.slot === 1)?.ssrcChanges, 1, 'the SSRC change of the moved stream counted');
});

t.test('Cisco style: a plain SDP with two sendonly m-lines and no metadata is a recording session, channels by m-line order', async (t) => {
  const sdp = siprecSdp([{ port: 40100, label: '1' }, { port: 40102, label: '2' }]).replace(/a=label:\d\r\n/g, '');
  const inv = await uac.request('INVITE', srs, { headers: { 'content-type': 'application/sdp' }, body: sdp });
  t.equal(inv.status, 200, '200');
  t.same(answerOf(inv.content).dirs, ['recvonly', 'recvonly']);
  const callId = String(inv.headers['call-id']);
  const logged = (): string | undefined => app.logs.find((l) => l.includes('SIPREC session answered') && l.includes(callId));
  await until('the answer logged', () => logged() !== undefined);
  const answered = JSON.parse(logged() as string) as { slots: number[]; channelsBy: string };
  t.same([answered.slots, answered.channelsBy], [[0, 1], 'm-line order'], 'slots 0, 1 by m-line order');
  t.equal((await uac.request('BYE', '', { dialog: uac.dialogOf(inv) })).status, 200);
});

t.test('the profile comes from the header siprec.profileRule names', async (t) => {
  const session = 'cHJvZmlsZS1ydWxl';
  const rtp = await RtpSender.open();
  t.teardown(() => rtp.close());
  t.teardown(holdDelivery());
  const offer = siprecOffer([{ port: rtp.port, label: '1' }, { port: rtp.port + 2, label: '2' }], session, [{ id: 'a', aor: CALLER.aor, sends: ['1'] }, { id: 'b', aor: CALLEE.aor, sends: ['2'] }]);
  const inv = await uac.request('INVITE', srs, { headers: { 'content-type': offer.contentType, 'X-Recording-Profile': 'Bank.Siprec' }, body: offer.body });
  t.equal(inv.status, 200, '200');
  await rtp.play(answerOf(inv.content).ports[0], { law: 'PCMU', freq: CALLER.freq, seconds: 1, ssrc: 7 });
  await uac.request('BYE', '', { dialog: uac.dialogOf(inv) });
  const spooled = await spooledFor(session);
  const sidecar = JSON.parse(readFileSync(spooled.sidecar, 'utf8')) as Sidecar;
  t.equal(sidecar.profile, 'Bank.Siprec', 'the profile named in X-Recording-Profile');
  t.match(probe(spooled.mp3), { channels: 1 }, 'its format: mono');
  t.same([sidecar.tenant, sidecar.ivrProfile], ['Bank', 'Siprec'], 'tenant and IVR profile from its name');
});

t.test('SRC bodies as real SBCs send them: no c= line, application/rs-metadata, vendor data per participant — recorded, named, each its own', async (t) => {
  const session = 'bm8tYy1saW5l';
  const caller = await RtpSender.open();
  const callee = await RtpSender.open();
  t.teardown(() => [caller, callee].forEach((s) => s.close()));
  const release = holdDelivery();
  // an OpenSIPS-style SDP: no c= at session or media level (invalid per RFC 4566, sent all the same)
  const sdp = siprecSdp([{ port: caller.port, label: '1' }, { port: callee.port, label: '2' }]).replace(/^c=.*\r\n/m, '');
  t.notMatch(sdp, /^c=/m, 'the offer has no c= line');
  // SEMS-style pre-RFC type, and Acme-style vendor data of each participant's own
  const acme = (v: string): string => `<extensiondata xmlns:apkt="http://acmepacket.com/siprec/extensiondata"><apkt:callingParty>${v}</apkt:callingParty></extensiondata>`;
  const meta = siprecMetadata(session, [{ id: 'a', aor: CALLER.aor, sends: ['1'] }, { id: 'b', aor: CALLEE.aor, sends: ['2'] }])
    .replace('<participant participant_id="a">', `<participant participant_id="a">${acme('true')}`)
    .replace('<participant participant_id="b">', `<participant participant_id="b">${acme('false')}`);
  const offer = multipart([{ type: 'application/sdp', content: sdp }, { type: 'application/rs-metadata', content: meta, disposition: 'recording-session' }]);
  const inv = await uac.request('INVITE', srs, { headers: { 'content-type': offer.contentType }, body: offer.body });
  t.equal(inv.status, 200, 'INVITE 200');
  const [p1, p2] = answerOf(inv.content).ports;
  await Promise.all([caller.play(p1, { law: 'PCMU', freq: CALLER.freq, seconds: 3, ssrc: 0xc1 }), callee.play(p2, { law: 'PCMU', freq: CALLEE.freq, seconds: 3, ssrc: 0xc2 })]);
  t.equal((await uac.request('BYE', '', { dialog: uac.dialogOf(inv) })).status, 200, 'BYE 200');
  const { left, right, t0 } = await spooledAudio(session);
  const l = heard(left, CALLER.freq, t0 + 0.2, t0 + 2.8);
  const r = heard(right, CALLEE.freq, t0 + 0.2, t0 + 2.8);
  t.ok(l.ok, `no c=: the caller is recorded on the left (${l.text})`);
  t.ok(r.ok, `no c=: the callee is recorded on the right (${r.text})`);
  t.notOk(app.logs.some((l2) => l2.includes(session) && l2.includes('no SIPREC stream sends')), 'never taken for a hold');
  release();
  await until('delivered', () => postOf(session) !== undefined, 30_000, () => app.logs.slice(-5).join('\n'));
  const post = postOf(session) as Post;
  const withExt = post.body.siprec?.participants as unknown as { extensions: Record<string, string> }[];
  t.equal(post.body.id, session, 'application/rs-metadata: the POST has the SIPREC session id as the recording id');
  t.same([post.body.callerPhoneNumber, post.body.dialedPhoneNumber], [CALLER.aor.replace(/^sip:([^@]+)@.*$/, '$1'), CALLEE.aor.replace(/^sip:([^@]+)@.*$/, '$1')], 'and the participants as caller and dialed numbers');
  t.same(withExt.map((p) => p.extensions['extensiondata.callingParty']), ['true', 'false'], "each participant's vendor data is its own");
  t.equal(post.body.mediaFiles[0].parameters['caller.extensiondata.callingParty'], 'true', "the caller's callingParty is the caller's");
});

t.test('a conference fork of 3 streams: every stream recorded, the caller left, the two others mixed on the right; 9 streams get 488', async (t) => {
  const session = 'Y29uZi1mb3JrLTM';
  const SUPERVISOR = { freq: 1700, aor: 'sip:7100@cc.example.com', name: 'Supervisor 7100' };
  const senders = await Promise.all([RtpSender.open(), RtpSender.open(), RtpSender.open()]);
  t.teardown(() => senders.forEach((s) => s.close()));
  const release = holdDelivery();
  const offer = siprecOffer(senders.map((s, i) => ({ port: s.port, label: String(i + 1) })), session, [
    { id: 'p-caller', aor: CALLER.aor, name: CALLER.name, sends: ['1'] },
    { id: 'p-callee', aor: CALLEE.aor, name: CALLEE.name, sends: ['2'] },
    { id: 'p-sup', aor: SUPERVISOR.aor, name: SUPERVISOR.name, sends: ['3'] },
  ]);
  const inv = await uac.request('INVITE', srs, { headers: { 'content-type': offer.contentType }, body: offer.body });
  t.equal(inv.status, 200, 'INVITE 200');
  const answer = answerOf(inv.content);
  t.equal(answer.ports.filter((p) => p > 0).length, 3, `all 3 m-lines answered with a port (${answer.ports.join(', ')})`);
  t.same(answer.dirs, ['recvonly', 'recvonly', 'recvonly'], 'each recvonly');
  // the supervisor barges in 1 s after the others: the right channel is the callee alone, then both mixed
  const freqs = [CALLER.freq, CALLEE.freq, SUPERVISOR.freq];
  await Promise.all(senders.map((s, i) => (async () => {
    if (i === 2) await new Promise((r) => setTimeout(r, 1000));
    await s.play(answer.ports[i], { law: 'PCMU', freq: freqs[i], seconds: i === 2 ? 2 : 3, ssrc: 0xf1 + i });
  })()));
  t.equal((await uac.request('BYE', '', { dialog: uac.dialogOf(inv) })).status, 200, 'BYE 200');
  const { spooled, left, right, t0 } = await spooledAudio(session);
  const l = heard(left, CALLER.freq, t0 + 0.2, t0 + 2.8);
  t.ok(l.ok, `left: the caller alone (${l.text})`);
  t.ok(medianToneShare(left, CALLEE.freq, t0 + 0.2, t0 + 2.8) < 0.05 && medianToneShare(left, SUPERVISOR.freq, t0 + 0.2, t0 + 2.8) < 0.05, 'neither other party on the left');
  const alone = heard(right, CALLEE.freq, t0 + 0.2, t0 + 0.8);
  t.ok(alone.ok, `right before the barge-in: the callee alone (${alone.text})`);
  const [callee, sup] = [CALLEE.freq, SUPERVISOR.freq].map((f) => medianToneShare(right, f, t0 + 1.3, t0 + 2.8));
  t.ok(callee > 0.35 && sup > 0.35 && callee + sup > 0.9, `right after it: the callee and the supervisor mixed, each about half (${callee.toFixed(3)} / ${sup.toFixed(3)} of the energy)`);
  let quietest = Infinity;
  for (let s = t0 + 1.3; s + 0.1 <= t0 + 2.8; s += 0.1) quietest = Math.min(quietest, rmsDb(span(right, s, s + 0.1)));
  t.ok(quietest > -22, `no gap in the mix (quietest 100 ms ${quietest.toFixed(1)} dBFS)`);
  const sidecar = JSON.parse(readFileSync(spooled.sidecar, 'utf8')) as Sidecar;
  t.same(sidecar.siprec?.streams.map((s) => [s.label, s.slot, s.participant]), [['1', 0, 'p-caller'], ['2', 1, 'p-callee'], ['3', 1, 'p-sup']], 'the sidecar: each stream, its channel and its sender');
  t.same(sidecar.legs.map((g) => g.packets > 0), [true, true, true], 'packets counted on all three streams');
  release();
  await until('delivered', () => postOf(session) !== undefined, 30_000, () => app.logs.slice(-5).join('\n'));
  t.same(postOf(session)?.body.siprec?.participants.map((p) => [p.aor, p.channel]), [[CALLER.aor, 'left'], [CALLEE.aor, 'right'], [SUPERVISOR.aor, 'right']], 'the POST names all three with their channels');

  const nine = siprecOffer(Array.from({ length: 9 }, (_, i) => ({ port: 41000 + 2 * i, label: String(i + 1) })), 'bmluZQ==', [{ id: 'a', aor: CALLER.aor, sends: ['1'] }]);
  const refused = await uac.request('INVITE', srs, { headers: { 'content-type': nine.contentType }, body: nine.body });
  t.equal(refused.status, 488, '9 streams: 488');
  t.match(String(refused.headers.warning ?? ''), /9 audio streams: at most 8/, 'with a Warning saying why');
});

t.test('at recording.maxDurationSec a SIPREC recording goes on in a next part, with nothing lost between them', async (t) => {
  const sim2 = await startSim();
  const app2 = await startApp(sim2, { MSMLREC_RECORDING_MAX_DURATION_SEC: '2', MSMLREC_RECORDING_WAV_COPY: 'PCMU' });
  const uac2 = await new SipUac(`127.0.0.1:${sim2.sipPort}`).start();
  const rtp = await RtpSender.open();
  t.teardown(async () => {
    rtp.close();
    uac2.stop();
    await app2.stop('SIGKILL');
    await sim2.stop();
  });
  const session = 'cm9sbG92ZXI';
  const offer = siprecOffer([{ port: rtp.port, label: '1' }, { port: rtp.port + 2, label: '2' }], session, [{ id: 'a', aor: CALLER.aor, sends: ['1'] }, { id: 'b', aor: CALLEE.aor, sends: ['2'] }]);
  const inv = await uac2.request('INVITE', `sip:srs@127.0.0.1:${sim2.sipPort}`, { headers: { 'content-type': offer.contentType }, body: offer.body });
  t.equal(inv.status, 200);
  await rtp.play(answerOf(inv.content).ports[0], { law: 'PCMU', freq: CALLER.freq, seconds: 5, ssrc: 5 });
  await uac2.request('BYE', '', { dialog: uac2.dialogOf(inv) });
  const spooled = (id: string): { mp3: string; sidecar: string } | undefined => {
    const line = app2.logs.find((l) => l.includes('recording spooled') && new RegExp(`"mp3":"[^"]*/${id}_2026`).test(l));
    return line ? (JSON.parse(line) as { mp3: string; sidecar: string }) : undefined;
  };
  await until('three parts spooled', () => [session, `${session}_2`, `${session}_3`].every((id) => spooled(id)), 30_000, () => app2.logs.slice(-8).join('\n'));
  const parts = [session, `${session}_2`, `${session}_3`].map((id) => spooled(id) as { mp3: string; sidecar: string });
  const sidecars = parts.map((p) => JSON.parse(readFileSync(p.sidecar, 'utf8')) as Sidecar);
  t.same(sidecars.map((s) => s.endReason), ['record.complete.maxlength', 'record.complete.maxlength', 'record.terminate'], 'two parts end at their longest duration, the last at the BYE');
  t.ok(sidecars.every((s) => s.siprec?.sessionId === session), 'each part carries the SIPREC session');
  const audio = parts.map((p) => decode(p.mp3).channels[0]);
  const joined = new Int16Array(audio.reduce((n, a) => n + a.length, 0));
  audio.reduce((at, a) => (joined.set(a, at), at + a.length), 0);
  const total = joined.length / 8000;
  // the recording starts at the INVITE's arrival; the SRC's RTP only once it has the 200 OK
  let lead = 0;
  while (lead < joined.length && Math.abs(joined[lead]) < 300) lead++;
  const answerS = lead / 8000;
  t.ok(answerS < 1, `the audio starts ${answerS.toFixed(3)} s into the first part (the time the INVITE took to answer)`);
  t.ok(Math.abs(total - answerS - 5) < 0.3, `the parts add up to the call: ${sidecars.map((s) => s.durationMs).join(' + ')} ms`);
  let quietest = Infinity;
  for (let s = answerS + 0.1; s + 0.02 < total - 0.3; s += 0.02) quietest = Math.min(quietest, rmsDb(span(joined, s, s + 0.02)));
  t.ok(quietest > -25, `no hole across the part boundaries (quietest 20 ms: ${quietest.toFixed(1)} dBFS)`);
  // sample-exact in the G.711 WAV copy: the next parts start with the tone, not with silence
  const leadingQuiet = (p: { mp3: string }): number => {
    const w = decode(p.mp3.replace(/\.mp3$/, '.wav')).channels[0];
    let n = 0;
    while (n < w.length && Math.abs(w[n]) < 300) n++;
    return n;
  };
  t.same(parts.slice(1).map((p) => leadingQuiet(p) <= 8), [true, true], `parts 2 and 3 begin with the tone (${parts.slice(1).map(leadingQuiet).join(', ')} quiet samples first)`);
  const starts = sidecars.map((s) => Date.parse(s.startTime));
  t.ok(Math.abs(starts[1] - (starts[0] + sidecars[0].durationMs)) < 40 && Math.abs(starts[2] - (starts[1] + sidecars[1].durationMs)) < 40, `each part starts where the previous ended (${sidecars.map((s) => s.startTime.slice(11)).join(', ')})`);
});

t.test('broken SIPREC bodies: 400 with a Warning naming what is wrong; the recorder goes on', async (t) => {
  const good = siprecOffer([{ port: 40200, label: '1' }, { port: 40202, label: '2' }], 'YnJva2Vu', [{ id: 'a', aor: CALLER.aor, sends: ['1'] }, { id: 'b', aor: CALLEE.aor, sends: ['2'] }]);
  const cases: [string, string, string, RegExp][] = [
    ['no closing boundary', good.contentType, good.body.replace(/--OSS-unique-boundary-42--\r\n$/, ''), /closing boundary/],
    ['boundary missing', 'multipart/mixed', good.body, /without a boundary/],
    ['metadata not XML', good.contentType, good.body.replace('<recording ', '<recording <<'), /recording metadata is not XML/],
    ['no SDP part', multipart([{ type: 'application/rs-metadata+xml', content: siprecMetadata('x', []) }]).contentType, multipart([{ type: 'application/rs-metadata+xml', content: siprecMetadata('x', []) }]).body, /without an SDP offer/],
    ['DOCTYPE in metadata', good.contentType, good.body.replace('<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]>'), /DOCTYPE or ENTITY/],
  ];
  for (const [what, ct, body, why] of cases) {
    const r = await uac.request('INVITE', srs, { headers: { 'content-type': ct, require: 'siprec' }, body });
    t.equal(r.status, what === 'no SDP part' ? 488 : 400, `${what}: ${r.status}`);
    t.match(String(r.headers.warning ?? ''), why, `Warning: ${r.headers.warning}`);
  }
  const ok = await uac.request('INVITE', srs, { headers: { 'content-type': good.contentType }, body: good.body });
  t.equal(ok.status, 200, 'a good SIPREC INVITE right after: 200');
  await uac.request('BYE', '', { dialog: uac.dialogOf(ok) });
  t.equal(app.proc.exitCode, null, 'the recorder is still running');
});
