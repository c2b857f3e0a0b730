/**
 * Soak (`npm run soak`): does the recorder give back everything it took? SOAK_CALLS (100) relayed two-party calls are
 * kept up for SOAK_MINUTES (60), each lasting SOAK_MIN_S..SOAK_MAX_S (30-300 s) and replaced when it ends; every 4th
 * call pauses and resumes its recording, every 4th (another) puts its second party on hold with a re-INVITE (a=inactive;
 * that phone stops sending) and takes it back. The phones are the load bench's independent generator
 * (`rtp-generator.ts`), SIP Server and drachtio-server are this process and the simulator, the recorder is the compiled
 * build delivering to Redis + Apache mod_dav + a Recording Processor stand-in.
 *
 * Every SOAK_SAMPLE_S (10) the recorder's RSS, heap used, external memory, open file descriptors, RTP ports in use,
 * live sessions and the spool's size are sampled. After the last call and its delivery, SOAK_SETTLE_S (180) of quiet,
 * then the verdict:
 * - every recording whole (its length, both parties audible in every 10 ms window outside a pause and, for the held
 *   party, the hold; each party on its own channel) and delivered once (one PUT, one metadata POST);
 * - RSS, heap, external memory and FDs back to the baseline (at most 5 % above), ports and sessions back to 0. The
 *   baseline is the idle recorder after a warm-up (the same load for SOAK_WARMUP_S, twice the longest call: 600 s)
 *   and SOAK_SETTLE_S of quiet, as before the final sample: what the first calls take once and keep (code run for
 *   the first time, JIT code, the allocator's high water mark) is no leak. Twice the longest call, because the load
 *   is steady only once every call of the ramp has ended and been replaced (a 3-minute warm-up ended while half of
 *   them were still up); the recorder before any call is sampled too and reported ("cold"), with where its RSS is;
 * - RSS growth between minute 10 and the last minute of calls under 5 % (for shorter runs: a sixth of the run).
 * The report goes to stdout and bench/soak.md (SOAK_REPORT); the exit code is 1 if a check failed.
 */
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { decode, medianToneShare } from '../test/harness/audio.js';
import { davServer, metadataReceiver, redisServer } from '../test/harness/delivery-servers.js';
import { parsePromText } from '../test/harness/prom-text.js';
import { ROOT, startApp, startSim } from '../test/harness/recorder-harness.js';
import { SipUac, statusText, type UacDialog } from '../test/harness/sip-uac.js';
import { sleep } from '../test/harness/until.js';
import { silentWindows } from './audible-windows.js';
import { admissionEnv, compiledRecorderArgs, layOutCompiledRecorder } from './compiled-recorder.js';
import { Phones } from './phones.js';
import { openFds, rssMb, rssParts } from './proc-stats.js';

const CALLS = Number(process.env.SOAK_CALLS ?? 100);
const MINUTES = Number(process.env.SOAK_MINUTES ?? 60);
const MIN_S = Number(process.env.SOAK_MIN_S ?? 30);
const MAX_S = Number(process.env.SOAK_MAX_S ?? 300);
const SAMPLE_S = Number(process.env.SOAK_SAMPLE_S ?? 10);
/**
 * Quiet after the last delivery before the final sample, s. An idle thread gives its garbage back when V8's memory
 * reducer runs (10-70 s after the thread went quiet, seen per thread): 60 s was too short to see it in every thread.
 */
const SETTLE_S = Number(process.env.SOAK_SETTLE_S ?? 180);
/** The warm-up before the baseline, s (0: none; the baseline is then the recorder that never had a call). */
const WARMUP_S = Number(process.env.SOAK_WARMUP_S ?? 2 * MAX_S);
/** Set-up rate of the first calls, calls/s. */
const RAMP_RATE = 5;
const HOLD_S = 5;
const FREQ = { a: 500, b: 1100 };
/** The recorder's RTP ports (SOAK_RTP_MIN: another soak beside this one takes another range). */
const RTP_MIN = Number(process.env.SOAK_RTP_MIN ?? 24000);
const RTP_MAX = RTP_MIN + 1999;
/** Where the report goes. */
const REPORT = process.env.SOAK_REPORT ?? join(ROOT, 'bench/soak.md');
const TOLERANCE = 0.05;
/** glibc's malloc settings from the soak's environment, passed on to the recorder. */
const mallocEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^MALLOC_|^GLIBC_TUNABLES$/.test(k))) as Record<string, string>;

