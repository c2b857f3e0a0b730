/**
 * Fuzz families sent end to end, through the drachtio simulator and real SIP and RTP sockets, to one recorder
 * process: INVITEs with mutated Request-URIs and SDP, INFOs with mutated MSML and re-INVITEs with mutated SDP on a
 * live dialog, SIPREC INVITEs, re-INVITEs and UPDATEs with mutated vendor bodies, and datagrams that are not usable RTP to a recorded call's port while it plays a tone. Each request
 * must get a final answer, the process must stay up, the recorded call must keep its tone, and a good call made
 * afterwards must record correctly. Seeded like the parser suite (FUZZ_SEED replays a run).
 */
import { createSocket } from 'node:dgram';
import * as sip from 'sip';
import t from 'tap';
import { buildRtp } from '../../src/media/rtp-packet.js';
import { decode, medianToneShare, rmsDb, span } from '../harness/audio.js';
import { fuzzer, msmlSeeds, sdpSeeds, SEED } from '../harness/fuzz-input.js';
import { parsePromText } from '../harness/prom-text.js';
import { startApp, startSim } from '../harness/recorder-harness.js';
import { childPlayer } from '../harness/rtp-play-child.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { PCMU_OFFER, SipUac, type UacDialog } from '../harness/sip-uac.js';
import { siprecSeeds } from '../harness/siprec-body.js';
import { until } from '../harness/until.js';

