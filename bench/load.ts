/**
 * Load benchmark (`npm run bench`): how many concurrent two-party calls this machine records whole, measured as
 * independent phones would load it.
 *
 * - The phones are a process of their own (`rtp-generator.ts`): every party has its own UDP socket and 20 ms phase,
 *   0-4 ms of send jitter and a reordered packet every 97. This process is SIP Server and drachtio-server (the
 *   simulator): per call two INVITEs (same conf-id, PCMU, each party a different tone), an MSML dialogstart a moment
 *   after the RTP flows, a pause/resume on every 5th call, a dialogend, then BYEs. The recorder is a third process
 *   (the compiled build, as in production), with admission on (its defaults): a call it refuses (503) is counted as
 *   refused, not as a gap.
 * - Modes (BENCH_MODES, all by default): `quiet`; `hog`, with a noisy neighbour (`cpu-hog.ts`: half a core in 100 ms
 *   bursts) all through the run; `stall`, the recorder stopped (SIGSTOP) for BENCH_STALL_MS (1500) mid-call. Each
 *   mode runs the steps (BENCH_STEPS) BENCH_RUNS times (3) each and stops at the first N with a damaged recording:
 *   the capacity is the largest N whole in every run.
 * - Whole: every admitted call's recording decodes to its sidecar's length, both parties audible in every 10 ms
 *   window from its first sample outside the pause, each on its own channel, nothing counted lost, late or dropped.
 * - Reported per N (the worse run): the recorder's CPU and RSS per call, INVITE and MSML (dialogstart, dialogend)
 *   answer times at the generator and on the drachtio link, relay latency on the wire (loopback capture, kernel
 *   timestamps, matched by SSRC and sequence number) and at the phones, encode lag, the machine's load average when the
 *   mode started. Then the encoders are timed on the same audio: WASM LAME and lamejs here, native `lame` in a child.
 *
 * Options (env): BENCH_STEPS=300,450,600  BENCH_RUNS=3  BENCH_SECONDS=20  BENCH_RATE=40 (calls/s)
 * BENCH_MODES=quiet,hog,stall  BENCH_STALL_MS=1500  BENCH_ENCODE_SECONDS=600  BENCH_WORKERS=2
 * BENCH_COMPARE_WORKERS= (e.g. 1,0: BENCH_COMPARE_STEP calls again with those media.workers, quiet)
 * BENCH_ADMISSION=off: admission by load off (find where audio suffers rather than what the recorder admits).
 * BENCH_UDP=native|js: the recorder's media.udp (native: the UDP engine's own thread reads and relays).
 * BENCH_PROFILE=<dir>: the recorder runs with --cpu-prof into <dir>; the top functions by self time of each thread are
 *   printed and the report goes to bench/profile.md instead of bench/latest.md (`npm run bench:profile`).
 * BENCH_NO_SCRAPE=1: do not poll /metrics during the talk time (encode lag then reads 0).
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { encryptFile, loadRecipient } from '../src/recording/cms-envelope.js';
import { encoderFactory, type EncoderFactory } from '../src/recording/mp3-encoder.js';
import type { Sidecar } from '../src/recording/metadata.js';
import { decode, medianToneShare } from '../test/harness/audio.js';
import { parsePromText } from '../test/harness/prom-text.js';
import { ROOT, startApp, startSim, tempDir, type AppProcess } from '../test/harness/recorder-harness.js';
import { SipUac, type UacDialog } from '../test/harness/sip-uac.js';
import { startCapture, type CapturedUdp } from '../test/harness/capture.js';
import { sleep } from '../test/harness/until.js';
import { silentWindows } from './audible-windows.js';
import { admissionEnv, compiledRecorderArgs, layOutCompiledRecorder } from './compiled-recorder.js';
import { Phones } from './phones.js';
import { cpuSeconds, rssMb, threadCpuSeconds } from './proc-stats.js';

const run = promisify(execFile);
const STEPS = (process.env.BENCH_STEPS ?? '300,450,600').split(',').map(Number);
const MODES = (process.env.BENCH_MODES ?? 'quiet,hog,stall').split(',').filter(Boolean) as Mode[];
type Mode = 'quiet' | 'hog' | 'stall';
const STALL_MS = Number(process.env.BENCH_STALL_MS ?? 1500);
const ADMISSION = process.env.BENCH_ADMISSION !== 'off';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const RATE = Number(process.env.BENCH_RATE ?? 40);
const ENCODE_SECONDS = Number(process.env.BENCH_ENCODE_SECONDS ?? 600);
/** Each step runs this many times; the worse run is reported (a gap in any run is a gap). */
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** LAME quality of the recorder and of the encoder timing (the recorder's `encoder.quality`). */
const QUALITY = Number(process.env.MSMLREC_ENCODER_QUALITY ?? 7);
const FREQ = { a: 500, b: 1100 };
const PROFILE = process.env.BENCH_PROFILE ?? '';
/** media.workers of the main series, and the values compared with it at COMPARE_STEP calls. */
const WORKERS = process.env.BENCH_WORKERS ?? '2';
const COMPARE_WORKERS = (process.env.BENCH_COMPARE_WORKERS ?? '').split(',').filter((w) => w !== '' && w !== WORKERS);
const COMPARE_STEP = Number(process.env.BENCH_COMPARE_STEP ?? 300);
/** media.udp of the recorder: native (the engine's thread reads and relays) or js (Node's dgram on the media threads). */
const UDP = process.env.BENCH_UDP ?? 'native';
const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
interface Call {
  conf: string;
  ports: { a: number; b: number };
  dlgA: UacDialog | null;
  dlgB: UacDialog | null;
  pauses: boolean;
  refused: boolean;
}

const sdp = (port: number): string => `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n`;
const MSML = { 'content-type': 'application/vnd.radisys.msml+xml' };

interface StepResult {
  n: number;
  mode: Mode;
  ok: boolean;
  gaps: string[];
  /** Calls the recorder refused (503: admission) and the reasons it gave. */
  refused: number;
  refusedWhy: string[];
  inviteP50: number;
  inviteP99: number;
  /** INVITE→200 and MSML INFO→200 at the recorder: on the drachtio link (loopback capture), ms. */
  linkInviteP99: number;
  linkMsmlP99: number;
  /** Worst per-second p99 event-loop delay of the main thread / of a media worker during the talk time, ms. */
  loopMainMax: number;
  loopMediaMax: number;
  msmlP50: number;
  msmlP99: number;
  /** dialogend INFO→200 at the generator, ms. */
  endP50: number;
  endP99: number;
  relayP50: number;
  relayP99: number;
  /** Relay latency on the wire (loopback capture), ms. */
  wireP50: number;
  wireP99: number;
  wireMax: number;
  cpuPerCall: number;
  /** Of it, the native UDP engine's threads (receive, relay, queue). */
  relayCpuPerCall: number;
  rssMb: number;
  /** (RSS - the idle recorder's RSS) / admitted calls, MB. */
  rssPerCallMb: number;
  encodeLagMax: number;
  lost: number;
  generatorCpu: number;
  generatorPauseMs: number;
}

/** Recorder RTP ports (MSMLREC_RTP_PORT_MIN/MAX below). */
const RTP_MIN = 20000;
const RTP_MAX = 23999;

/**
 * The recorder's answer times on the drachtio link (where drachtio-server would be): from the frame carrying a
 * request to the recorder to the frame carrying its 200, matched by Call-ID and CSeq, from a loopback capture.
 */
function linkLatency(segments: CapturedUdp[], controlPort: number): { invite: number[]; info: number[] } {
  const asked = new Map<string, number>();
  const out = { invite: [] as number[], info: [] as number[] };
  const starts = /(?:^|\n|#)(INVITE sip:|INFO sip:|SIP\/2\.0 200 )/g;
  for (const seg of segments) {
    const text = seg.payload.toString('latin1');
    const at = [...text.matchAll(starts)].map((m) => ({ i: (m.index ?? 0) + m[0].length - m[1].length, start: m[1] }));
    at.forEach((m, k) => {
      const msg = text.slice(m.i, at[k + 1]?.i ?? text.length);
      const callId = /\r\ncall-id:\s*(\S+)/i.exec(msg)?.[1];
      const cseq = /\r\ncseq:\s*(\d+ (?:INVITE|INFO))/i.exec(msg)?.[1];
      if (!callId || !cseq) return;
      const key = `${callId} ${cseq.toUpperCase()}`;
      if (m.start !== 'SIP/2.0 200 ' && seg.sport === controlPort) {
        if (!asked.has(key)) asked.set(key, seg.ms);
      } else if (m.start === 'SIP/2.0 200 ' && seg.dport === controlPort) {
        const t = asked.get(key);
        if (t === undefined) return;
        asked.delete(key);
        (key.endsWith('INVITE') ? out.invite : out.info).push(seg.ms - t);
      }
    });
  }
  return out;
}

/** Captures loopback RTP for `ms` and returns, per relayed packet, when its copy left minus when it arrived. */
async function wireRelay(ms: number): Promise<number[]> {
  const cap = await startCapture(`udp portrange ${RTP_MIN}-${RTP_MAX}`);
  await sleep(ms);
  const packets = await cap.stop();
  const inRange = (p: number): boolean => p >= RTP_MIN && p <= RTP_MAX;
  const arrived = new Map<number, number>();
  const out: number[] = [];
  for (const p of packets) {
    if (p.payload.length < 12) continue;
    const key = p.payload.readUInt32BE(8) * 65536 + p.payload.readUInt16BE(2);
    if (inRange(p.dport) && !inRange(p.sport)) arrived.set(key, p.ms);
    else if (inRange(p.sport) && !inRange(p.dport)) {
      const at = arrived.get(key);
      if (at !== undefined) out.push(p.ms - at);
    }
  }
  return out;
}

async function step(n: number, mode: Mode, sim: Awaited<ReturnType<typeof startSim>>, app: AppProcess, uac: SipUac, idleRssMb: number): Promise<StepResult> {
  const pid = app.proc.pid as number;
  const phones = Phones.start();
  const calls: Call[] = [];
  const inviteMs: number[] = [];
  const msmlMs: number[] = [];
  const endMs: number[] = [];
  const refusedWhy = new Set<string>();
  /** An MSML INFO, timed from send to its 200 (what SIP Server waits for). */
  const info = async (dialog: UacDialog, body: string, into = msmlMs): Promise<string> => {
    const s = performance.now();
    const r = await uac.request('INFO', '', { dialog, headers: MSML, body });
    into.push(performance.now() - s);
    return String(r.content);
  };
  const ruri = (conf: string, dn: string): string => `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=${dn};record;tenant-dbid=1;media-service=record;gvp-tenant-id=Bench.Record`;
  const before = parsePromText((await app.ops('/metrics')).body);
  const link = await startCapture(`tcp port ${sim.controlPort}`);

  // set-up at RATE calls/s; each party's phone starts sending once its INVITE is answered
  const setups: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const conf = `b${n}${mode[0]}x${String(i).padStart(4, '0')}00000000`;
    const ssrcA = i * 2 + 2;
    const ssrcB = i * 2 + 3;
    const call: Call = { conf, ports: { a: await phones.add(ssrcA, FREQ.a), b: await phones.add(ssrcB, FREQ.b) }, dlgA: null, dlgB: null, pauses: i % 5 === 0, refused: false };
    calls.push(call);
    setups.push(
      (async () => {
        const invite = async (port: number, ssrc: number, dn: string): Promise<UacDialog | null> => {
          const s = performance.now();
          const r = await uac.request('INVITE', ruri(conf, dn), { headers: { 'content-type': 'application/sdp' }, body: sdp(port) });
          inviteMs.push(performance.now() - s);
          if (r.status === 503) return null;
          if (r.status !== 200) throw new Error(`INVITE ${conf}: ${r.status}`);
          await phones.start(ssrc, Number(/m=audio (\d+)/.exec(String(r.content))?.[1]));
          return uac.dialogOf(r);
        };
        call.dlgA = await invite(call.ports.a, ssrcA, '8001');
        if (!call.dlgA) {
          call.refused = true;
          return;
        }
        call.dlgB = await invite(call.ports.b, ssrcB, '8002');
        // SIP Server starts the recording a moment after the call is up: both parties' RTP is flowing by then
        await sleep(150 + ((i * 37) % 300));
        const r = await info(call.dlgA, `<msml version="1.1"><dialogstart target="conf:${conf}" name="rec"><record format="audio/mp3"/></dialogstart></msml>`);
        if (!/response="200"/.test(r)) throw new Error(`dialogstart ${conf}: ${r}`);
      })(),
    );
    await sleep(1000 / RATE);
  }
  await Promise.all(setups);
  const admitted = calls.filter((c) => !c.refused);
  const setupDone = performance.now();
  const linkMs = linkLatency(await link.stop(), sim.controlPort);

  // steady state: measure the recorder's CPU over the middle of the talk time
  const lags: number[] = [];
  /** p99 event-loop delays (ms) of the main thread and of the media workers, one per second and thread. */
  const loopMain: number[] = [];
  const loopMedia: number[] = [];
  const lagPoll = setInterval(() => {
    if (process.env.BENCH_NO_SCRAPE) return;
    void app.ops('/metrics').then((r) => {
      const m = parsePromText(r.body);
      lags.push(m.get('msmlrec_encode_lag_seconds') ?? 0);
      for (const [k, v] of m) {
        const thread = /^msmlrec_event_loop_delay_p99_seconds\{thread="([^"]+)"\}$/.exec(k)?.[1];
        if (!thread) continue;
        const into = thread === 'main' ? loopMain : loopMedia;
        into.push(v * 1000);
      }
    }, () => undefined);
  }, 1000);
  // relay latency on the wire: 2 s of loopback capture (kernel timestamps), each datagram that reached a recorder
  // port matched to its relayed copy leaving one (same SSRC and sequence number)
  const wireMs = await wireRelay(2000);
  const cpu0 = cpuSeconds(pid);
  const relayCpu0 = threadCpuSeconds(pid, 'udp-engine');
  const w0 = performance.now();
  const pauseAt = SECONDS * 1000 * 0.3;
  const resumeAt = SECONDS * 1000 * 0.5;
  const control = async (event: string): Promise<void> => {
    await Promise.all(admitted.filter((c) => c.pauses).map((c) => info(c.dlgA as UacDialog, `<msml version="1.1"><send target="conf:${c.conf}/dialog:rec" event="${event}"/></msml>`)));
  };
  await sleep(Math.max(0, pauseAt - 2000));
  await control('pause');
  await sleep(resumeAt - pauseAt);
  await control('resume');
  if (mode === 'stall') {
    // the whole recorder stops, as a CPU quota, a long GC or a VM pause stops it
    await sleep(SECONDS * 1000 * 0.1);
    app.proc.kill('SIGSTOP');
    await sleep(STALL_MS);
    app.proc.kill('SIGCONT');
  }
  await sleep(Math.max(0, SECONDS * 1000 - (performance.now() - setupDone)));
  const cpu1 = cpuSeconds(pid);
  const relayCpu1 = threadCpuSeconds(pid, 'udp-engine');
  const w1 = performance.now();
  const rss = rssMb(pid);
  clearInterval(lagPoll);

  // the end: dialogend on every call (timed; the calls end one after another at the set-up rate, as they began), then
  // the phones stop and SIP Server hangs up
  const spooled = app.logs.filter((l) => l.includes('"recording spooled"')).length;
  const ends: Promise<string>[] = [];
  for (const c of admitted) {
    ends.push(info(c.dlgA as UacDialog, `<msml version="1.1"><dialogend id="conf:${c.conf}/dialog:rec"/></msml>`, endMs));
    await sleep(1000 / RATE);
  }
  await Promise.all(ends);
  const gen = await phones.stop();
  const sendingStopped = Date.now();
  await Promise.all(admitted.map(async (c) => {
    await uac.request('BYE', '', { dialog: c.dlgA as UacDialog });
    if (c.dlgB) await uac.request('BYE', '', { dialog: c.dlgB });
  }));
  await phones.close();
  const deadline = Date.now() + 60_000;
  while (app.logs.filter((l) => l.includes('"recording spooled"')).length < spooled + admitted.length && Date.now() < deadline) await sleep(200);
  const after = parsePromText((await app.ops('/metrics')).body);
  if (admitted.length < calls.length) {
    const why = (JSON.parse((await app.ops('/status')).body) as { admission?: { lastReason?: string | null } }).admission?.lastReason;
    refusedWhy.add(why ? `last: ${why}` : 'see the recorder log');
  }

  // verify every recording: length, both parties audible in every 10 ms window outside the pause, channels by leg
  const gaps: string[] = [];
  const sidecars = readdirSync(app.spoolDir).filter((f) => f.endsWith('.json') && !f.endsWith('.open.json'));
  const prefix = `b${n}${mode[0]}x`;
  const mine = sidecars.map((f) => JSON.parse(readFileSync(join(app.spoolDir, f), 'utf8')) as Sidecar).filter((s) => s.confId?.startsWith(prefix));
  if (mine.length !== admitted.length) gaps.push(`${mine.length} of ${admitted.length} recordings spooled`);
  let checked = 0;
  const checkOne = async (s: Sidecar): Promise<void> => {
    const d = decode(join(app.spoolDir, s.files.mp3.name));
    const pauses = s.events.filter((e) => e.type === 'pause' || e.type === 'resume').map((e) => e.offsetMs / 1000);
    const inPause = (t: number): boolean => pauses.length >= 2 && t > pauses[0] - 0.15 && t < pauses[1] + 0.15;
    if (Math.abs(d.seconds - s.durationMs / 1000) > 0.05) gaps.push(`${s.confId}: decodes to ${d.seconds} s, sidecar says ${s.durationMs} ms`);
    // both parties talk from before the dialogstart: every window from the recording's first sample is checked, up to
    // the dialogend (the file ends there)
    const from = 0;
    const to = Math.min(d.seconds, (sendingStopped - Date.parse(s.startTime)) / 1000) - 0.1;
    const silent = silentWindows(d, from, to, (_ch, t) => inPause(t));
    // and each party on its own channel (fixed by leg): the tone of party A dominates the left, B the right
    const share = (c: Int16Array, f: number): number => medianToneShare(c, f, 1, c.length / 8000 - 1, (a, b) => inPause(a) || inPause(b));
    if (share(d.channels[0], FREQ.a) < 0.8 || share(d.channels[1], FREQ.b) < 0.8) gaps.push(`${s.confId}: parties not on their channels`);
    if (silent.length > 0) {
      const legs = s.legs.map((l) => `${l.role} ${l.packets} pkts, ${l.lost} lost, ${l.late} late`).join(' / ');
      gaps.push(`${s.confId}: ${silent.length} window(s) of 10 ms without both parties, first at ${silent[0]}, last at ${silent[silent.length - 1]}; pauses ${pauses.join('-')}; ${legs}; start ${s.startTime}`);
    }
    checked++;
  };
  for (let i = 0; i < mine.length; i += 4) await Promise.all(mine.slice(i, i + 4).map(checkOne));
  for (const s of mine) {
    rmSync(join(app.spoolDir, s.files.mp3.name), { force: true });
    rmSync(join(app.spoolDir, s.files.mp3.name.replace(/\.mp3$/, '.json')), { force: true });
  }
  const delta = (k: string): number => (after.get(k) ?? 0) - (before.get(k) ?? 0);
  const lost = delta('msmlrec_rtp_lost_total');
  const late = delta('msmlrec_rtp_late_total');
  if (late > 0) gaps.push(`${late} RTP packets arrived too late for the jitter buffer`);
  const dropped = delta('msmlrec_audio_dropped_late_seconds_total');
  if (dropped > 0) gaps.push(`${dropped.toFixed(3)} channel-seconds of audio reached the mixer after their place was encoded`);
  if (lost > 0) gaps.push(`${lost} RTP packets lost at the recorder`);
  const cpuPerCall = (cpu1 - cpu0) / ((w1 - w0) / 1000) / Math.max(1, admitted.length);
  const relayCpuPerCall = (relayCpu1 - relayCpu0) / ((w1 - w0) / 1000) / Math.max(1, admitted.length);
  const refused = calls.length - admitted.length;
  process.stderr.write(`  N=${n} ${mode}: ${admitted.length} admitted, ${refused} refused${refusedWhy.size ? ` (${[...refusedWhy].join('; ')})` : ''}; phones' longest send pause ${gen.longestPauseMs.toFixed(0)} ms; checked ${checked} recordings, ${gaps.length} problem(s)${gaps.length ? `: ${gaps.slice(0, 3).join('; ')}` : ''}\n`);
  return {
    n,
    mode,
    ok: gaps.length === 0,
    gaps,
    refused,
    refusedWhy: [...refusedWhy],
    inviteP50: pct(inviteMs, 50),
    inviteP99: pct(inviteMs, 99),
    linkInviteP99: pct(linkMs.invite, 99),
    linkMsmlP99: pct(linkMs.info, 99),
    msmlP50: pct(msmlMs, 50),
    msmlP99: pct(msmlMs, 99),
    endP50: pct(endMs, 50),
    endP99: pct(endMs, 99),
    relayP50: pct(gen.relayMs, 50),
    relayP99: pct(gen.relayMs, 99),
    wireP50: pct(wireMs, 50),
    wireP99: pct(wireMs, 99),
    wireMax: wireMs.length ? wireMs.reduce((a, b) => Math.max(a, b), -Infinity) : NaN,
    cpuPerCall,
    relayCpuPerCall,
    rssMb: rss,
    rssPerCallMb: (rss - idleRssMb) / Math.max(1, admitted.length),
    encodeLagMax: Math.max(0, ...lags),
    loopMainMax: Math.max(0, ...loopMain),
    loopMediaMax: Math.max(0, ...loopMedia),
    lost,
    generatorCpu: gen.cpu,
    generatorPauseMs: gen.longestPauseMs,
  };
}