interface Sample {
  /** Seconds since the first call began. */
  t: number;
  rssMb: number;
  heapMb: number;
  /** V8 heap reserved (committed) summed over the threads: what of the heaps counts in the RSS. */
  heapTotalMb: number;
  externalMb: number;
  fds: number;
  ports: number;
  sessions: number;
  spoolMb: number;
  /** Heap used per JavaScript thread, MB. */
  byThread: Record<string, number>;
  /** Heap reserved per JavaScript thread, MB. */
  totalByThread: Record<string, number>;
  /** Our calls up at the time. */
  calls: number;
}

interface CallRecord {
  conf: string;
  seconds: number;
  pauses: boolean;
  holds: boolean;
  /** Wall clock (ms) of the hold and unhold re-INVITEs' answers, and when both phones stopped. */
  holdAt?: number;
  unholdAt?: number;
  endedAt?: number;
  error?: string;
}

/** A seeded PRNG (mulberry32): the same calls in every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sdp = (port: number, version: number, direction: string): string =>
  `v=0\r\no=- 1 ${version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=${direction}\r\n`;
const MSML = { 'content-type': 'application/vnd.radisys.msml+xml' };

const dirBytes = (dir: string): number => {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    try {
      n += e.isDirectory() ? dirBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
    } catch {
      // gone meanwhile
    }
  }
  return n;
};

async function main(): Promise<void> {
  const started = Date.now();
  const load = loadavg();
  process.stderr.write(`msml-recorder soak: ${CALLS} calls of ${MIN_S}-${MAX_S} s for ${MINUTES} min, a sample every ${SAMPLE_S} s (load average ${load.map((x) => x.toFixed(2)).join(' ')})\n`);
  const image = await layOutCompiledRecorder();
  const sim = await startSim();
  const redis = await redisServer();
  const dav = await davServer();
  const meta = await metadataReceiver();
  const app = await startApp(
    sim,
    {
      MSMLREC_LOG_LEVEL: 'info',
      MSMLREC_MEDIA_UDP: 'native',
      MSMLREC_ENCODER_WORKERS: '0',
      MSMLREC_RTP_PORT_MIN: String(RTP_MIN),
      MSMLREC_RTP_PORT_MAX: String(RTP_MAX),
      MSMLREC_RECORDING_FORMAT: 'mp3-16-stereo',
      MSMLREC_DELIVERY_ENABLED: 'true',
      MSMLREC_DELIVERY_REDIS_URL: redis.url,
      MSMLREC_DELIVERY_QUEUE: 'soak',
      MSMLREC_DELIVERY_WEBDAV_URL: dav.url,
      MSMLREC_DELIVERY_WEBDAV_USER: dav.user,
      MSMLREC_DELIVERY_WEBDAV_PASSWORD: dav.password,
      MSMLREC_DELIVERY_METADATA_URL: meta.url,
      // admission by load as shipped (the test harness turns it off)
      ...admissionEnv(),
      // glibc's malloc settings, if the soak is asked to try some (MALLOC_ARENA_MAX=2, GLIBC_TUNABLES=glibc.malloc.…)
      ...mallocEnv,
    },
    [],
    compiledRecorderArgs(image),
  );
  const pid = app.proc.pid as number;
  const phones = Phones.start({ relaySamples: false });
  // stopped early (Ctrl-C): nothing of the run is left behind
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      app.proc.kill('SIGKILL');
      phones.proc.kill('SIGKILL');
      void Promise.allSettled([sim.stop(), dav.stop(), meta.stop(), redis.stop()]).then(() => process.exit(130));
    });
  }
  const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
  const calls: CallRecord[] = [];
  let up = 0;

  const samples: Sample[] = [];
  let t0 = performance.now();
  /** A per-thread gauge by thread (main, media workers, encoder threads), MB. */
  const perThread = (m: Map<string, number>, name: string): Record<string, number> => Object.fromEntries([...m].filter(([k]) => k.startsWith(`${name}{`)).map(([k, v]) => [/thread="([^"]+)"/.exec(k)?.[1] ?? k, v / 2 ** 20]));
  /** Summed over the threads. */
  const sum = (byThread: Record<string, number>): number => Object.values(byThread).reduce((a, v) => a + v, 0);
  const sample = async (): Promise<Sample> => {
    const m = parsePromText((await app.ops('/metrics')).body);
    const byThread = perThread(m, 'msmlrec_thread_heap_used_bytes');
    const totalByThread = perThread(m, 'msmlrec_thread_heap_total_bytes');
    const s: Sample = {
      t: (performance.now() - t0) / 1000,
      rssMb: rssMb(pid),
      heapMb: sum(byThread),
      heapTotalMb: sum(totalByThread),
      externalMb: sum(perThread(m, 'msmlrec_thread_external_bytes')),
      byThread,
      totalByThread,
      fds: openFds(pid),
      ports: m.get('msmlrec_rtp_ports_in_use') ?? NaN,
      sessions: m.get('msmlrec_calls_active') ?? NaN,
      spoolMb: dirBytes(app.spoolDir) / 2 ** 20,
      calls: up,
    };
    return s;
  };
  const random = prng(20261202);
  let nextSsrc = 2;
  const ruri = (conf: string, dn: string): string => `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=${dn};record;tenant-dbid=1;media-service=record;gvp-tenant-id=Soak.Record`;
  const info = async (dialog: UacDialog, body: string): Promise<void> => {
    const r = await uac.request('INFO', '', { dialog, headers: MSML, body });
    if (!/response="200"/.test(String(r.content))) throw new Error(`MSML ${r.status}: ${String(r.content).slice(0, 200)}`);
  };

  /** One call: both parties up, the recording started, a pause or a hold maybe, then dialogend and the hang-up. */
  const oneCall = async (c: CallRecord): Promise<void> => {
    const ssrcA = nextSsrc++;
    const ssrcB = nextSsrc++;
    const portA = await phones.add(ssrcA, FREQ.a);
    const portB = await phones.add(ssrcB, FREQ.b);
    const dialogs: UacDialog[] = [];
    up++;
    try {
      const invite = async (port: number, ssrc: number, dn: string): Promise<UacDialog> => {
        const r = await uac.request('INVITE', ruri(c.conf, dn), { headers: { 'content-type': 'application/sdp', 'X-Genesys-CallUUID': `${c.conf}UUID` }, body: sdp(port, 1, 'sendrecv') });
        if (r.status !== 200) throw new Error(`INVITE ${statusText(r)}`);
        await phones.start(ssrc, Number(/m=audio (\d+)/.exec(String(r.content))?.[1]));
        const d = uac.dialogOf(r);
        dialogs.push(d);
        return d;
      };
      const a = await invite(portA, ssrcA, '8001');
      const b = await invite(portB, ssrcB, '8002');
      const began = performance.now();
      await sleep(150 + random() * 300);
      await info(a, `<msml version="1.1"><dialogstart target="conf:${c.conf}" name="rec"><record format="audio/mp3"/></dialogstart></msml>`);
      const at = (share: number): Promise<void> => sleep(Math.max(0, began + c.seconds * 1000 * share - performance.now()));
      if (c.pauses) {
        await at(0.3);
        await info(a, `<msml version="1.1"><send target="conf:${c.conf}/dialog:rec" event="pause"/></msml>`);
        await at(0.4);
        await info(a, `<msml version="1.1"><send target="conf:${c.conf}/dialog:rec" event="resume"/></msml>`);
      }
      if (c.holds) {
        await at(0.5);
        const hold = await uac.request('INVITE', '', { dialog: b, headers: { 'content-type': 'application/sdp' }, body: sdp(portB, 2, 'inactive') });
        if (hold.status !== 200) throw new Error(`hold re-INVITE ${hold.status}`);
        await phones.hold(ssrcB, true);
        c.holdAt = Date.now();
        await sleep(HOLD_S * 1000);
        const back = await uac.request('INVITE', '', { dialog: b, headers: { 'content-type': 'application/sdp' }, body: sdp(portB, 3, 'sendrecv') });
        c.unholdAt = Date.now();
        if (back.status !== 200) throw new Error(`unhold re-INVITE ${back.status}`);
        await phones.hold(ssrcB, false);
      }
      await at(1);
      await info(a, `<msml version="1.1"><dialogend id="conf:${c.conf}/dialog:rec"/></msml>`);
    } catch (err) {
      c.error = (err as Error).message;
    } finally {
      await phones.end(ssrcA);
      await phones.end(ssrcB);
      c.endedAt = Date.now();
      for (const d of dialogs) await uac.request('BYE', '', { dialog: d });
      up--;
    }
  };

  let k = 0;
  /** CALLS calls up at a time until `endAt`, each replaced as it ends. */
  const churn = async (endAt: number): Promise<void> => {
    const slot = async (i: number): Promise<void> => {
      await sleep((i * 1000) / RAMP_RATE);
      for (;;) {
        const left = (endAt - performance.now()) / 1000;
        if (left < MIN_S) return;
        const n = k++;
        const c: CallRecord = { conf: `soak${String(n).padStart(5, '0')}`, seconds: Math.min(left, MIN_S + random() * (MAX_S - MIN_S)), pauses: n % 4 === 1, holds: n % 4 === 2 };
        calls.push(c);
        await oneCall(c);
      }
    };
    await Promise.all(Array.from({ length: CALLS }, (_, i) => slot(i)));
  };
  const postsOf = (conf: string) => meta.posts.filter((p) => p.body.id === `${conf}UUID`);
  /** Waits until every call made so far is delivered (5 min at most). */
  const delivered = async (): Promise<void> => {
    const deliveryDeadline = Date.now() + 300_000;
    while (calls.some((c) => !c.error && postsOf(c.conf).length === 0) && Date.now() < deliveryDeadline) await sleep(1000);
  };

  // the idle recorder, settled: past its first idle minute, when it gives memory back (IdleTrim)
  await sleep(70_000);
  const cold = await sample();
  const coldParts = rssParts(pid);
  // the warm-up: what a recorder takes once and keeps (code run for the first time, JIT code, its allocator's high
  // water mark) is not a leak; the baseline is the idle recorder after the warm-up's calls, at the same point of its
  // quiet as the final sample: SETTLE_S after the last delivery, its /metrics read every SAMPLE_S meanwhile (as the
  // sampler reads it before the final sample; an idle recorder's RSS grows back a few MB in the minutes after its
  // trim, so a baseline taken sooner than the final sample is lower for that alone)
  if (WARMUP_S > 0) {
    process.stderr.write(`warm-up: ${CALLS} calls for ${WARMUP_S} s (idle RSS ${cold.rssMb.toFixed(1)} MB)\n`);
    await churn(performance.now() + WARMUP_S * 1000);
    await delivered();
    const quietEnds = performance.now() + SETTLE_S * 1000;
    while (performance.now() < quietEnds) {
      await sleep(Math.min(SAMPLE_S * 1000, quietEnds - performance.now()));
      await sample();
    }
  }
  const warmUpCalls = calls.length;
  const baseline = await sample();
  const baselineParts = rssParts(pid);
  t0 = performance.now();
  const sampler = setInterval(() => {
    void sample().then((s) => {
      samples.push(s);
      if (samples.length % 6 === 0) process.stderr.write(`  ${(s.t / 60).toFixed(1)} min: ${s.calls} calls, RSS ${s.rssMb.toFixed(1)} MB, heap ${s.heapMb.toFixed(1)} of ${s.heapTotalMb.toFixed(1)} MB (${Object.entries(s.byThread).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}), external ${s.externalMb.toFixed(1)} MB, FDs ${s.fds}, ports ${s.ports}, spool ${s.spoolMb.toFixed(1)} MB\n`);
    }, () => undefined);
  }, SAMPLE_S * 1000);

  await churn(performance.now() + MINUTES * 60_000);
  const churnEnded = (performance.now() - t0) / 1000;
  process.stderr.write(`calls done: ${calls.length} calls; waiting for their delivery\n`);
  await delivered();
  const deliveredAfter = (performance.now() - t0) / 1000 - churnEnded;
  await sleep(SETTLE_S * 1000);
  clearInterval(sampler);
  const final = await sample();
  const finalParts = rssParts(pid);
  // what the recorder's idle step did (IdleTrim): before and after its collections and the trim
  const idleSteps = app.logs.filter((l) => l.includes('"msg":"idle:')).map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const l of idleSteps) process.stderr.write(`  recorder: ${String(l.msg)} ${JSON.stringify({ ...l, msg: undefined, time: undefined, level: undefined, pid: undefined, hostname: undefined, part: undefined })}\n`);
  await phones.close();
  uac.stop();

  // every recording: delivered once, whole
  process.stderr.write('checking the recordings\n');
  const problems: string[] = [];
  let whole = 0;
  let audioSeconds = 0;
  for (const c of calls) {
    if (c.error) {
      problems.push(`${c.conf}: ${c.error}`);
      continue;
    }
    const posts = postsOf(c.conf);
    if (posts.length !== 1) {
      problems.push(`${c.conf}: ${posts.length} metadata POSTs`);
      if (posts.length === 0) continue;
    }
    const body = posts[0].body as { startTime: string; eventHistory: { type: string; offsetMs: number }[]; mediaFiles: { mediaUri: string; mediaId: string; duration: string }[] };
    const file = body.mediaFiles[0];
    const puts = dav.log.filter((l) => l.startsWith('PUT') && l.includes(file.mediaId) && / 20[14]$/.test(l)).length;
    if (puts !== 1) problems.push(`${c.conf}: ${puts} successful PUTs of ${file.mediaId}`);
    const path = join(dav.root, 'recordings', file.mediaUri.slice(dav.url.length));
    const d = decode(path);
    audioSeconds += d.seconds;
    const start = Date.parse(body.startTime);
    const bad: string[] = [];
    if (Math.abs(d.seconds - Number(file.duration) / 1000) > 0.05) bad.push(`decodes to ${d.seconds} s, duration ${file.duration} ms`);
    const offs = (type: string): number[] => body.eventHistory.filter((e) => e.type === type).map((e) => e.offsetMs / 1000);
    const [pausedAt] = offs('pause');
    const [resumedAt] = offs('resume');
    const inPause = (t: number): boolean => pausedAt !== undefined && resumedAt !== undefined && t > pausedAt - 0.15 && t < resumedAt + 0.15;
    const inHold = (t: number): boolean => c.holdAt !== undefined && c.unholdAt !== undefined && t > (c.holdAt - start) / 1000 - 0.3 && t < (c.unholdAt - start) / 1000 + 0.3;
    const to = Math.min(d.seconds, ((c.endedAt ?? 0) - start) / 1000) - 0.1;
    const silent = silentWindows(d, 0, to, (ch, t) => inPause(t) || (ch === 1 && inHold(t)));
    if (silent.length) bad.push(`${silent.length} window(s) of 10 ms without its party, first at ${silent[0]}`);
    const share = (ch: number, f: number): number => medianToneShare(d.channels[ch], f, 0, d.seconds, (a, b) => inPause(a) || inPause(b) || inHold(a) || inHold(b));
    if (share(0, FREQ.a) < 0.8 || share(1, FREQ.b) < 0.8) bad.push('parties not on their channels');
    if (bad.length) problems.push(`${c.conf}: ${bad.join('; ')}`);
    else whole++;
    rmSync(path, { force: true });
  }

  // memory, FDs, ports and sessions back where they were; RSS flat between minute 10 and the end of the calls
  const checks: { what: string; ok: boolean; text: string }[] = [];
  const back = (what: string, key: Exclude<keyof Sample, 'byThread' | 'totalByThread'>, unit: string, exact = false): void => {
    const b = baseline[key];
    const f = final[key];
    // back means not above the baseline by more than the tolerance (less than the idle recorder held is no leak)
    const ok = exact ? f === b : f - b <= TOLERANCE * b;
    checks.push({ what, ok, text: `${b.toFixed(exact ? 0 : 1)} → ${f.toFixed(exact ? 0 : 1)}${unit}${exact ? '' : ` (${(((f - b) / b) * 100).toFixed(1)} %)`}` });
  };
  back('RSS', 'rssMb', ' MB');
  back('heap used', 'heapMb', ' MB');
  back('heap reserved', 'heapTotalMb', ' MB');
  back('external memory', 'externalMb', ' MB');
  back('open file descriptors', 'fds', '');
  back('RTP ports in use', 'ports', '', true);
  back('live sessions', 'sessions', '', true);
  const from = Math.min(600, churnEnded / 6);
  const near = (t: number): Sample | undefined => samples.reduce<Sample | undefined>((best, s) => (!best || Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best), undefined);
  const s10 = near(from);
  const s60 = near(churnEnded - SAMPLE_S);
  const growth = s10 && s60 ? (s60.rssMb - s10.rssMb) / s10.rssMb : NaN;
  checks.push({ what: `RSS growth, minute ${(from / 60).toFixed(0)} → ${((s60?.t ?? 0) / 60).toFixed(0)}`, ok: growth < TOLERANCE, text: `${s10?.rssMb.toFixed(1)} → ${s60?.rssMb.toFixed(1)} MB (${(growth * 100).toFixed(1)} %)` });
  checks.unshift({ what: 'recordings whole and delivered once', ok: problems.length === 0, text: `${whole} of ${calls.length}${warmUpCalls ? ` (the warm-up's ${warmUpCalls} included)` : ''} (${(audioSeconds / 3600).toFixed(1)} h of audio), all delivered ${deliveredAfter.toFixed(0)} s after the last call` });

  const row = (what: string, s: Sample): string =>
    `| ${what} | ${s.calls} | ${s.rssMb.toFixed(1)} MB | ${s.heapMb.toFixed(1)} MB | ${s.heapTotalMb.toFixed(1)} MB | ${s.externalMb.toFixed(1)} MB | ${s.fds} | ${s.ports} | ${s.sessions} | ${s.spoolMb.toFixed(1)} MB |`;
  const threadLine = (s: Sample): string => Object.entries(s.totalByThread).map(([k, v]) => `${k} ${(s.byThread[k] ?? 0).toFixed(1)}/${v.toFixed(1)}`).join(', ');
  const peak = samples.reduce((m, s) => Math.max(m, s.rssMb), 0);
  const byMinute = samples.filter((s, i) => i === 0 || Math.floor(s.t / 600) !== Math.floor(samples[i - 1].t / 600));
  const lines = [
    `machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, load average at the start ${load.map((x) => x.toFixed(2)).join(' ')}, at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}; recorder: compiled build, media.udp native, 16 kbit/s stereo, delivery to Redis + Apache mod_dav + a Recording Processor stand-in${Object.entries(mallocEnv).map(([k, v]) => `, ${k}=${v}`).join('')}`,
    '',
    `${CALLS} calls up at a time for ${MINUTES} min, each ${MIN_S}-${MAX_S} s, replaced as it ends (${calls.length - warmUpCalls} calls; every 4th paused and resumed, every 4th held ${HOLD_S} s by re-INVITE); a sample every ${SAMPLE_S} s; after the last call and its delivery, ${SETTLE_S} s of quiet. ${WARMUP_S > 0 ? `The baseline is the idle recorder after a warm-up (the same load for ${WARMUP_S} s, ${warmUpCalls} calls) and ${SETTLE_S} s of quiet; the recorder that never had a call is the "cold" row` : 'The baseline is the idle recorder before its first call'}`,
    '',
    '| check | result | |',
    '|---|---|---|',
    ...checks.map((c) => `| ${c.what} | ${c.text} | ${c.ok ? 'pass' : '**fail**'} |`),
    '',
    `peak RSS ${peak.toFixed(1)} MB; spool peak ${samples.reduce((m, s) => Math.max(m, s.spoolMb), 0).toFixed(1)} MB, at the end ${final.spoolMb.toFixed(1)} MB`,
    '',
    'heap used, heap reserved and external memory are summed over the recorder\'s JavaScript threads (main, media workers, encoder threads); the idle row is the baseline, the last after the last call and its delivery',
    '',
    `the recorder's idle steps (a minute after its start${WARMUP_S > 0 ? ', after the warm-up' : ''} and after the last call): ${idleSteps.map((l) => `RSS ${String(l.rssBeforeMb)} → ${String(l.rssAfterGcMb ?? l.rssAfterMb)} MB collected${l.rssAfterGcMb !== undefined ? ` → ${String(l.rssAfterMb)} MB trimmed` : ''} (${String(l.ms)} ms)`).join('; ') || 'none logged'}`,
    '',
    `where the RSS is, ${WARMUP_S > 0 ? 'cold → ' : ''}idle → at the end: ${(['arenas', 'anon', 'files'] as const).map((k) => `${{ arenas: "glibc's malloc arenas", anon: 'other anonymous memory (V8 heaps, stacks, large mmapped blocks)', files: 'mapped files' }[k]} ${WARMUP_S > 0 ? `${coldParts[k].toFixed(1)} → ` : ''}${baselineParts[k].toFixed(1)} → ${finalParts[k].toFixed(1)} MB`).join('; ')}`,
    '',
    `heap reserved per thread (used of reserved, MB), idle: ${threadLine(baseline)}; at the end: ${threadLine(final)}`,
    '',
    '| minute | calls | RSS | heap used | heap reserved | external | FDs | ports | sessions | spool |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...(WARMUP_S > 0 ? [row('cold', cold)] : []),
    row('idle', baseline),
    ...[...byMinute, final].map((s) => row((s.t / 60).toFixed(0), s)),
    '',
    ...(problems.length ? ['problems:', '', ...problems.slice(0, 20).map((p) => `- ${p}`), ''] : []),
    `soak time: ${((Date.now() - started) / 1000).toFixed(0)} s`,
  ];
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  writeFileSync(REPORT, `${text}\n`);
  await app.stop('SIGTERM');
  await sim.stop();
  await dav.stop();
  await meta.stop();
  await redis.stop();
  process.exit(checks.every((c) => c.ok) ? 0 : 1);
}

await main();