const { rand, int, pick, mutate } = fuzzer(SEED + 1);
/** The RTP spray runs beside the SIP families: its own generator keeps each family's inputs the same run to run. */
const spray = fuzzer(SEED + 2);
const sim = await startSim();
const app = await startApp(sim);
const server = `127.0.0.1:${sim.sipPort}`;
const uac = await new SipUac(server).start();
t.teardown(async () => {
  uac.stop();
  await app.stop();
  await sim.stop();
});
const ruri = (conf: string): string => `sip:msml=${conf}@${server};dn=8463376;record;tenant-dbid=1;media-service=record`;
const sdpType = { 'content-type': 'application/sdp' };
const msmlType = { 'content-type': 'application/vnd.radisys.msml+xml' };
const metric = async (name: string): Promise<number> => parsePromText((await app.ops('/metrics')).body).get(name) ?? 0;
const context = (): string => app.logs.slice(-10).join('\n');
/** What can stand in a SIP start line without breaking the message itself (drachtio-server refuses the rest). */
const uriSafe = (s: string): string => s.replace(/[\s\0-\x1f\x7f-\uffff<>"]/g, '');
/** The spool log line of the recording of `conf` (others may be spooled meanwhile: the fuzzed dialogstarts). */
const spooledFor = async (conf: string): Promise<{ mp3: string }> => {
  const find = (): { mp3: string } | undefined =>
    app.logs.map((l) => { try { return JSON.parse(l) as { msg: string; mp3: string }; } catch { return undefined; } })
      .find((o) => o?.msg === 'recording spooled' && o.mp3.includes(`/${conf}_`));
  await until(`${conf} spooled`, () => find() !== undefined, 30_000, context);
  return find() as { mp3: string };
};
const dialogstart = (conf: string): string => `<msml version="1.1"><dialogstart target="conf:${conf}" name="rec"><record/></dialogstart></msml>`;

async function recordedCall<P extends { port: number }>(conf: string, open: () => Promise<P>): Promise<{ dialog: UacDialog; port: number; rtp: P }> {
  const rtp = await open();
  const inv = await uac.request('INVITE', ruri(conf), { headers: sdpType, body: PCMU_OFFER.replace('40000', String(rtp.port)) });
  if (inv.status !== 200) throw new Error(`INVITE ${inv.status}`);
  const dialog = uac.dialogOf(inv);
  const r = await uac.request('INFO', '', { dialog, headers: msmlType, body: dialogstart(conf) });
  if (!/response="200"/.test(String(r.content))) throw new Error(`dialogstart: ${r.content}`);
  return { dialog, port: Number(/m=audio (\d+)/.exec(String(inv.content))?.[1]), rtp };
}

/** Datagrams a recorder must drop without effect: too short, not version 2, lying lengths, payload types not negotiated. */
function badDatagram(): Buffer {
  const header = (b0: number, pt: number, len: number): Buffer => {
    const b = Buffer.from(Array.from({ length: len }, () => spray.int(256)));
    if (len > 0) b[0] = b0;
    if (len > 1) b[1] = (spray.int(2) << 7) | pt;
    return b;
  };
  switch (spray.int(6)) {
    case 0:
      return Buffer.from(Array.from({ length: spray.int(12) }, () => spray.int(256)));
    case 1:
      return header(spray.pick([0, 1, 3]) << 6 | spray.int(64), spray.int(128), 12 + spray.int(200));
    case 2:
      return header(0x80 | 0x0f, 0, 12 + spray.int(40)); // 15 CSRCs in a datagram too short for them
    case 3: {
      const b = header(0x90, 0, 20 + spray.int(40)); // an extension whose length runs past the end
      b[14] = 0xff;
      b[15] = 0xff;
      return b;
    }
    case 4: {
      const b = header(0xa0, 0, 13 + spray.int(40)); // padding longer than the payload
      b[b.length - 1] = 255;
      return b;
    }
    default:
      // well-formed RTP of a payload type the call did not negotiate (comfort noise, a dynamic type), another SSRC
      return buildRtp({ payloadType: spray.pick([13, 18, 96, 110, 127]), marker: false, sequence: spray.int(65536), timestamp: spray.int(2 ** 32), ssrc: spray.int(2 ** 32), payload: Buffer.alloc(spray.int(200)) });
  }
}

t.test('fuzzed INVITEs, INFOs, re-INVITEs and RTP: every request answered, the recorder up, the live recording intact', async (t) => {
  // the tone comes from a process of its own: this one is busy fuzzing, and its stalls must not be the recorder's
  const live = await recordedCall('fzlive', childPlayer);
  const tone = live.rtp.play(live.port, { law: 'PCMU', freq: 700, seconds: 8, ssrc: 77 });

  // RTP family: 3,000 bad datagrams to the recorded call's port while its tone plays, from another socket
  const noise = createSocket('udp4');
  await new Promise<void>((r) => noise.bind(0, '127.0.0.1', () => r()));
  const malformedBefore = await metric('msmlrec_rtp_malformed_total');
  let badSent = 0;
  const spraying = (async () => {
    for (let burst = 0; burst < 60; burst++) {
      for (let k = 0; k < 50; k++) {
        const d = badDatagram();
        noise.send(d, live.port, '127.0.0.1');
        badSent++;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  // a second call, not recorded, takes the INFO and re-INVITE families
  const victim = await uac.request('INVITE', ruri('fzvictim'), { headers: sdpType, body: PCMU_OFFER });
  t.equal(victim.status, 200, 'the fuzzed dialog is set up');
  const vd = uac.dialogOf(victim);
  const statuses = new Map<string, number[]>();
  const answered = (family: string, status: number): void => {
    const s = statuses.get(family) ?? [];
    s.push(status);
    statuses.set(family, s);
  };
  for (let i = 0; i < 150; i++) {
    // no seed that ends or pauses a recording: the victim's own dialogstart may run, the live call is another conf
    const body = mutate(pick(msmlSeeds)).replace(/conf:[0-9a-zA-Z]+/g, 'conf:fzvictim');
    const r = await uac.request('INFO', '', { dialog: vd, headers: msmlType, body });
    answered('INFO', r.status as number);
    const code = Number(/response="(\d+)"/.exec(String(r.content))?.[1] ?? 0);
    // an INFO whose body was mutated away entirely gets a bare SIP 200 (nothing to answer in MSML)
    answered('MSML result', code === 0 ? (r.status as number) : code);
  }
  for (let i = 0; i < 80; i++) {
    const r = await uac.request('INVITE', '', { dialog: vd, headers: sdpType, body: mutate(pick(sdpSeeds)) });
    answered('re-INVITE', r.status as number);
  }
  for (let i = 0; i < 120; i++) {
    const fuzzUri = rand() < 0.5;
    // the user part and the parameters are fuzzed, the host:port is kept (else the request goes elsewhere)
    const uri = fuzzUri
      ? `sip:${uriSafe(mutate(`msml=fz${i}`))}@${server};${uriSafe(mutate('dn=8463376;record;tenant-dbid=1;media-service=record;gvp-tenant-id=Environment.IVRProfile1'))}`
      : ruri(`fzinv${i}`);
    // a URI with no host at all is refused by drachtio-server (and cannot be sent by the test's SIP stack)
    if (!sip.parseUri(uri)?.host) continue;
    const body = fuzzUri ? PCMU_OFFER : mutate(pick(sdpSeeds));
    const r = await uac.request('INVITE', uri, { headers: sdpType, body });
    answered('INVITE', r.status as number);
    if (r.status === 408) t.comment(`no answer to INVITE ${JSON.stringify(uri)} ${JSON.stringify(body)}`);
    if ((r.status as number) < 300) await uac.request('BYE', '', { dialog: uac.dialogOf(r) });
  }
  // SIPREC family: mutated vendor INVITE bodies (Content-Type mutated now and then) to the SRS URI, then mutated
  // re-INVITEs and UPDATEs (multipart, SDP or metadata alone) on a live SIPREC session
  for (let i = 0; i < 80; i++) {
    const seed = pick(siprecSeeds);
    const contentType = uriSafe(rand() < 0.1 ? mutate(seed.contentType) : seed.contentType).replace(/;+$/, '') || 'application/sdp';
    const r = await uac.request('INVITE', `sip:srs@${server}`, { headers: { 'content-type': contentType, require: 'siprec' }, body: mutate(seed.body) });
    answered('SIPREC INVITE', r.status as number);
    if ((r.status as number) < 300) await uac.request('BYE', '', { dialog: uac.dialogOf(r) });
  }
  const src = siprecSeeds[0];
  const sr = await uac.request('INVITE', `sip:srs@${server}`, { headers: { 'content-type': src.contentType }, body: src.body });
  t.equal(sr.status, 200, 'a SIPREC session is set up for the in-dialog family');
  const sd = uac.dialogOf(sr);
  for (let i = 0; i < 60; i++) {
    const seed = pick(siprecSeeds);
    const [method, ct, body] = pick([
      ['INVITE', seed.contentType, seed.body],
      ['UPDATE', seed.contentType, seed.body],
      ['UPDATE', 'application/rs-metadata+xml', seed.body.slice(seed.body.indexOf('<?xml'))],
      ['INVITE', 'application/sdp', pick(sdpSeeds)],
    ] as const);
    const r = await uac.request(method, '', { dialog: sd, headers: { 'content-type': ct }, body: mutate(body) });
    answered(method === 'INVITE' ? 'SIPREC re-INVITE' : 'SIPREC UPDATE', r.status as number);
  }
  t.equal((await uac.request('BYE', '', { dialog: sd })).status, 200, 'the fuzzed SIPREC session ends with its BYE');
  await spraying;
  noise.close();
  for (const [family, s] of statuses) {
    t.ok(s.every((c) => c >= 200 && c < 700 && c !== 408), `${family}: ${s.length} requests, each with a final answer (${[...new Set(s)].sort().join(', ')})`);
    t.notOk(s.some((c) => c >= 500), `${family}: no 5xx (the recorder never failed on its input)`);
  }
  t.equal(app.proc.exitCode, null, 'the recorder is up');
  await until('the bad datagrams counted', async () => (await metric('msmlrec_rtp_malformed_total')) > malformedBefore, 5000, context);
  t.comment(`${badSent} bad datagrams sent, ${(await metric('msmlrec_rtp_malformed_total')) - malformedBefore} counted malformed (the rest: not negotiated, ignored)`);

  await tone;
  await uac.request('BYE', '', { dialog: live.dialog });
  await uac.request('BYE', '', { dialog: vd });
  const rec = await spooledFor('fzlive');
  const audio = decode(rec.mp3);
  t.ok(audio.seconds > 7.5, `the live recording plays ${audio.seconds.toFixed(2)} s`);
  const left = audio.channels[0];
  // no hole (every 20 ms at the tone's level) and nothing else in it (the median 100 ms window is the pure tone); a
  // clock correction's phase step, harmless, would lower one long window's share, so none is required of each
  let quietest = Number.POSITIVE_INFINITY;
  for (let s = 0.3; s + 0.02 < 7.5; s += 0.02) quietest = Math.min(quietest, rmsDb(span(left, s, s + 0.02)));
  t.ok(quietest > -20, `no hole in the live recording through the fuzzing (quietest 20 ms: ${quietest.toFixed(1)} dBFS)`);
  const share = medianToneShare(left, 700, 0.3, 7.5);
  t.ok(share > 0.95, `its 700 Hz tone is untouched (median 100 ms share ${share.toFixed(3)})`);
  await until('all calls ended', async () => (await metric('msmlrec_calls_active')) === 0, 10_000, context);
  t.equal(await metric('msmlrec_rtp_ports_in_use'), 0, 'every RTP port is free again');
});

t.test('a good call after the fuzzing records correctly', async (t) => {
  const c = await recordedCall('fzafter', () => RtpSender.open());
  await c.rtp.play(c.port, { law: 'PCMU', freq: 500, seconds: 3, ssrc: 9 });
  await uac.request('BYE', '', { dialog: c.dialog });
  c.rtp.close();
  const audio = decode((await spooledFor('fzafter')).mp3);
  t.ok(Math.abs(audio.seconds - 3) < 0.4, `plays ${audio.seconds.toFixed(2)} s`);
  t.ok(medianToneShare(audio.channels[0], 500, 0.3, 2.7) > 0.9, 'its tone is there');
});
