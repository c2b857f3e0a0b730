/**
 * Operating the recorder: Prometheus metrics scraped during and after a SIPp call (compared with what was sent),
 * health endpoints, and graceful drain on SIGTERM (and a second SIGTERM) with delivery to real Redis, Apache
 * mod_dav and a metadata receiver.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { davServer, metadataReceiver, redisServer } from '../harness/delivery-servers.js';
import { writeRtpPcap } from '../harness/pcap.js';
import { delta, parsePromText } from '../harness/prom-text.js';
import { runSipp, startApp, startSim, tempDir, type AppProcess } from '../harness/recorder-harness.js';
import { PCMU_OFFER, SipUac } from '../harness/sip-uac.js';
import { sleep, until } from '../harness/until.js';

const sim = await startSim();
const redis = await redisServer();
const dav = await davServer();
const meta = await metadataReceiver();
const env = (spoolDir: string): Record<string, string> => ({
  MSMLREC_SPOOL_DIR: spoolDir,
  MSMLREC_DELIVERY_ENABLED: 'true',
  MSMLREC_DELIVERY_REDIS_URL: redis.url,
  MSMLREC_DELIVERY_QUEUE: 'ops-test',
  MSMLREC_DELIVERY_WEBDAV_URL: dav.url,
  MSMLREC_DELIVERY_WEBDAV_USER: dav.user,
  MSMLREC_DELIVERY_WEBDAV_PASSWORD: dav.password,
  MSMLREC_DELIVERY_METADATA_URL: meta.url,
  MSMLREC_DELIVERY_BACKOFF_MS: '200',
  MSMLREC_DELIVERY_SWEEP_MS: '300',
});
const apps: AppProcess[] = [];
t.teardown(async () => {
  for (const a of apps) await a.stop('SIGKILL');
  await sim.stop();
  await dav.stop();
  await meta.stop();
  await redis.stop();
});

const posted = (conf: string): boolean => meta.posts.some((p) => JSON.stringify(p.body).includes(conf));
const scrape = async (app: AppProcess): Promise<Map<string, number>> => parsePromText((await app.ops('/metrics')).body);
const exitCode = (app: AppProcess): Promise<number | null> =>
  app.proc.exitCode !== null ? Promise.resolve(app.proc.exitCode) : new Promise((r) => app.proc.once('exit', (c) => r(c)));

t.test('metrics during and after a SIPp call moved by what the call did', async (t) => {
  const app = await startApp(sim, env(tempDir('spool-ops')));
  apps.push(app);
  t.equal((await app.ops('/livez')).status, 200, '/livez 200');
  await until('ready', async () => (await app.ops('/readyz')).status === 200, 10_000);
  t.pass('/readyz 200 once connected to drachtio and Redis');
  t.equal((await app.ops('/nope')).status, 404, 'unknown path 404');

  const dir = tempDir('pcap');
  const pcap = join(dir, 'tone.pcap');
  // 5 s of tone, every 25th packet missing (10 of 250): the call lasts ~6.5 s, so the pcap is sent in full
  const packets = writeRtpPcap(pcap, { law: 'PCMU', tone: { freq: 1000, amplitude: 8000 }, seconds: 5, lossEvery: 25, lossAt: 7 });
  t.equal(packets.length, 240);
  const before = await scrape(app);
  const conf = '66c29460000054b3';
  const sipp = runSipp(sim, 'record-call.xml', { conf, pcap, pause_at: 2000, paused_ms: 1500, rest_ms: 3000 });
  await app.waitForLog(/recording started/);
  await sleep(2500);
  const during = await scrape(app);
  t.equal(during.get('msmlrec_calls_active'), 1, 'during: one call');
  t.equal(during.get('msmlrec_legs_active'), 1, 'during: one leg');
  t.equal(during.get('msmlrec_recordings_active'), 1, 'during: one recording');
  t.equal(delta(before, during, 'msmlrec_rtp_ports_in_use'), 1, 'during: one RTP port in use');
  t.equal(delta(before, during, 'msmlrec_rtp_ports_free'), -1, '... one fewer free');
  t.equal(delta(before, during, 'msmlrec_invites_total{status="200"}'), 1, 'during: one INVITE answered 200');
  t.equal(delta(before, during, 'msmlrec_msml_requests_total{verb="dialogstart",result="200"}'), 1, 'during: one dialogstart, 200');
  const midPackets = delta(before, during, 'msmlrec_rtp_packets_total');
  t.ok(midPackets > 50 && midPackets < 240, `during: packets counted as they arrive (${midPackets})`);
  t.ok((during.get('msmlrec_encode_lag_seconds') ?? 99) < 1, 'during: encoding keeps up');
  const heaps = [...during].filter(([k]) => k.startsWith('msmlrec_thread_heap_used_bytes{'));
  const threads = heaps.map(([k]) => /thread="([^"]+)"/.exec(k)?.[1]).sort();
  t.ok(threads.includes('main') && threads.includes('media-0') && threads.some((x) => x?.startsWith('encoder-0.')), `heap used per JavaScript thread: ${threads.join(', ')}`);
  t.ok(heaps.every(([, v]) => v > 1e6 && v < 1e9), `each a plausible heap (${heaps.map(([, v]) => (v / 2 ** 20).toFixed(1)).join(', ')} MB)`);
  t.ok((during.get('msmlrec_thread_external_bytes{thread="encoder-0.0"}') ?? 0) > 0, "an encoder thread's external memory (its WebAssembly memory) is exported");

  const r = await sipp;
  t.equal(r.code, 0, `SIPp scenario passed ${r.errors}`);
  const fin = await app.waitForLog(/recording spooled/);
  await until('metadata posted', () => posted(conf));
  await until('spool empty', async () => (await scrape(app)).get('msmlrec_spool_pending_recordings') === 0);
  const after = await scrape(app);
  const dur = Number(fin.durationMs) / 1000;
  t.equal(after.get('msmlrec_calls_active'), 0, 'after: no call');
  t.equal(after.get('msmlrec_recordings_active'), 0, 'after: no recording');
  t.equal(delta(before, after, 'msmlrec_rtp_ports_in_use'), 0, 'after: the port is back');
  t.equal(delta(before, after, 'msmlrec_rtp_packets_total'), 240, 'after: every packet sent was counted (240)');
  t.equal(delta(before, after, 'msmlrec_rtp_lost_total'), 10, 'after: the 10 missing packets counted as lost');
  t.equal(delta(before, after, 'msmlrec_rtp_duplicates_total'), 0, 'no duplicates');
  t.equal(delta(before, after, 'msmlrec_msml_requests_total{verb="send",result="200"}'), 2, 'pause and resume: two sends, 200');
  t.equal(delta(before, after, 'msmlrec_recordings_total{reason="record.terminate"}'), 1, 'one recording finished');
  t.ok(Math.abs(delta(before, after, 'msmlrec_recorded_seconds_total') - dur) < 0.01, `recorded seconds = the recording's duration (${dur} s)`);
  // the right channel (no second party) is silent all along; the left misses 10 packets and the 1.5 s after the tone
  const silence = delta(before, after, 'msmlrec_silence_filled_seconds_total');
  const expected = dur + (dur - 5) + 10 * 0.02;
  t.ok(Math.abs(silence - expected) < 0.35, `silence filled ${silence.toFixed(2)} s ≈ ${expected.toFixed(2)} s`);
  t.equal(after.get('msmlrec_audio_dropped_late_seconds_total'), 0, 'no audio dropped as late (the counter is exported)');
  t.equal(delta(before, after, 'msmlrec_upload_duration_seconds_count{stage="put"}'), 1, 'one WebDAV upload timed');
  t.equal(delta(before, after, 'msmlrec_upload_duration_seconds_count{stage="metadata"}'), 1, 'one metadata POST timed');
  t.equal(after.get('msmlrec_redis_connected'), 1, 'redis connected');
  t.ok((after.get('msmlrec_delivery_jobs{state="completed"}') ?? 0) >= 1, 'BullMQ job counts exported');
  t.ok((after.get('msmlrec_process_resident_memory_bytes') ?? 0) > 0, 'process metrics exported');
  await app.stop();
});

t.test('SIGTERM drains: not ready, new calls 503, the live call completes and is delivered, exit 0', async (t) => {
  const spool = tempDir('spool-drain');
  const app = await startApp(sim, env(spool));
  apps.push(app);
  await until('ready', async () => (await app.ops('/readyz')).status === 200, 10_000);
  const pcap = join(tempDir('pcap'), 'tone.pcap');
  writeRtpPcap(pcap, { law: 'PCMU', tone: { freq: 800, amplitude: 8000 }, seconds: 7 });
  const conf = '77c29460000054b3';
  const sipp = runSipp(sim, 'record-call.xml', { conf, pcap, pause_at: 1000, paused_ms: 500, rest_ms: 5000 });
  await app.waitForLog(/recording started/);
  await sleep(500);
  const exited = exitCode(app);
  app.proc.kill('SIGTERM');
  await app.waitForLog(/draining/);
  const ready = await app.ops('/readyz');
  t.equal(ready.status, 503, '/readyz 503 while draining');
  t.match(ready.body, /draining/, '... saying why');
  t.equal((await app.ops('/livez')).status, 200, '/livez still 200');
  const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
  const refused = await uac.request('INVITE', `sip:msml=88c29460000054b3@127.0.0.1:${sim.sipPort};dn=1;record`, { headers: { 'content-type': 'application/sdp' }, body: PCMU_OFFER });
  uac.stop();
  t.equal(refused.status, 503, 'a new call gets 503 while draining');
  t.equal(app.proc.exitCode, null, 'the process waits for the live call');
  const r = await sipp;
  t.equal(r.code, 0, `the live call ran to its end ${r.errors}`);
  t.equal(await exited, 0, 'exit code 0 after the call');
  t.ok(posted(conf), "the live call's recording was delivered before exit");
  t.same(readdirSync(spool).filter((n) => !n.startsWith('.')), [], 'nothing left in the spool');
});

t.test('a second SIGTERM finalizes at once and loses nothing: the next start delivers it', async (t) => {
  const spool = tempDir('spool-drain2');
  const app = await startApp(sim, { ...env(spool), MSMLREC_DELIVERY_METADATA_URL: 'http://127.0.0.1:9/unreachable', MSMLREC_DELIVERY_TIMEOUT_MS: '500' });
  apps.push(app);
  const pcap = join(tempDir('pcap'), 'tone.pcap');
  writeRtpPcap(pcap, { law: 'PCMU', tone: { freq: 800, amplitude: 8000 }, seconds: 10 });
  const conf = '99c29460000054b3';
  const sipp = runSipp(sim, 'record-call.xml', { conf, pcap, pause_at: 1000, paused_ms: 500, rest_ms: 8000 }, { timeoutS: 30 });
  await app.waitForLog(/recording started/);
  await sleep(2000);
  const exited = exitCode(app);
  app.proc.kill('SIGTERM');
  await app.waitForLog(/draining/);
  app.proc.kill('SIGTERM');
  t.equal(await exited, 0, 'exit 0 after the second SIGTERM, mid-call');
  const spooled = readdirSync(spool);
  const sidecar = spooled.find((n) => n.endsWith('.json') && !n.endsWith('.open.json'));
  t.ok(sidecar, `the recording is finalized in the spool (${spooled.join(', ')})`);
  t.notOk(spooled.some((n) => n.endsWith('.part') || n.endsWith('.open.json')), 'no unfinished file');
  await sipp; // SIPp's BYE gets no answer now; its outcome does not matter
  const next = await startApp(sim, env(spool));
  apps.push(next);
  await until('delivered by the next start', () => posted(conf));
  await until('spool empty', () => !existsSync(join(spool, sidecar as string)));
  t.pass('delivered after restart');
  await next.stop();
});