/** CPU seconds to encode `seconds` of the bench's two-party audio, stereo 16 kbit/s. */
function encodeCpu(l: Int16Array, r: Int16Array, factory: EncoderFactory): number {
  const enc = factory.create({ channels: 2, kbps: 16 });
  const t = process.cpuUsage();
  for (let i = 0; i < l.length; i += 800) enc.encode([l.subarray(i, i + 800), r.subarray(i, i + 800)]);
  enc.flush();
  enc.free();
  const c = process.cpuUsage(t);
  return (c.user + c.system) / 1e6;
}

interface EncoderTimes {
  /** × realtime on one core, by engine and LAME quality ('wasm-7', 'wasm-3', 'lamejs', 'native-7', 'native-3'). */
  [key: string]: number | null;
}

/** Native `lame` CPU time on a raw stereo file with the recorder's settings (true stereo, no reservoir), or null. */
async function nativeLame(raw: string, out: string, quality: number): Promise<number | null> {
  try {
    // bash's `times` prints the children's user and system CPU time
    const res = await run('bash', ['-c', `lame --quiet -r -s 8 --bitwidth 16 --signed --little-endian -m s --nores -b 16 --cbr -q ${quality} ${raw} ${out} && times`]);
    const [u, s] = res.stdout.trim().split('\n').pop()?.split(/\s+/) ?? [];
    const secs = (x: string): number => {
      const m = /(\d+)m([\d.]+)s/.exec(x);
      return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
    };
    return ENCODE_SECONDS / (secs(u) + secs(s));
  } catch (err) {
    process.stderr.write(`native lame not run (${(err as Error).message.split('\n')[0]}); apt-get install lame\n`);
    return null;
  }
}

