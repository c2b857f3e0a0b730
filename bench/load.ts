/**
 * Load benchmark (`npm run bench`): how many concurrent two-party calls this machine records without a gap.
 *
 * This process is the load generator and SIP Server stand-in: it runs the drachtio simulator and sends, over real
 * loopback SIP and UDP, N calls of two legs each (same conf-id, PCMU, each party a different tone), an MSML
 * dialogstart, 50 RTP packets/s per leg for `seconds`, a pause/resume on every 5th call, and BYEs. The recorder is
 * its own process (the compiled build, as in production). For each N it reports INVITE→200 latency at the set-up
 * rate, MSML INFO→200 latency, relay latency on the wire (a 2 s loopback capture with dumpcap: kernel timestamps of a
 * datagram reaching a recorder port and of its relayed copy leaving one) and as the generator sees it, the recorder's CPU and RSS per call, its
 * encode lag, RTP loss, and whether every recording decodes to the right length with both parties audible in every
 * 10 ms window outside the pauses, each on its own channel. It stops at the first N with a gap. Then it times the encoders on the same
 * audio: WASM LAME and lamejs in this process, native `lame` in a child, as a ratio of native.
 *
 * Each step runs BENCH_RUNS times (3, in a row) and the worse run is reported. Both parties send RTP before the MSML dialogstart
 * (as on a live call), and every 10 ms window from each recording's first sample is checked.
 *
 * The steps run with BENCH_WORKERS media workers (2); then BENCH_COMPARE_STEP calls (300) run again with each of
 * BENCH_COMPARE_WORKERS (1, and 0: the media in the main thread), so one table shows how the media plane scales.
 *
 * Options (env): BENCH_STEPS=100,200,300,400  BENCH_RUNS=3  BENCH_SECONDS=20  BENCH_RATE=40 (calls/s)  BENCH_ENCODE_SECONDS=600
 * BENCH_WORKERS=2  BENCH_COMPARE_WORKERS=1,0  BENCH_COMPARE_STEP=300
 * BENCH_PROFILE=<dir>: the recorder runs with --cpu-prof into <dir>, and the top functions by self time are printed.
 * BENCH_NO_SCRAPE=1: do not poll /metrics during the talk time (encode lag then reads 0).
 */
import { execFile, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { copyFileSync, cpSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { encodeG711 } from '../src/media/g711.js';
import { buildRtp } from '../src/media/rtp-packet.js';
import { encryptFile, loadRecipient } from '../src/recording/cms-envelope.js';
import { encoderFactory, type EncoderFactory } from '../src/recording/mp3-encoder.js';
import type { Sidecar } from '../src/recording/metadata.js';
import { decode, toneShare } from '../test/harness/audio.js';
import { tonePcm } from '../test/harness/pcap.js';
import { parsePromText } from '../test/harness/prom-text.js';
import { ROOT, startApp, startSim, tempDir, type AppProcess } from '../test/harness/recorder-harness.js';
import { SipUac, type UacDialog } from '../test/harness/sip-uac.js';
import { startCapture, type CapturedUdp } from '../test/harness/capture.js';
import { sleep } from '../test/harness/until.js';

const run = promisify(execFile);
const STEPS = (process.env.BENCH_STEPS ?? '100,200,300,400').split(',').map(Number);
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
const COMPARE_WORKERS = (process.env.BENCH_COMPARE_WORKERS ?? '1,0').split(',').filter((w) => w !== '' && w !== WORKERS);
const COMPARE_STEP = Number(process.env.BENCH_COMPARE_STEP ?? 300);
const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const CLK = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim() || 100);
const cpuSeconds = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK; // utime + stime, all threads
};
const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** One party's RTP: its socket, what it sent (for relay latency), what it got back from the other party. */
class Party {
  seq = 0;
  /** A packet held back to be sent after its successor (reordering), or null. */
  held: number | null = null;
  /** This party's offset in the 20 ms packet period, ms. */
  readonly phase: number;
  /** performance.now() when it started sending. */
  startedAt = 0;
  sentAt = new Float64Array(65536);
  received = 0;
  remotePort = 0;
  constructor(
    readonly socket: Socket,
    readonly port: number,
    readonly ssrc: number,
  ) {
    this.phase = (ssrc * 7.31) % 20;
  }
  static async open(ssrc: number): Promise<Party> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    s.setRecvBufferSize?.(1 << 20);
    return new Party(s, s.address().port, ssrc);
  }
}

