/**
 * The resource-manager shim in front of two recorder processes, each with its own drachtio simulator, and a real
 * redis-server holding the registry. SIPp sends every leg to the shim, which proxies it (record-routed) to a recorder:
 * calls spread by free capacity, both legs of a conf-id land together, a full cluster answers 503, a draining
 * recorder keeps its live call's next leg but gets no new call, and a recorder that died drops out.
 */
import { join } from 'node:path';
import t from 'tap';
import { redisServer } from '../harness/delivery-servers.js';
import { writeRtpPcap } from '../harness/pcap.js';
import { runSipp, startApp, startSim, tempDir, type AppProcess, type SippResult } from '../harness/recorder-harness.js';
import { PCMU_OFFER, SipUac } from '../harness/sip-uac.js';
import { siprecOffer } from '../harness/siprec-body.js';
import { sleep, until as waitUntil } from '../harness/until.js';

const redis = await redisServer();
const [simA, simB, simS] = [await startSim(), await startSim(), await startSim()];
const HEARTBEAT_MS = 500;
const cluster = (id: string, maxCalls: number): Record<string, string> => ({
  MSMLREC_CLUSTER_ENABLED: 'true',
  MSMLREC_CLUSTER_REDIS_URL: redis.url,
  MSMLREC_CLUSTER_ID: id,
  MSMLREC_CLUSTER_MAX_CALLS: String(maxCalls),
  MSMLREC_CLUSTER_HEARTBEAT_MS: String(HEARTBEAT_MS),
});
const recA = await startApp(simA, cluster('rec-a', 1));
const recB = await startApp(simB, cluster('rec-b', 3));
const shim = await startApp(simS, { MSMLREC_CLUSTER_REDIS_URL: redis.url }, ['rm-shim']);
t.teardown(async () => {
  for (const a of [recA, recB, shim]) await a.stop('SIGKILL');
  for (const s of [simA, simB, simS]) await s.stop();
  await redis.stop();
});