async function encoders(): Promise<EncoderTimes> {
  // the same kind of audio as the calls: each party talks half the time, quiet noise under both
  const n = ENCODE_SECONDS * 8000;
  const l = new Int16Array(n);
  const r = new Int16Array(n);
  let seed = 1;
  const noise = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5) * 60;
  for (let i = 0; i < n; i++) {
    const talkA = Math.floor(i / 24000) % 2 === 0;
    l[i] = (talkA ? 6000 * Math.sin((2 * Math.PI * FREQ.a * i) / 8000) : 0) + noise();
    r[i] = (talkA ? 0 : 6000 * Math.sin((2 * Math.PI * FREQ.b * i) / 8000)) + noise();
  }
  const out: EncoderTimes = {};
  for (const [key, f] of [[`wasm-${QUALITY}`, encoderFactory('wasm', QUALITY)], ['wasm-3', encoderFactory('wasm', 3)], ['lamejs', encoderFactory('lamejs')]] as const) {
    await f.ready;
    encodeCpu(l.subarray(0, 8000 * 60), r.subarray(0, 8000 * 60), f); // warm-up (JIT / WASM tiers)
    out[key] = ENCODE_SECONDS / encodeCpu(l, r, f);
  }
  const dir = tempDir('bench-lame');
  const raw = join(dir, 'in.raw');
  const inter = new Int16Array(n * 2);
  for (let i = 0; i < n; i++) {
    inter[2 * i] = l[i];
    inter[2 * i + 1] = r[i];
  }
  writeFileSync(raw, Buffer.from(inter.buffer));
  out[`native-${QUALITY}`] = await nativeLame(raw, join(dir, 'out.mp3'), QUALITY);
  out['native-3'] = await nativeLame(raw, join(dir, 'out.mp3'), 3);
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/** CPU time to encrypt a 4-hour recording's MP3 (16 kbit/s: 28.8 MB) for two certificates, as the recorder does. */
async function encryption(): Promise<{ bytes: number; seconds: number }> {
  const dir = tempDir('bench-cms');
  const recipients = ['a', 'b'].map((n) => {
    const cert = join(dir, `${n}.crt`);
    spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, `${n}.key`), '-out', cert, '-subj', `/CN=${n}`, '-days', '2']);
    return loadRecipient(readFileSync(cert, 'utf8'), cert, { allowExpired: false });
  });
  const file = join(dir, 'rec.mp3');
  const bytes = 4 * 3600 * 2000;
  writeFileSync(file, Buffer.alloc(bytes, 0x5a));
  const t = process.cpuUsage();
  await encryptFile(file, join(dir, 'rec.p7m'), { recipients, cipher: 'aes-256-cbc', keyTransport: 'rsa-oaep' });
  const c = process.cpuUsage(t);
  rmSync(dir, { recursive: true, force: true });
  return { bytes, seconds: (c.user + c.system) / 1e6 };
}