interface Call {
  conf: string;
  a: Party;
  b: Party;
  dlgA: UacDialog | null;
  dlgB: UacDialog | null;
  pauses: boolean;
}

/** A packet's send jitter, 0-4 ms, fixed by party and sequence number (runs are comparable). */
const jitterMs = (ssrc: number, seq: number): number => (((ssrc * 2654435761 + seq * 40503) >>> 0) % 4000) / 1000;
const sdp = (port: number): string => `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n`;
const MSML = { 'content-type': 'application/vnd.radisys.msml+xml' };

interface StepResult {
  n: number;
  ok: boolean;
  gaps: string[];
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
  relayP50: number;
  relayP99: number;
  /** Relay latency on the wire (loopback capture), ms. */
  wireP50: number;
  wireP99: number;
  wireMax: number;
  cpuPerCall: number;
  rssPerCall: number;
  rssMb: number;
  encodeLagMax: number;
  lost: number;
  generatorCpu: number;
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

async function step(n: number, sim: Awaited<ReturnType<typeof startSim>>, app: AppProcess, uac: SipUac): Promise<StepResult> {
  const pid = app.proc.pid as number;
  const payload = { a: encodeG711('PCMU', tonePcm({ freq: FREQ.a, amplitude: 6000 }, 1)), b: encodeG711('PCMU', tonePcm({ freq: FREQ.b, amplitude: 6000 }, 1)) };
  const calls: Call[] = [];
  const inviteMs: number[] = [];
  const msmlMs: number[] = [];
  /** An MSML INFO, timed from send to its 200 (what SIP Server waits for). */
  const info = async (dialog: UacDialog, body: string): Promise<string> => {
    const s = performance.now();
    const r = await uac.request('INFO', '', { dialog, headers: MSML, body });
    msmlMs.push(performance.now() - s);
    return String(r.content);
  };
  const relayMs: number[] = [];
  const ruri = (conf: string, dn: string): string => `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=${dn};record;tenant-dbid=1;media-service=record;gvp-tenant-id=Bench.Record`;
  const before = parsePromText((await app.ops('/metrics')).body);
  const link = await startCapture(`tcp port ${sim.controlPort}`);
  const genCpu0 = process.cpuUsage();

  // RTP clock: one loop for every party, absolute schedule (catches up after a late timer)
  let sending = true;
  const t0 = performance.now();
  const live: Party[] = [];
  const listen = (p: Party, other: Party): void => {
    p.socket.on('message', (m) => {
      p.received++;
      const seq = m.readUInt16BE(2);
      const sent = other.sentAt[seq];
      if (sent > 0 && (p.received & 3) === 0) relayMs.push(performance.now() - sent);
    });
  };
  let lastPump = performance.now();
  let pumpStall = 0;
  // every party has its own 20 ms clock phase, as independent phones do (a generator that sends every party's packet
  // in the same instant measures the queue behind its own burst, not the relay), a few ms of jitter, and every 97th
  // packet comes after its successor (reordered)
  const pump = setInterval(() => {
    const nowP = performance.now();
    pumpStall = Math.max(pumpStall, nowP - lastPump);
    lastPump = nowP;
    if (!sending) return;
    for (const p of live) {
      if (!p.remotePort) continue;
      for (;;) {
        if (p.startedAt + p.phase + p.seq * 20 + jitterMs(p.ssrc, p.seq) > nowP) break;
        if (p.seq % 97 === 50) {
          p.held = p.seq; // goes out right after its successor
        } else {
          send(p, p.seq);
          if (p.held !== null) send(p, p.held);
          p.held = null;
        }
        p.seq++;
      }
    }
  }, 1);
  const send = (p: Party, seq: number): void => {
    const which = (p.ssrc & 1) === 0 ? payload.a : payload.b;
    const off = (seq % 50) * 160;
    const pkt = buildRtp({ payloadType: 0, marker: seq === 0, sequence: seq & 0xffff, timestamp: (seq * 160) >>> 0, ssrc: p.ssrc, payload: which.subarray(off, off + 160) });
    p.sentAt[seq & 0xffff] = performance.now();
    p.socket.send(pkt, p.remotePort, '127.0.0.1');
  };

  // set-up at RATE calls/s
  const setups: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const conf = `b${n}x${String(i).padStart(4, '0')}00000000`;
    const a = await Party.open(i * 2);
    const b = await Party.open(i * 2 + 1);
    listen(a, b);
    listen(b, a);
    const call: Call = { conf, a, b, dlgA: null, dlgB: null, pauses: i % 5 === 0 };
    calls.push(call);
    setups.push(
      (async () => {
        const invite = async (party: Party, dn: string): Promise<UacDialog> => {
          const s = performance.now();
          const r = await uac.request('INVITE', ruri(conf, dn), { headers: { 'content-type': 'application/sdp' }, body: sdp(party.port) });
          inviteMs.push(performance.now() - s);
          if (r.status !== 200) throw new Error(`INVITE ${conf}: ${r.status}`);
          party.remotePort = Number(/m=audio (\d+)/.exec(String(r.content))?.[1]);
          party.startedAt = performance.now();
          live.push(party);
          return uac.dialogOf(r);
        };
        call.dlgA = await invite(a, '8001');
        call.dlgB = await invite(b, '8002');
        // SIP Server starts the recording a moment after the call is up: both parties' RTP is flowing by then
        await sleep(150 + ((i * 37) % 300));
        const r = await info(call.dlgA, `<msml version="1.1"><dialogstart target="conf:${conf}" name="rec"><record format="audio/mp3"/></dialogstart></msml>`);
        if (!/response="200"/.test(r)) throw new Error(`dialogstart ${conf}: ${r}`);
      })(),
    );
    await sleep(1000 / RATE);
  }
  await Promise.all(setups);
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
  const w0 = performance.now();
  const pauseAt = SECONDS * 1000 * 0.3;
  const resumeAt = SECONDS * 1000 * 0.5;
  const control = async (event: string): Promise<void> => {
    await Promise.all(calls.filter((c) => c.pauses).map((c) => info(c.dlgA as UacDialog, `<msml version="1.1"><send target="conf:${c.conf}/dialog:rec" event="${event}"/></msml>`)));
  };
  await sleep(Math.max(0, pauseAt - 2000));
  await control('pause');
  await sleep(resumeAt - pauseAt);
  await control('resume');
  await sleep(Math.max(0, SECONDS * 1000 - (performance.now() - setupDone)));
  const cpu1 = cpuSeconds(pid);
  const w1 = performance.now();
  const rss = rssMb(pid);
  clearInterval(lagPoll);

