/**
 * The recording alert tone end to end: a relayed two-party call whose profile plays a 0.5 s 1400 Hz tone to the
 * recorded DN's party, every 2 s (the call's MSML tonesilenceduration of 1500 ms over the profile's 30 s). dumpcap
 * watches what the recorder relays to each party: the tone is in the packets to the recordDN party at the start and
 * every 2 s ± 20 ms, none while paused, again after the resume; none reaches the other party; the recordDN party's
 * stream stays continuous (sequence numbers and timestamps); the sidecar lists each play. A tone that cannot be read:
 * the recording runs and the dialogstart answer says why. A call's own tone (audiosrc) only from an allowed host.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import wavefile from 'wavefile';
import { decodeG711 } from '../../src/media/g711.js';
import { parseRtp, type RtpPacket } from '../../src/media/rtp-packet.js';
import type { Sidecar } from '../../src/recording/metadata.js';
import { toneShare } from '../harness/audio.js';
import { startCapture } from '../harness/capture.js';
import { tonePcm } from '../harness/pcap.js';
import { startApp, startSim, tempDir } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { SipUac, type UacDialog } from '../harness/sip-uac.js';
import { sleep, until } from '../harness/until.js';

const TONE_HZ = 1400;
const dir = tempDir('tone');
const toneFile = join(dir, 'tone.wav');
const w = new wavefile.WaveFile();
w.fromScratch(1, 8000, '16', tonePcm({ freq: TONE_HZ, amplitude: 9000 }, 0.5));
writeFileSync(toneFile, w.toBuffer());
const profiles = join(dir, 'profiles.yaml');
writeFileSync(
  profiles,
  ['Tone.Agent:', `  alertTone: ${toneFile}`, '  toneSilenceMs: 30000', '  hearsTone: [recordDN]', '  allowedDestHosts: [127.0.0.1]', 'Tone.Broken:', `  alertTone: ${join(dir, 'missing.wav')}`, ''].join('\n'),
);
const sim = await startSim();
const spool = tempDir('spool-tone');
const app = await startApp(sim, { MSMLREC_SPOOL_DIR: spool, MSMLREC_PROFILES_FILE: profiles });
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
t.teardown(async () => {
  uac.stop();
  await app.stop();
  await sim.stop();
});
const MSML = { 'content-type': 'application/vnd.radisys.msml+xml' };
const sdp = (port: number): string => `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n`;
async function leg(conf: string, profile: string, party: RtpSender): Promise<{ dialog: UacDialog; port: number }> {
  const r = await uac.request('INVITE', `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=7001;record;gvp-tenant-id=${profile}`, { headers: { 'content-type': 'application/sdp' }, body: sdp(party.port) });
  if (r.status !== 200) throw new Error(`INVITE ${r.status}`);
  return { dialog: uac.dialogOf(r), port: Number(/m=audio (\d+)/.exec(String(r.content))?.[1]) };
}

t.test('the tone every 2 s to the recordDN party only, none while paused, its stream continuous', async (t) => {
  const other = await RtpSender.open();
  const agent = await RtpSender.open();
  const a = await leg('tone1', 'Tone.Agent', other);
  const b = await leg('tone1', 'Tone.Agent', agent);
  const cap = await startCapture(`udp and (dst port ${other.port} or dst port ${agent.port})`);
  const playing = Promise.all([other.play(a.port, { law: 'PCMU', freq: 500, seconds: 8, ssrc: 0x0a }), agent.play(b.port, { law: 'PCMU', freq: 900, seconds: 8, ssrc: 0x0b })]);
  await sleep(300);
  const start = await uac.request('INFO', '', { dialog: a.dialog, headers: MSML, body: '<msml version="1.1"><dialogstart target="conf:tone1" name="rec"><record><param name="tonesilenceduration">1500</param></record></dialogstart></msml>' });
  t.match(String(start.content), /response="200"/, 'dialogstart 200');
  t.notMatch(String(start.content), /description/, 'nothing to say about the tone');
  const startedAt = Date.now();
  const send = (event: string) => uac.request('INFO', '', { dialog: a.dialog, headers: MSML, body: `<msml version="1.1"><send target="conf:tone1/dialog:rec" event="${event}"/></msml>` });
  await sleep(3000 - (Date.now() - startedAt));
  const pausedAt = Date.now();
  await send('pause');
  await sleep(1700);
  const resumedAt = Date.now();
  await send('resume');
  await playing;
  await uac.request('BYE', '', { dialog: a.dialog });
  await uac.request('BYE', '', { dialog: b.dialog });
  other.close();
  agent.close();
  const packets = await cap.stop();

  const toned = (port: number) =>
    packets
      .filter((p) => p.dport === port)
      .map((p) => ({ ms: p.ms, rtp: parseRtp(p.payload) }))
      .filter((p): p is { ms: number; rtp: RtpPacket } => typeof p.rtp !== 'string')
      .map((p) => {
        const pcm = new Int16Array(p.rtp.payload.length);
        decodeG711('PCMU', p.rtp.payload, pcm);
        return { ms: p.ms, seq: p.rtp.sequence, ts: p.rtp.timestamp, tone: toneShare(pcm, TONE_HZ) > 0.6 };
      });
  const toAgent = toned(agent.port);
  const toOther = toned(other.port);
  t.ok(toAgent.length > 300 && toOther.length > 300, `relayed to both parties (${toAgent.length}, ${toOther.length} packets)`);
  t.equal(toOther.filter((p) => p.tone).length, 0, 'the other party never hears the tone');
  // runs of tone packets to the agent
  const runs: { from: number; n: number }[] = [];
  toAgent.forEach((p, i) => {
    if (!p.tone) return;
    if (i > 0 && toAgent[i - 1].tone) runs[runs.length - 1].n++;
    else runs.push({ from: p.ms, n: 1 });
  });
  t.ok(runs.length >= 4, `the tone played ${runs.length} times: ${runs.map((r) => `${((r.from - runs[0].from) / 1000).toFixed(3)} s × ${r.n}`).join(', ')}`);
  for (const r of runs) t.ok(r.n >= 24 && r.n <= 26, `each play is the 0.5 s tone (${r.n} packets)`);
  t.ok(Math.abs(runs[1].from - runs[0].from - 2000) <= 20, `the second play 2 s after the first (${(runs[1].from - runs[0].from).toFixed(1)} ms)`);
  t.equal(runs.filter((r) => r.from > pausedAt + 30 && r.from < resumedAt - 30).length, 0, 'no tone while paused');
  const afterResume = runs.filter((r) => r.from >= resumedAt - 30);
  t.ok(afterResume.length >= 1 && afterResume[0].from - resumedAt < 150, `the tone again at the resume (+${(afterResume[0]?.from - resumedAt).toFixed(0)} ms)`);
  if (afterResume.length > 1) t.ok(Math.abs(afterResume[1].from - afterResume[0].from - 2000) <= 20, 'and 2 s later');
  const jumps = toAgent.slice(1).filter((p, i) => ((p.seq - toAgent[i].seq) & 0xffff) !== 1 || p.ts - toAgent[i].ts !== 160).length;
  t.equal(jumps, 0, "the agent's stream has no sequence or timestamp jump, tone or not");
  await until('sidecar', () => readdirSync(spool).some((f) => f.startsWith('tone1') && f.endsWith('.json') && !f.endsWith('.open.json')), 10_000);
  const sidecar = JSON.parse(readFileSync(join(spool, readdirSync(spool).find((f) => f.startsWith('tone1') && f.endsWith('.json') && !f.endsWith('.open.json')) as string), 'utf8')) as Sidecar;
  t.equal(sidecar.events.filter((e) => e.type === 'tone.recordDN').length, runs.length, 'the sidecar lists every play');
});

t.test('a tone that cannot be read: the recording runs, the dialogstart answer says why', async (t) => {
  const party = await RtpSender.open();
  const a = await leg('tone2', 'Tone.Broken', party);
  const r = await uac.request('INFO', '', { dialog: a.dialog, headers: MSML, body: '<msml version="1.1"><dialogstart target="conf:tone2" name="rec"><record/></dialogstart></msml>' });
  t.match(String(r.content), /response="200"/, 'dialogstart 200: the recording runs');
  t.match(String(r.content), /<description>alert tone not played: .*missing\.wav.*ENOENT/, 'its description says the tone could not be read');
  await party.play(a.port, { law: 'PCMU', freq: 600, seconds: 1, ssrc: 3 });
  await uac.request('BYE', '', { dialog: a.dialog });
  party.close();
  await until('recorded', () => readdirSync(spool).some((f) => f.startsWith('tone2') && f.endsWith('.mp3')), 10_000, () => app.logs.slice(-5).join('\n'));
  t.ok(app.logs.some((l) => l.includes('recording runs without its alert tone')), 'and the log says so');
});

t.test('a call of its own tone (audiosrc): only from an allowed host; a new one is read for the next recordings', async (t) => {
  const party = await RtpSender.open();
  const a = await leg('tone3', 'Tone.Agent', party);
  const start = (src: string) =>
    uac.request('INFO', '', { dialog: a.dialog, headers: MSML, body: `<msml version="1.1"><dialogstart target="conf:tone3" name="rec"><record><param name="audiosrc">${src}</param></record></dialogstart></msml>` });
  const refused = await start('http://tones.example.net/other.wav');
  t.match(String(refused.content), /response="407"[\s\S]*Bad audiosrc: .*tones\.example\.net/, 'a host the profile does not allow: MSML 407 naming it');
  const r = await start('http://127.0.0.1:9/tone.wav');
  t.match(String(r.content), /response="200"[\s\S]*alert tone not played: http:\/\/127\.0\.0\.1:9\/tone\.wav is still being read/, 'an allowed host: the recording runs; the tone is read for the next ones');
  await uac.request('BYE', '', { dialog: a.dialog });
  party.close();
});