/** Top functions by self time over every .cpuprofile in `dir` (main thread and workers). */
/**
 * The top functions by self time of each thread's CPU profile (`--cpu-prof`), as shares of the thread's busy time
 * (idle excluded). The thread is named by what runs in it. V8 profiles JavaScript threads only: the native UDP
 * engine's thread is not in them (its CPU is in the recorder's total).
 */
function profileTop(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
    const prof = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]; samples: number[]; startTime: number; endTime: number };
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    let busy = 0;
    for (const id of prof.samples) {
      const cf = byId.get(id)?.callFrame;
      if (cf?.functionName === '(idle)') continue;
      busy++;
      const key = cf ? `${cf.functionName || '(anonymous)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}` : '?';
      self.set(key, (self.get(key) ?? 0) + 1);
    }
    const urls = prof.nodes.map((n) => n.callFrame.url).join(' ');
    const thread = urls.includes('encoder-worker') ? 'encoder worker' : urls.includes('media-worker') ? 'media worker' : 'main thread';
    const seconds = (busy * (prof.endTime - prof.startTime)) / Math.max(1, prof.samples.length) / 1e6;
    out.push(`**${thread}** (\`${f}\`): ${seconds.toFixed(1)} s busy`, '');
    out.push('| self time | function |', '|---|---|');
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 10)) out.push(`| ${((v / Math.max(1, busy)) * 100).toFixed(1)} % | \`${k}\` |`);
    out.push('');
  }
  return out;
}

