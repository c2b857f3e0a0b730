/**
 * A passive fork: one dialog whose SDP has two sendonly m-lines (one per party) records stereo, channel by m-line.
 * Mid-call the first party is "transferred": a re-INVITE moves its m-line to a new port and from PCMU to PCMA; the
 * same file goes on. MSML maxtime ends the recording by itself, and SIP Server is told with moml.exit.
 * Real SIP over UDP through the simulator, real RTP from UDP sockets.
 */
import t from 'tap';
import { decode, span, toneShare } from '../harness/audio.js';
import { startApp, startSim } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { SipUac } from '../harness/sip-uac.js';

const sim = await startSim();
const app = await startApp(sim);
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
t.teardown(async () => {
  uac.stop();
  await app.stop();
  await sim.stop();
});

const fork = (ports: [number, number], laws: [string, string], version: number): string =>
  [
    'v=0',
    `o=SRC 1 ${version} IN IP4 127.0.0.1`,
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    ...ports.flatMap((p, i) => [`m=audio ${p} RTP/AVP ${laws[i] === 'PCMU' ? 0 : 8}`, `a=rtpmap:${laws[i] === 'PCMU' ? '0 PCMU' : '8 PCMA'}/8000`, `a=label:${i + 1}`, 'a=sendonly']),
    '',
  ].join('\r\n');

t.test('two m-lines: stereo by m-line; a re-INVITE with a new port and codec continues the file; maxtime ends it', async (t) => {
  const a = await RtpSender.open();
  const b = await RtpSender.open();
  const a2 = await RtpSender.open();
  t.teardown(() => [a, b, a2].forEach((s) => s.close()));
  const ruri = `sip:msml=f0f0f0f0@127.0.0.1:${sim.sipPort};dn=7002;record;tenant-dbid=1;media-service=record`;
  const inv = await uac.request('INVITE', ruri, { headers: { 'content-type': 'application/sdp' }, body: fork([a.port, b.port], ['PCMU', 'PCMU'], 1) });
  t.equal(inv.status, 200);
  const answer = String(inv.content);
  const ports = [...answer.matchAll(/^m=audio (\d+) RTP\/AVP (\d+)/gm)].map((m) => Number(m[1]));
  t.equal(ports.length, 2, 'two m-lines answered');
  t.equal((answer.match(/a=recvonly/g) ?? []).length, 2, 'each answered recvonly');
  t.match(answer, /a=label:1[\s\S]*a=label:2/, 'labels echoed');
  const dialog = uac.dialogOf(inv);
  const start = await uac.request('INFO', '', {
    dialog,
    headers: { 'content-type': 'application/vnd.radisys.msml+xml' },
    body: '<msml version="1.1"><dialogstart target="conf:f0f0f0f0" name="rec"><record format="audio/mp3" maxtime="6s"><recordexit><exit namelist="record.end record.len"/></recordexit></record></dialogstart></msml>',
  });
  t.match(String(start.content), /response="200"/);
  const playing = [a.play(ports[0], { law: 'PCMU', freq: 600, seconds: 2.5, ssrc: 0xa }), b.play(ports[1], { law: 'PCMU', freq: 1200, seconds: 7, ssrc: 0xb })];
  await playing[0];
  const re = await uac.request('INVITE', '', { dialog, headers: { 'content-type': 'application/sdp' }, body: fork([a2.port, b.port], ['PCMA', 'PCMU'], 2) });
  t.equal(re.status, 200, 're-INVITE accepted');
  t.match(String(re.content), /m=audio \d+ RTP\/AVP 8/, 'answered with PCMA on the first m-line');
  await a2.play(ports[0], { law: 'PCMA', freq: 600, seconds: 4, ssrc: 0xa2 });
  await playing[1];
  const exit = uac.received.find((r) => r.method === 'INFO' && /moml\.exit/.test(String(r.content)));
  t.ok(exit, 'moml.exit INFO received');
  t.match(String(exit?.content), /record\.complete\.maxlength/, 'record.end says maxtime');
  t.ok(uac.received.some((r) => r.method === 'INFO' && /msml\.dialog\.exit/.test(String(r.content))), 'msml.dialog.exit INFO received');
  t.equal((await uac.request('BYE', '', { dialog })).status, 200);
  const spooled = (await app.waitForLog(/recording spooled/)) as { mp3: string };
  const d = decode(spooled.mp3);
  t.equal(d.channels.length, 2, 'stereo');
  t.ok(Math.abs(d.seconds - 6) <= 0.1, `maxtime 6 s: decoded ${d.seconds.toFixed(3)} s`);
  // 100 ms windows: nearly all carry the right tone (a clock correction may put a phase step in one or two)
  const share = (ch: Int16Array, from: number, to: number, hz: number): number => {
    let good = 0;
    let all = 0;
    for (let s = from; s + 0.1 <= to; s += 0.1, all++) if (toneShare(span(ch, s, s + 0.1), hz) > 0.8) good++;
    return good / all;
  };
  for (const [from, to] of [[0.3, 2.3], [3.2, 5.8]]) {
    const f = share(d.channels[0], from, to, 600);
    t.ok(f >= 0.9, `left ${from}–${to} s: m-line 1 (600 Hz), before and after the transfer (${(f * 100).toFixed(0)} % of windows)`);
  }
  const r = share(d.channels[1], 0.3, 5.8, 1200);
  t.ok(r >= 0.9, `right: m-line 2 (1200 Hz) throughout (${(r * 100).toFixed(0)} % of windows)`);
});
