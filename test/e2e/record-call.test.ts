/**
 * One recorded call end to end, the way SIP Server drives an MCP: SIPp sends the RM-style INVITE, the MSML INFOs
 * and G.711 RTP through the drachtio simulator to the recorder process; the MP3 it spools is decoded and checked.
 * Before it, bad input of every kind is sent to the same process, which must answer it and keep serving.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, probe, rmsDb, span, toneShare } from '../harness/audio.js';
import { writeRtpPcap } from '../harness/pcap.js';
import { runSipp, startApp, startSim, tempDir } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { PCMU_OFFER, SipUac, type UacDialog } from '../harness/sip-uac.js';
import { until } from '../harness/until.js';
import type { Sidecar } from '../../src/recording/metadata.js';

const sim = await startSim();
const app = await startApp(sim);
t.teardown(async () => {
  await app.stop();
  await sim.stop();
});
const server = `127.0.0.1:${sim.sipPort}`;
const ruri = (conf: string): string => `sip:msml=${conf}@${server};dn=8463376;record;tenant-dbid=1;media-service=record`;

t.test('bad input gets the named answers and loses nothing', async (t) => {
  const uac = await new SipUac(server).start();
  t.teardown(() => uac.stop());
  t.equal((await uac.request('OPTIONS', `sip:${server}`)).status, 200, 'OPTIONS 200');
  const ct = { 'content-type': 'application/sdp' };
  t.equal((await uac.request('INVITE', ruri('bad1'), { headers: ct, body: 'this is not SDP' })).status, 400, 'unparseable SDP: 400');
  const g729 = PCMU_OFFER.replace('RTP/AVP 0', 'RTP/AVP 18').replace('0 PCMU', '18 G729');
  t.equal((await uac.request('INVITE', ruri('bad2'), { headers: ct, body: g729 })).status, 488, 'no usable codec: 488');
  t.equal((await uac.request('INVITE', `sip:service@${server}`, { headers: ct, body: PCMU_OFFER })).status, 404, 'not an MSML URI: 404');
  t.equal((await uac.request('INFO', ruri('nodialog'), { headers: { 'content-type': 'application/msml+xml' }, body: '<msml version="1.1"/>' })).status, 481, 'INFO outside any dialog: 481');

  const ok = await uac.request('INVITE', ruri('bad3'), { headers: ct, body: PCMU_OFFER });
  t.equal(ok.status, 200, 'a good INVITE is still answered');
  const dialog = uac.dialogOf(ok);
  const msml = { 'content-type': 'application/vnd.radisys.msml+xml' };
  const malformed = readFileSync(new URL('../fixtures/msml-samples/21_INFO_malformed_msml.sip', import.meta.url), 'utf8').split('\r\n\r\n')[1];
  const r1 = await uac.request('INFO', '', { dialog, headers: msml, body: malformed });
  t.equal(r1.status, 200, 'malformed MSML: SIP 200');
  t.match(r1.content, /<result response="400">\s*<description>[^<]*XML parse error/, '... carrying MSML 400 with a description');
  const r2 = await uac.request('INFO', '', { dialog, headers: msml, body: '<msml version="1.1"><dialogend id="conf:bad3/dialog:nope"/></msml>' });
  t.match(r2.content, /response="405"/, 'dialogend for no such dialog: 405');
  const r3 = await uac.request('INFO', '', { dialog, headers: msml, body: '<msml version="1.1"><send target="x" event="pause"/></msml>' });
  t.match(r3.content, /response="405"/, 'pause with nothing recording: 405');
  const r4 = await uac.request('INFO', '', { dialog, headers: { 'content-type': 'text/plain' }, body: 'hello' });
  t.equal(r4.status, 415, 'a body that is not MSML: 415');
  const r5 = await uac.request('INFO', '', { dialog, headers: msml, body: '<msml version="1.1"><dialogstart target="conf:bad3" type="application/moml+xml"><play/></dialogstart></msml>' });
  t.match(r5.content, /response="402"/, 'a dialog we do not run: 402');
  t.equal((await uac.request('BYE', '', { dialog })).status, 200, 'BYE 200');
  t.notOk(app.proc.exitCode !== null, 'the recorder is still running');
});

t.test('a 20 s call paused from 8 s to 12 s records exactly that', async (t) => {
  const dir = tempDir('pcap');
  const pcap = join(dir, 'tone.pcap');
  writeRtpPcap(pcap, { law: 'PCMU', tone: { freq: 1000, amplitude: 10000 }, seconds: 21 });
  const done = app.waitForLog(/recording spooled/, 60_000);
  const r = await runSipp(sim, 'record-call.xml', { conf: '55c29460000054b3', pcap, pause_at: 8000, paused_ms: 4000, rest_ms: 8000 });
  t.equal(r.code, 0, `SIPp scenario passed ${r.errors}`);
  const spooled = (await done) as { mp3: string; sidecar: string };

  const info = probe(spooled.mp3);
  t.match(info, { codec: 'mp3', channels: 2, sampleRate: 8000, bitRate: 16000 }, 'MP3 16 kbit/s stereo 8 kHz');
  const audio = decode(spooled.mp3);
  t.ok(Math.abs(audio.seconds - 20) <= 0.3, `duration ${audio.seconds.toFixed(3)} s is 20 s ± 0.3 s`);
  const [left, right] = audio.channels;
  for (const [from, to] of [[0.5, 7.5], [12.6, 19.5]]) {
    for (let s = from; s < to; s += 1) {
      const w = span(left, s, s + 0.5);
      t.ok(toneShare(w, 1000) > 0.9, `left ${s.toFixed(1)}s: the 1 kHz tone (share ${toneShare(w, 1000).toFixed(3)})`);
      t.ok(rmsDb(w) > -16, `left ${s.toFixed(1)}s: at its level (${rmsDb(w).toFixed(1)} dBFS)`);
    }
  }
  for (let s = 8.4; s < 11.6; s += 0.4) {
    t.ok(rmsDb(span(left, s, s + 0.4)) < -60, `left ${s.toFixed(1)}s: paused, silent (${rmsDb(span(left, s, s + 0.4)).toFixed(1)} dBFS)`);
  }
  t.ok(rmsDb(span(right, 0.5, 19.5)) < -60, 'right channel (the recorded DN, no RTP sent) is silent');

  const sidecar = JSON.parse(readFileSync(spooled.sidecar, 'utf8')) as Sidecar;
  t.equal(sidecar.id, '55c29460000054b3_rec1', 'recording id from MSML <param name="id">');
  t.equal(sidecar.confId, '55c29460000054b3');
  t.equal(sidecar.callUUID, '55c29460000054b3UUID');
  t.equal(sidecar.dn, '8463376');
  t.equal(sidecar.msml.params.agentId, 'agent01');
  t.equal(sidecar.truncated, false);
  t.ok(Math.abs(sidecar.durationMs - 20000) < 300, `sidecar duration ${sidecar.durationMs} ms`);
  t.same(sidecar.events.map((e) => e.type), ['pause', 'resume']);
  t.ok(Math.abs(sidecar.events[0].offsetMs - 8000) < 300, `pause at ${sidecar.events[0].offsetMs} ms`);
  t.ok(Math.abs(sidecar.events[1].offsetMs - 12000) < 300, `resume at ${sidecar.events[1].offsetMs} ms`);
  t.equal(sidecar.legs[0].packets > 900, true, `RTP packets counted (${sidecar.legs[0].packets})`);
  t.equal(sidecar.legs[0].lost, 0, 'no loss on loopback');
});

t.test('a conference: a third dialog of the conf-id is mixed into the recorded-DN side, not written over it', async (t) => {
  const uac = await new SipUac(server).start();
  const senders = await Promise.all([RtpSender.open(), RtpSender.open(), RtpSender.open()]);
  t.teardown(() => {
    senders.forEach((s) => s.close());
    uac.stop();
  });
  const ct = { 'content-type': 'application/sdp' };
  const freqs = [1000, 450, 1700];
  const dialogs: UacDialog[] = [];
  const ports: number[] = [];
  for (const s of senders) {
    const r = await uac.request('INVITE', ruri('conf3'), { headers: ct, body: PCMU_OFFER.replace('m=audio 40000', `m=audio ${s.port}`) });
    t.equal(r.status, 200, 'INVITE 200');
    dialogs.push(uac.dialogOf(r));
    ports.push(Number(/m=audio (\d+)/.exec(String(r.content))?.[1]));
  }
  const msml = { 'content-type': 'application/vnd.radisys.msml+xml' };
  const playing = senders.map((s, i) => s.play(ports[i], { law: 'PCMU', freq: freqs[i], seconds: 3, ssrc: 0x300 + i }));
  await new Promise((r) => setTimeout(r, 300));
  const start = await uac.request('INFO', '', { dialog: dialogs[0], headers: msml, body: '<msml version="1.1"><dialogstart target="conf:conf3" name="rec"><record format="audio/mp3"/></dialogstart></msml>' });
  t.match(String(start.content), /response="200"/, 'dialogstart 200');
  await Promise.all(playing);
  await uac.request('INFO', '', { dialog: dialogs[0], headers: msml, body: '<msml version="1.1"><dialogend id="conf:conf3/dialog:rec"/></msml>' });
  for (const d of dialogs) await uac.request('BYE', '', { dialog: d });
  const spooledLine = (): string | undefined => app.logs.find((l) => l.includes('recording spooled') && l.includes('conf3'));
  await until('conf3 spooled', () => spooledLine() !== undefined, 30_000);
  const line = JSON.parse(spooledLine() as string) as { mp3: string };
  const [left, right] = decode(line.mp3).channels;
  const mid = (ch: Int16Array, f: number): number => toneShare(span(ch, 0.5, 2.3), f);
  t.ok(mid(left, 1000) > 0.9, `left: the first party alone (1000 Hz share ${mid(left, 1000).toFixed(3)})`);
  t.ok(mid(right, 450) > 0.35 && mid(right, 1700) > 0.35, `right: the second and third parties mixed (${mid(right, 450).toFixed(3)} / ${mid(right, 1700).toFixed(3)} of the energy)`);
  t.ok(rmsDb(span(right, 0.5, 2.3)) > -15, 'at the level of the two tones summed');
});