/** The recorder's admission settings: as shipped, or off. */
const ADMISSION_ENV = admissionEnv(ADMISSION);

/** A table row of a step. */
const row = (r: StepResult): string =>
  `| ${r.n} | ${r.ok ? 'whole' : `${r.gaps.length} damaged`} | ${r.refused}${r.refusedWhy.length ? ` (${r.refusedWhy.join('; ')})` : ''} | ${(r.cpuPerCall * 100).toFixed(2)} % (${(r.relayCpuPerCall * 100).toFixed(2)} %) | ${r.rssMb.toFixed(0)} MB, ${(r.rssPerCallMb * 1024).toFixed(0)} kB/call | ${r.encodeLagMax.toFixed(2)} s | ${r.inviteP50.toFixed(1)} / ${r.inviteP99.toFixed(1)} ms | ${r.msmlP99.toFixed(1)} ms | ${r.endP50.toFixed(1)} / ${r.endP99.toFixed(1)} ms | ${r.linkInviteP99.toFixed(1)} / ${r.linkMsmlP99.toFixed(1)} ms | ${r.wireP50.toFixed(2)} / ${r.wireP99.toFixed(2)} / ${r.wireMax.toFixed(1)} ms | ${r.relayP50.toFixed(2)} / ${r.relayP99.toFixed(2)} ms | ${r.loopMainMax.toFixed(0)} / ${r.loopMediaMax.toFixed(0)} ms | ${(r.generatorCpu * 100).toFixed(0)} % |`;