const sipTail = (a: AppProcess): string => a.logs.filter((l) => /INVITE|leg answered|refused|proxy/.test(l)).slice(-6).join('\n');
const until = (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> =>
  waitUntil(what, check, timeoutMs, () => `shim:\n${sipTail(shim)}\nrec-a:\n${sipTail(recA)}\nrec-b:\n${sipTail(recB)}`);
/** conf-ids of the legs a recorder answered. */
const legsOn = (app: AppProcess): string[] =>
  app.logs.flatMap((l) => {
    try {
      const o = JSON.parse(l) as { msg?: string; conf?: string };
      return o.msg === 'leg answered' && o.conf ? [o.conf] : [];
    } catch {
      return [];
    }
  });
/** The registry as the shim sees it (an OPTIONS makes it look again). */
const recorders = async (): Promise<{ id: string; draining: boolean; activeCalls: number }[]> => {
  const uac = await new SipUac(`127.0.0.1:${simS.sipPort}`).start();
  try {
    await uac.request('OPTIONS', `sip:127.0.0.1:${simS.sipPort}`);
  } finally {
    uac.stop();
  }
  return JSON.parse((await shim.ops('/status')).body).recorders;
};
const calls = async (app: AppProcess): Promise<number> => JSON.parse((await app.ops('/status')).body).calls;
const leg = (conf: string, dn: string, talkMs: number): Promise<SippResult> => runSipp(simS, 'rr-leg.xml', { conf, dn, talk_ms: talkMs }, { timeoutS: 40 });
const inviteStatus = async (conf: string): Promise<number | undefined> => {
  const uac = await new SipUac(`127.0.0.1:${simS.sipPort}`).start();
  try {
    return (await uac.request('INVITE', `sip:msml=${conf}@127.0.0.1:${simS.sipPort};dn=1;record`, { headers: { 'content-type': 'application/sdp' }, body: PCMU_OFFER })).status;
  } finally {
    uac.stop();
  }
};

await until('both recorders registered', async () => (await recorders()).length === 2);

t.test('calls spread by free capacity; both legs of a conf-id on one recorder; 503 when full', async (t) => {
  // rec-a takes 1 call, rec-b 3: expected placement c1 b, c2 b, c3 a (tie 1:1, lowest id), c4 b, then full
  const sipps: Promise<SippResult>[] = [];
  // a leg whose SIPp ended before it was placed fails at once, with what SIPp said
  const placed = async (what: string, sipp: Promise<SippResult>, check: () => boolean): Promise<void> => {
    let ended: SippResult | null = null;
    void sipp.then((r) => (ended = r));
    await until(what, () => {
      if (!check() && ended) throw new Error(`${what}: SIPp ended first (${ended.code}) ${ended.stderr.slice(-600)} ${ended.errors.slice(-600)}`);
      return check();
    });
  };
  for (const c of ['c1', 'c2', 'c3', 'c4']) {
    const conf = `${c}29460000054b3`;
    sipps.push(leg(conf, '7001', 5000));
    await placed(`${c} first leg placed`, sipps.at(-1)!, () => [...legsOn(recA), ...legsOn(recB)].includes(conf));
    sipps.push(leg(conf, '7002', 4500));
    await placed(`${c} second leg placed`, sipps.at(-1)!, () => [...legsOn(recA), ...legsOn(recB)].filter((x) => x === conf).length === 2);
  }
  t.same(legsOn(recA), ['c329460000054b3', 'c329460000054b3'], 'rec-a (room for 1) got c3, both legs');
  t.same(legsOn(recB), ['c129460000054b3', 'c129460000054b3', 'c229460000054b3', 'c229460000054b3', 'c429460000054b3', 'c429460000054b3'], 'rec-b (room for 3) got c1, c2, c4, both legs of each');
  t.equal(await inviteStatus('c529460000054b3'), 503, 'a fifth call: 503, no recorder has room');
  const results = await Promise.all(sipps);
  results.forEach((r, i) => t.equal(r.code, 0, `leg ${i + 1}: ACK, INFO and BYE followed the route set through the shim ${r.errors}`));
  t.ok(simS.routed.filter((r) => r.method === 'BYE').length >= 8, 'the shim forwarded the BYEs by their Route (record-routed)');
});

t.test('the recorder-side route set: its own MSML event reaches SIP Server through the shim', async (t) => {
  await until('calls ended', async () => (await calls(recA)) + (await calls(recB)) === 0);
  const pcap = join(tempDir('pcap'), 'tone.pcap');
  writeRtpPcap(pcap, { law: 'PCMU', tone: { freq: 600, amplitude: 8000 }, seconds: 3 });
  const before = simS.routed.filter((r) => r.method === 'INFO').length;
  const r = await runSipp(simS, 'rr-control-leg.xml', { conf: 'e129460000054b3', dn: '7001', talk_ms: 3000, pcap }, { timeoutS: 30 });
  t.equal(r.code, 0, `dialogstart, dialogend, then the recorder's msml.dialog.exit INFO arrived ${r.errors}`);
  t.ok(simS.routed.filter((x) => x.method === 'INFO').length >= before + 3, 'INFOs in both directions went through the shim');
});

t.test('a SIPREC INVITE (no conf-id) is proxied to a recorder and recorded there', async (t) => {
  const uac = await new SipUac(`127.0.0.1:${simS.sipPort}`).start();
  t.teardown(() => uac.stop());
  const offer = siprecOffer([{ port: 40300, label: '1' }, { port: 40302, label: '2' }], 'c2hpbS1zaXByZWM', [{ id: 'a', aor: 'sip:1@x', sends: ['1'] }, { id: 'b', aor: 'sip:2@x', sends: ['2'] }]);
  const inv = await uac.request('INVITE', `sip:srs@127.0.0.1:${simS.sipPort}`, { headers: { 'content-type': offer.contentType, require: 'siprec' }, body: offer.body });
  t.equal(inv.status, 200, `200 through the shim (${inv.headers.warning ?? ''})`);
  await until('a recorder answered it as SIPREC', () => [recA, recB].some((a) => a.logs.some((l) => l.includes('SIPREC session answered') && l.includes('c2hpbS1zaXByZWM'))));
  t.equal((await uac.request('BYE', '', { dialog: uac.dialogOf(inv) })).status, 200, 'BYE 200');
});

t.test('a draining recorder keeps its live call, gets no new one; a dead one drops out', async (t) => {
  await until('both idle in the registry', async () => (await recorders()).every((e) => e.activeCalls === 0));
  const d1 = 'd129460000054b3';
  const first = leg(d1, '7001', 6000);
  await until('d1 on rec-b', () => legsOn(recB).includes(d1));
  const bExit = new Promise<number | null>((r) => recB.proc.once('exit', (c) => r(c)));
  recB.proc.kill('SIGTERM');
  await recB.waitForLog(/draining/);
  await until('shim sees rec-b draining', async () => (await recorders()).some((e) => e.id === 'rec-b' && e.draining));
  const second = leg(d1, '7002', 3000);
  await until('d1 second leg placed', () => legsOn(recB).filter((x) => x === d1).length === 2 || legsOn(recA).includes(d1));
  t.equal(legsOn(recB).filter((x) => x === d1).length, 2, "the live call's second leg still went to the draining recorder");
  const d2 = 'd229460000054b3';
  const other = leg(d2, '7001', 1000);
  await until('d2 placed', () => legsOn(recA).includes(d2) || legsOn(recB).includes(d2));
  t.ok(legsOn(recA).includes(d2) && !legsOn(recB).includes(d2), 'a new call went to rec-a, not to the draining rec-b');
  t.equal(await inviteStatus('d329460000054b3'), 503, 'rec-a full and rec-b draining: 503');
  for (const r of await Promise.all([first, second, other])) t.equal(r.code, 0, `call completed ${r.errors}`);
  t.equal(await bExit, 0, 'rec-b exited 0 once its call ended');
  await until('rec-b gone from the registry', async () => !(await recorders()).some((e) => e.id === 'rec-b'));
  t.pass('rec-b removed its entry on exit');

  // a recorder that dies without a word (SIGKILL) expires after three missed heartbeats
  await until('rec-a idle in the registry', async () => (await recorders()).some((e) => e.id === 'rec-a' && e.activeCalls === 0));
  await recA.stop('SIGKILL');
  const t0 = Date.now();
  t.ok((await recorders()).some((e) => e.id === 'rec-a'), 'just killed: still in the registry');
  await until('rec-a expired', async () => !(await recorders()).some((e) => e.id === 'rec-a'), HEARTBEAT_MS * 3 + 5000);
  const gone = Date.now() - t0;
  t.ok(gone <= HEARTBEAT_MS * 3 + 1000, `dropped out ${gone} ms after its last beat (expiry ${HEARTBEAT_MS * 3} ms)`);
  t.equal(await inviteStatus('f129460000054b3'), 503, 'no recorder left: 503');
});

t.test('a recorder that died a moment ago: its drachtio answers 503, the shim fails over to the next one', async (t) => {
  const [simC, simD] = [await startSim(), await startSim()];
  const recC = await startApp(simC, cluster('rec-c', 5));
  const recD = await startApp(simD, cluster('rec-d', 2));
  t.teardown(async () => {
    for (const a of [recC, recD]) await a.stop('SIGKILL');
    for (const s of [simC, simD]) await s.stop();
  });
  await until('rec-c and rec-d registered', async () => (await recorders()).filter((e) => e.id === 'rec-c' || e.id === 'rec-d').length === 2);
  // rec-c (most room) dies; its entry stays until it expires, and its pod's drachtio-server still answers (503)
  await recC.stop('SIGKILL');
  t.ok((await recorders()).some((e) => e.id === 'rec-c'), 'rec-c still in the registry');
  const uac = await new SipUac(`127.0.0.1:${simS.sipPort}`).start();
  t.teardown(() => uac.stop());
  const rs = await uac.request('INVITE', `sip:msml=g129460000054b3@127.0.0.1:${simS.sipPort};dn=1;record`, { headers: { 'content-type': 'application/sdp' }, body: PCMU_OFFER });
  t.equal(rs.status, 200, 'the call is answered');
  await until('answered by rec-d', () => legsOn(recD).includes('g129460000054b3'));
  await until('the shim logged rec-c as failed', () => shim.logs.some((l) => l.includes('recorder failed the INVITE') && l.includes('rec-c')));
  t.pass('answered by rec-d after rec-c failed it (503 from its drachtio-server)');
  // until rec-c beats again (it will not), new calls go straight to rec-d
  const before = simC.frames.length;
  const rs2 = await uac.request('INVITE', `sip:msml=g229460000054b3@127.0.0.1:${simS.sipPort};dn=1;record`, { headers: { 'content-type': 'application/sdp' }, body: PCMU_OFFER });
  t.equal(rs2.status, 200, 'a second call answered');
  await until('second call on rec-d', () => legsOn(recD).includes('g229460000054b3'));
  t.equal(simC.frames.length, before, 'rec-c was not tried again');
  for (const r of [rs, rs2]) await uac.request('BYE', '', { dialog: uac.dialogOf(r) });
});