  // tear down
  sending = false;
  const sendingStopped = Date.now();
  clearInterval(pump);
  const spooled = app.logs.filter((l) => l.includes('"recording spooled"')).length;
  await Promise.all(calls.map(async (c) => {
    await uac.request('BYE', '', { dialog: c.dlgA as UacDialog });
    await uac.request('BYE', '', { dialog: c.dlgB as UacDialog });
  }));
  const genCpu = process.cpuUsage(genCpu0);
  for (const c of calls) {
    c.a.socket.close();
    c.b.socket.close();
  }
  const deadline = Date.now() + 60_000;
  while (app.logs.filter((l) => l.includes('"recording spooled"')).length < spooled + n && Date.now() < deadline) await sleep(200);
  const after = parsePromText((await app.ops('/metrics')).body);

  // verify every recording: length, both parties audible in every 10 ms window outside the pause, channels by leg
  const gaps: string[] = [];
  const sidecars = readdirSync(app.spoolDir).filter((f) => f.endsWith('.json') && !f.endsWith('.open.json'));
  const mine = sidecars.map((f) => JSON.parse(readFileSync(join(app.spoolDir, f), 'utf8')) as Sidecar).filter((s) => s.confId?.startsWith(`b${n}x`));
  if (mine.length !== n) gaps.push(`${mine.length} of ${n} recordings spooled`);
  let checked = 0;
  const checkOne = async (s: Sidecar): Promise<void> => {
    const d = decode(join(app.spoolDir, s.files.mp3.name));
    const pauses = s.events.filter((e) => e.type === 'pause' || e.type === 'resume').map((e) => e.offsetMs / 1000);
    const inPause = (t: number): boolean => pauses.length >= 2 && t > pauses[0] - 0.15 && t < pauses[1] + 0.15;
    if (Math.abs(d.seconds - s.durationMs / 1000) > 0.05) gaps.push(`${s.confId}: decodes to ${d.seconds} s, sidecar says ${s.durationMs} ms`);
    // both parties talk from before the dialogstart: every window from the recording's first sample is checked, up to
    // the moment the generator stopped sending (it hangs up after that; at 300 calls the BYEs take a while)
    const from = 0;
    const to = Math.min(d.seconds, (sendingStopped - Date.parse(s.startTime)) / 1000) - 0.1;
    // a gap is audio missing: a 10 ms window far below the tone's level (a 20 ms hole always covers one whole
    // window). A phase step from a clock correction is not a gap and does not lower the level.
    const silent: string[] = [];
    const rms = (x: Int16Array): number => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / Math.max(1, x.length));
    for (let w = from; w + 0.01 <= to; w += 0.01) {
      if (inPause(w) || inPause(w + 0.01)) continue;
      const i0 = Math.round(w * 8000);
      const l = rms(d.channels[0].subarray(i0, i0 + 80));
      const r = rms(d.channels[1].subarray(i0, i0 + 80));
      if (l < 1000 || r < 1000) silent.push(`${w.toFixed(2)} s (L ${l.toFixed(0)}, R ${r.toFixed(0)})`);
    }
    // and each party on its own channel (fixed by leg): the tone of party A dominates the left, B the right
    const share = (c: Int16Array, f: number): number => {
      const xs: number[] = [];
      for (let i = 8000; i + 800 <= c.length - 8000; i += 800) if (!inPause(i / 8000) && !inPause((i + 800) / 8000)) xs.push(toneShare(c.subarray(i, i + 800), f));
      return pct(xs, 50);
    };
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
  const lost = (after.get('msmlrec_rtp_lost_total') ?? 0) - (before.get('msmlrec_rtp_lost_total') ?? 0);
  const late = (after.get('msmlrec_rtp_late_total') ?? 0) - (before.get('msmlrec_rtp_late_total') ?? 0);
  if (late > 0) gaps.push(`${late} RTP packets arrived too late for the jitter buffer`);
  const dropped = (after.get('msmlrec_audio_dropped_late_seconds_total') ?? 0) - (before.get('msmlrec_audio_dropped_late_seconds_total') ?? 0);
  if (dropped > 0) gaps.push(`${dropped.toFixed(3)} channel-seconds of audio reached the mixer after their place was encoded`);
  if (lost > 0) gaps.push(`${lost} RTP packets lost at the recorder`);
  const cpuPerCall = (cpu1 - cpu0) / ((w1 - w0) / 1000) / n;
  process.stderr.write(`  N=${n}: generator's longest send pause ${pumpStall.toFixed(0)} ms; recorder event-loop delay max ${((after.get('msmlrec_nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000).toFixed(0)} ms, p99 ${((after.get('msmlrec_nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000).toFixed(0)} ms\n`);
  process.stderr.write(`  N=${n}: checked ${checked} recordings, ${gaps.length} problem(s)${gaps.length ? `: ${gaps.slice(0, 3).join('; ')}` : ''}\n`);
  return {
    n,
    ok: gaps.length === 0,
    gaps,
    inviteP50: pct(inviteMs, 50),
    inviteP99: pct(inviteMs, 99),
    linkInviteP99: pct(linkMs.invite, 99),
    linkMsmlP99: pct(linkMs.info, 99),
    msmlP50: pct(msmlMs, 50),
    msmlP99: pct(msmlMs, 99),
    relayP50: pct(relayMs, 50),
    relayP99: pct(relayMs, 99),
    wireP50: pct(wireMs, 50),
    wireP99: pct(wireMs, 99),
    wireMax: wireMs.length ? Math.max(...wireMs) : NaN,
    cpuPerCall,
    rssMb: rss,
    rssPerCall: 0,
    encodeLagMax: Math.max(0, ...lags),
    loopMainMax: Math.max(0, ...loopMain),
    loopMediaMax: Math.max(0, ...loopMedia),
    lost,
    generatorCpu: (genCpu.user + genCpu.system) / 1e6 / ((performance.now() - t0) / 1000),
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
function printProfile(dir: string): void {
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    const prof = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]; samples: number[] };
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    for (const id of prof.samples) {
      const cf = byId.get(id)?.callFrame;
      const key = cf ? `${cf.functionName || '(anonymous)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}` : '?';
      self.set(key, (self.get(key) ?? 0) + 1);
    }
    const total = prof.samples.length;
    process.stderr.write(`profile ${f} (${total} samples):\n`);
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 12)) process.stderr.write(`  ${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}\n`);
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  process.stderr.write(`msml-recorder load benchmark: steps ${STEPS.join(', ')} calls, ${SECONDS} s each, set-up ${RATE} calls/s\n`);
  // the recorder runs the compiled build, laid out like the Docker image
  const image = tempDir('bench-image');
  await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(image, 'dist')], { cwd: ROOT });
  cpSync(join(ROOT, 'conf'), join(image, 'conf'), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(image, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(image, 'node_modules'));
  const sim = await startSim();
  const startRecorder = (workers: string): Promise<AppProcess> =>
    startApp(
      sim,
      {
        MSMLREC_LOG_LEVEL: 'info',
        MSMLREC_MEDIA_WORKERS: workers,
        MSMLREC_ENCODER_WORKERS: '0',
        MSMLREC_ENCODER_QUALITY: String(QUALITY),
        MSMLREC_RTP_PORT_MIN: String(RTP_MIN),
        MSMLREC_RTP_PORT_MAX: String(RTP_MAX),
        MSMLREC_CLUSTER_MAX_CALLS: '5000',
        // the benchmark looks for the load where audio suffers: admission by load (which would turn calls away first) is off
        MSMLREC_ADMISSION_MAX_LOOP_DELAY_MS: '0',
        MSMLREC_ADMISSION_MAX_ENCODE_LAG_MS: '0',
        MSMLREC_RECORDING_FORMAT: 'mp3-16-stereo',
      },
      [],
      [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : []), join(image, 'dist/src/cli.js'), 'run'],
    );
  const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
  /** Runs `steps` on a recorder with `workers` media workers, each RUNS times, the worse kept; stops at a gap. */
  const series = async (workers: string, steps: number[]): Promise<StepResult[]> => {
    const app = await startRecorder(workers);
    const out: StepResult[] = [];
    try {
      for (const n of steps) {
        process.stderr.write(`step: ${n} calls, media.workers ${workers}\n`);
        let worse: StepResult | null = null;
        for (let run = 0; run < RUNS; run++) {
          const r = await step(n, sim, app, uac);
          if (!worse || (!r.ok && worse.ok) || (r.ok === worse.ok && r.relayP99 > worse.relayP99)) worse = r;
          await sleep(2000);
          if (!r.ok) break;
        }
        out.push(worse as StepResult);
        if (!(worse as StepResult).ok) break;
      }
    } finally {
      // SIGTERM lets node write the CPU profile; no call is live any more
      await app.stop(PROFILE ? 'SIGTERM' : 'SIGKILL');
    }
    return out;
  };
  let results: StepResult[] = [];
  const compared: { workers: string; r: StepResult }[] = [];
  try {
    results = await series(WORKERS, STEPS);
    for (const w of COMPARE_WORKERS) {
      const [r] = await series(w, [COMPARE_STEP]);
      if (r) compared.push({ workers: w, r });
    }
    const own = results.find((r) => r.n === COMPARE_STEP);
    if (own) compared.push({ workers: WORKERS, r: own });
  } finally {
    uac.stop();
    await sim.stop();
  }
  if (PROFILE) printProfile(PROFILE);
  process.stderr.write('timing the encoders\n');
  const enc = await encoders();
  process.stderr.write('timing the encryption\n');
  const crypt = await encryption();
  const best = results.filter((r) => r.ok).pop();
  const qualities = QUALITY === 3 ? [3] : [QUALITY, 3];
  const lines = [
    `machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}; recorder: compiled build, ${process.env.MSMLREC_ENCODER_ENGINE ?? 'wasm'} encoder (quality ${QUALITY}), 16 kbit/s stereo; load generator in the same machine`,
    '',
    `each step run ${RUNS} times, the worse run shown; RTP flows before each dialogstart; gaps checked in every 10 ms window from each recording's first sample`,
    '',
    `media.workers ${WORKERS} (a worker thread per core; SIP, MSML and delivery on the main thread):`,
    '',
    '| calls | gaps | recorder CPU per call | recorder RSS | encode lag max | RTP lost | INVITE→200 p50 / p99 | MSML INFO→200 p50 / p99 | at the recorder: INVITE / MSML p99 | relay on the wire p50 / p99 / max | relay seen by the generator p50 / p99 | generator CPU |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.n} | ${r.ok ? 'none' : r.gaps.length} | ${(r.cpuPerCall * 100).toFixed(2)} % of a core | ${r.rssMb.toFixed(0)} MB (${((r.rssMb * 1024) / r.n).toFixed(0)} kB/call) | ${r.encodeLagMax.toFixed(2)} s | ${r.lost} | ${r.inviteP50.toFixed(1)} / ${r.inviteP99.toFixed(1)} ms | ${r.msmlP50.toFixed(1)} / ${r.msmlP99.toFixed(1)} ms | ${r.linkInviteP99.toFixed(1)} / ${r.linkMsmlP99.toFixed(1)} ms | ${r.wireP50.toFixed(2)} / ${r.wireP99.toFixed(2)} / ${r.wireMax.toFixed(1)} ms | ${r.relayP50.toFixed(2)} / ${r.relayP99.toFixed(2)} ms | ${(r.generatorCpu * 100).toFixed(0)} % of a core |`,
    ),
    '',
    `largest N without a gap: **${best ? best.n : 'none'}** concurrent two-party calls (steps tried: ${results.map((r) => r.n).join(', ')})`,
    '',
    `media workers compared at ${COMPARE_STEP} calls (0: the media in the main thread, with SIP, MSML and delivery), the worse of ${RUNS} runs:`,
    '',
    '| media.workers | gaps | recorder CPU per call | INVITE→200 p99 (generator / at the recorder) | MSML INFO→200 p99 (generator / at the recorder) | relay on the wire p50 / p99 / max | event-loop delay p99, worst second: main / media | encode lag max |',
    '|---|---|---|---|---|---|---|---|',
    ...compared.map(
      ({ workers, r }) =>
        `| ${workers} | ${r.ok ? 'none' : r.gaps.length} | ${(r.cpuPerCall * 100).toFixed(2)} % | ${r.inviteP99.toFixed(1)} / ${r.linkInviteP99.toFixed(1)} ms | ${r.msmlP99.toFixed(1)} / ${r.linkMsmlP99.toFixed(1)} ms | ${r.wireP50.toFixed(2)} / ${r.wireP99.toFixed(2)} / ${r.wireMax.toFixed(1)} ms | ${r.loopMainMax.toFixed(1)} / ${r.loopMediaMax.toFixed(1)} ms | ${r.encodeLagMax.toFixed(2)} s |`,
    ),
    '',
    `| encoder (stereo 16 kbit/s, true stereo, no reservoir; ${ENCODE_SECONDS} s of audio, one core) | × realtime | ratio to native LAME, same settings |`,
    '|---|---|---|',
    ...qualities.map((q) => {
      const w = enc[`wasm-${q}`];
      const nat = enc[`native-${q}`];
      return `| WASM LAME 3.100 (ours), quality ${q}${q === QUALITY ? ' (the recorder\'s)' : ''} | ${w?.toFixed(0)}× | ${w && nat ? (w / nat).toFixed(2) : 'n/a'} |`;
    }),
    `| lamejs (@breezystack/lamejs 1.2.7; quality 3) | ${enc.lamejs?.toFixed(0)}× | ${enc.lamejs && enc['native-3'] ? (enc.lamejs / enc['native-3']).toFixed(2) : 'n/a'} |`,
    ...qualities.map((q) => `| native lame 3.100 (\`-m s --nores -b 16 --cbr -q ${q}\`) | ${enc[`native-${q}`] ? `${enc[`native-${q}`]?.toFixed(0)}×` : 'not installed'} | 1 |`),
    '',
    `encryption (CMS EnvelopedData, aes-256-cbc, RSA-OAEP for 2 certificates of 2048 bits; a 4-hour 16 kbit/s recording, ${(crypt.bytes / 1e6).toFixed(1)} MB): ${crypt.seconds.toFixed(2)} s of CPU (${(crypt.bytes / 1e6 / crypt.seconds).toFixed(0)} MB/s), ${((crypt.seconds / 4) * 1000).toFixed(0)} ms per hour of recording, added between the stop and the delivery`,
    '',
    `benchmark time: ${((Date.now() - started) / 1000).toFixed(0)} s`,
  ];
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  writeFileSync(join(ROOT, 'bench/latest.md'), `${text}\n`);
}

await main();
process.exit(0);