const HEADER = [
  '| calls | recordings | refused by admission | recorder CPU per call (of it, the UDP engine threads) | recorder RSS; per call, above the idle recorder | encode lag max | INVITE→200 p50 / p99 | dialogstart/pause/resume p99 | dialogend p50 / p99 | at the recorder: INVITE / MSML p99 | relay on the wire p50 / p99 / max | relay at the phones p50 / p99 | loop delay p99, worst second: main / media | phones CPU |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
const MODE_TEXT: Record<Mode, string> = {
  quiet: 'quiet: nothing else runs',
  hog: 'hog: a noisy neighbour takes half a core in 100 ms bursts all through the run',
  stall: `stall: the recorder is stopped (SIGSTOP) for ${STALL_MS} ms mid-call, as a CPU quota, a long GC or a VM pause stops it`,
};

async function main(): Promise<void> {
  const started = Date.now();
  process.stderr.write(`msml-recorder load benchmark: modes ${MODES.join(', ')}; steps ${STEPS.join(', ')} calls, ${SECONDS} s each, set-up ${RATE} calls/s, ${RUNS} runs\n`);
  // the recorder runs the compiled build, laid out like the Docker image
  const image = await layOutCompiledRecorder();
  const sim = await startSim();
  const startRecorder = (workers: string): Promise<AppProcess> =>
    startApp(
      sim,
      {
        MSMLREC_LOG_LEVEL: 'info',
        MSMLREC_MEDIA_WORKERS: workers,
        MSMLREC_MEDIA_UDP: UDP,
        MSMLREC_ENCODER_WORKERS: '0',
        MSMLREC_ENCODER_QUALITY: String(QUALITY),
        MSMLREC_RTP_PORT_MIN: String(RTP_MIN),
        MSMLREC_RTP_PORT_MAX: String(RTP_MAX),
        MSMLREC_CLUSTER_MAX_CALLS: '5000',
        // admission as shipped (conf/default.yaml), or off to find where audio suffers
        ...ADMISSION_ENV,
        MSMLREC_RECORDING_FORMAT: 'mp3-16-stereo',
      },
      [],
      [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : []), ...compiledRecorderArgs(image)],
    );
  const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
  /** Runs `steps` in `mode` on a recorder with `workers` media workers, each RUNS times, the worse kept; stops at a damaged run. */
  const series = async (mode: Mode, workers: string, steps: number[]): Promise<{ load: number[]; results: StepResult[] }> => {
    const load = loadavg();
    const hog = mode === 'hog' ? spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/cpu-hog.ts')], { stdio: 'ignore' }) : null;
    const app = await startRecorder(workers);
    // the recorder's own RSS with no call, started afresh: the per-call figure is what calls add to it
    await sleep(2000);
    const idleRss = rssMb(app.proc.pid as number);
    const results: StepResult[] = [];
    try {
      for (const n of steps) {
        process.stderr.write(`step: ${n} calls, ${mode}, media.workers ${workers} (load average ${load.map((x) => x.toFixed(2)).join(' ')})\n`);
        let worse: StepResult | null = null;
        for (let r = 0; r < RUNS; r++) {
          const res = await step(n, mode, sim, app, uac, idleRss);
          if (!worse || (!res.ok && worse.ok) || (res.ok === worse.ok && res.endP99 > worse.endP99)) worse = res;
          await sleep(2000);
          if (!res.ok) break;
        }
        results.push(worse as StepResult);
        if (!(worse as StepResult).ok) break;
      }
    } finally {
      // SIGTERM lets node write the CPU profile; no call is live any more
      await app.stop(PROFILE ? 'SIGTERM' : 'SIGKILL');
      hog?.kill('SIGKILL');
    }
    return { load, results };
  };
  const byMode: { mode: Mode; load: number[]; results: StepResult[] }[] = [];
  const compared: { workers: string; r: StepResult }[] = [];
  try {
    for (const mode of MODES) byMode.push({ mode, ...(await series(mode, WORKERS, STEPS)) });
    for (const w of COMPARE_WORKERS) {
      const { results: [r] } = await series('quiet', w, [COMPARE_STEP]);
      if (r) compared.push({ workers: w, r });
    }
  } finally {
    uac.stop();
    await sim.stop();
  }
  const profile = PROFILE ? profileTop(PROFILE) : [];
  if (PROFILE) process.stderr.write(`${profile.join('\n')}\n`);
  process.stderr.write('timing the encoders\n');
  const enc = await encoders();
  process.stderr.write('timing the encryption\n');
  const crypt = await encryption();
  const qualities = QUALITY === 3 ? [3] : [QUALITY, 3];
  // the capacity: the largest N all of whose calls were admitted and recorded whole in every run
  const capacity = (results: StepResult[]): string => {
    const best = results.filter((r) => r.ok && r.refused === 0).pop();
    const next = results.find((r) => !r.ok || r.refused > 0);
    const why = next ? (next.ok ? `admission refused ${next.refused} of ${next.n}, every admitted call whole` : next.gaps[0]) : 'the largest step tried';
    return `${best ? `**${best.n}**` : '**none of the steps**'} (${next ? `${next.n}: ${why}` : why})`;
  };
  const lines = [
    `machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}; recorder: compiled build, media.workers ${WORKERS}, media.udp ${UDP}, ${process.env.MSMLREC_ENCODER_ENGINE ?? 'wasm'} encoder (quality ${QUALITY}), 16 kbit/s stereo, admission ${ADMISSION ? 'on (the defaults)' : 'off'}; the phones (${'`bench/rtp-generator.ts`'}) and SIP Server with the drachtio simulator run in their own processes on the same machine`,
    '',
    `each step run ${RUNS} times, the worse run shown; RTP flows before each dialogstart; every 10 ms window of every recording checked from its first sample to the dialogend; a mode stops at the first damaged run`,
    '',
    ...byMode.flatMap(({ mode, load, results }) => [
      `**${MODE_TEXT[mode]}** (load average at the start: ${load.map((x) => x.toFixed(2)).join(' ')}); capacity, every recording whole in ${RUNS} runs: ${capacity(results)}`,
      '',
      ...HEADER,
      ...results.map(row),
      '',
    ]),
    ...(compared.length
      ? [`media workers compared at ${COMPARE_STEP} calls, quiet (0: the media in the main thread), the worse of ${RUNS} runs:`, '', ...HEADER.map((h) => h.replace('| calls |', '| calls (media.workers) |')), ...compared.map(({ workers, r }) => row(r).replace(/^\| \d+ \|/, `| ${r.n} (${workers}) |`)), '']
      : []),
    `| encoder (stereo 16 kbit/s, true stereo, no reservoir; ${ENCODE_SECONDS} s of audio, one core) | × realtime | ratio to native LAME, same settings |`,
    '|---|---|---|',
    ...qualities.map((q) => {
      const w = enc[`wasm-${q}`];
      const nat = enc[`native-${q}`];
      return `| WASM LAME 3.100 (ours), quality ${q}${q === QUALITY ? " (the recorder's)" : ''} | ${w?.toFixed(0)}× | ${w && nat ? (w / nat).toFixed(2) : 'n/a'} |`;
    }),
    `| lamejs (@breezystack/lamejs 1.2.7; quality 3) | ${enc.lamejs?.toFixed(0)}× | ${enc.lamejs && enc['native-3'] ? (enc.lamejs / enc['native-3']).toFixed(2) : 'n/a'} |`,
    ...qualities.map((q) => `| native lame 3.100 (\`-m s --nores -b 16 --cbr -q ${q}\`) | ${enc[`native-${q}`] ? `${enc[`native-${q}`]?.toFixed(0)}×` : 'not installed'} | 1 |`),
    '',
    `encryption (CMS EnvelopedData, aes-256-cbc, RSA-OAEP for 2 certificates of 2048 bits; a 4-hour 16 kbit/s recording, ${(crypt.bytes / 1e6).toFixed(1)} MB): ${crypt.seconds.toFixed(2)} s of CPU (${(crypt.bytes / 1e6 / crypt.seconds).toFixed(0)} MB/s), ${((crypt.seconds / 4) * 1000).toFixed(0)} ms per hour of recording, added between the stop and the delivery`,
    '',
    `benchmark time: ${((Date.now() - started) / 1000).toFixed(0)} s`,
  ];
  const text = [...lines, ...(profile.length ? ['', `CPU profile of the recorder's threads over the whole run (${RUNS} run(s) of ${STEPS.join(', ')} calls, ${MODES.join(', ')}):`, '', ...profile] : [])].join('\n');
  process.stdout.write(`${text}\n`);
  // a profiled run is slower (the profiler's own cost): it does not replace the benchmark's figures
  writeFileSync(join(ROOT, PROFILE ? 'bench/profile.md' : 'bench/latest.md'), `${text}\n`);
}

await main();
process.exit(0);
