/**
 * Recording → worker pool → spool, on a simulated clock, decoded by ffmpeg: every format has the right channel count,
 * rate and exact duration, the WAV copy matches, a crashed encoder worker costs a recording a splice, not its rest, and
 * a recording keeps the audio that arrived while its files were still being opened.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import wavefile from 'wavefile';
import type { G711Law } from '../../src/media/g711.js';
import type { SampleClock } from '../../src/media/sample-clock.js';
import { EncoderPool } from '../../src/recording/encoder-pool.js';
import { MediaSession } from '../../src/plane/media-session.js';
import { Recording } from '../../src/recording/recording.js';
import type { Mp3Format } from '../../src/recording/mp3-encoder.js';
import { decode, probe, rmsDb, span, toneShare } from '../harness/audio.js';
import { tonePcm } from '../harness/pcap.js';

const log = pino({ level: 'silent' });

class FakeClock implements SampleClock {
  t = 80_000;
  now(): number {
    return this.t;
  }
  wallMs(p: number): number {
    return 1_790_000_000_000 + p / 8;
  }
}

const ctx = (id: string) => ({
  id,
  confId: 'conf1',
  callUUID: id,
  dialogId: 'conn:x/dialog:rec',
  dn: '7001',
  tenant: 'Environment',
  ivrProfile: 'record',
  tenantDbid: '1',
  uriParams: {},
  msml: { dest: null, format: null, maxtimeMs: null, attrs: {}, params: {} },
});

const LEFT = 500;
const RIGHT = 1400;

/** Feeds `seconds` of 20 ms packets: left tone on slot 0, right tone on slot 1 except a silent gap in [gapFrom, gapTo). */
async function feed(rec: Recording, clock: FakeClock, seconds: number, opts: { gap?: [number, number]; onSecond?: (s: number) => void } = {}): Promise<void> {
  const l = tonePcm({ freq: LEFT, amplitude: 8000 }, seconds);
  const r = tonePcm({ freq: RIGHT, amplitude: 8000 }, seconds);
  const start = clock.t;
  for (let k = 0; k < seconds * 50; k++) {
    const at = start + k * 160;
    rec.write(0, at, l.subarray(k * 160, (k + 1) * 160));
    const sec = k / 50;
    if (!opts.gap || sec < opts.gap[0] || sec >= opts.gap[1]) rec.write(1, at, r.subarray(k * 160, (k + 1) * 160));
    clock.t = at + 160;
    if (k % 5 === 4) {
      rec.tick();
      await new Promise((res) => setImmediate(res));
    }
    if (k % 50 === 49) opts.onSecond?.((k + 1) / 50);
  }
}

const formats: { name: string; format: Mp3Format; wav: G711Law | null }[] = [
  { name: 'mp3-8-mono + PCMA WAV', format: { channels: 1, kbps: 8 }, wav: 'PCMA' },
  { name: 'mp3-16-stereo + PCMU WAV', format: { channels: 2, kbps: 16 }, wav: 'PCMU' },
  { name: 'mp3-32-stereo', format: { channels: 2, kbps: 32 }, wav: null },
];

t.test('every format decodes with the right channels, rate and exact duration; the WAV copy matches', async (t) => {
  const pool = new EncoderPool(2, log);
  t.teardown(() => pool.close());
  for (const f of formats) {
    await t.test(f.name, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'rec-files-'));
      const clock = new FakeClock();
      const rec = new Recording({ pool, spoolDir: dir, clock, log, format: f.format, wav: f.wav, holdSamples: 1120, leftChannel: 'other' }, ctx(`fmt-${f.format.kbps}`));
      await rec.open();
      await feed(rec, clock, 6.3, { gap: [2, 3] });
      const fin = await rec.stop('record.terminate', []);
      t.equal(fin.sidecar.durationMs, 6300);
      const p = probe(fin.mp3Path);
      t.same([p.codec, p.channels, p.sampleRate], ['mp3', f.format.channels, 8000], 'mp3 stream');
      t.equal(readFileSync(fin.mp3Path).length % ((72 * f.format.kbps) / 8), 0, 'whole CBR frames');
      const d = decode(fin.mp3Path);
      t.equal(d.channels[0].length, 6.3 * 8000, 'decodes to exactly the recorded samples (Info frame: delay and padding)');
      if (f.format.channels === 2) {
        t.ok(toneShare(span(d.channels[0], 1, 2), LEFT) > 0.8, 'left: the left tone');
        t.ok(toneShare(span(d.channels[1], 1, 2), RIGHT) > 0.8, 'right: the right tone');
        t.ok(rmsDb(span(d.channels[1], 2.1, 2.9)) < -50, 'right: the gap is silence');
        t.ok(toneShare(span(d.channels[1], 3.1, 4), RIGHT) > 0.8, 'right: the tone after the gap');
      } else {
        const both = span(d.channels[0], 1, 2);
        t.ok(toneShare(both, LEFT) > 0.3 && toneShare(both, RIGHT) > 0.3, 'mono: both parties mixed');
        t.ok(toneShare(span(d.channels[0], 2.1, 2.9), LEFT) > 0.8, 'mono: only the left party in the gap');
      }
      if (f.wav) {
        t.ok(fin.wavPath, 'a WAV copy');
        const wp = probe(fin.wavPath as string);
        t.same([wp.codec, wp.channels, wp.sampleRate], [f.wav === 'PCMU' ? 'pcm_mulaw' : 'pcm_alaw', 2, 8000], 'G.711 WAV, stereo');
        const w = new wavefile.WaveFile(readFileSync(fin.wavPath as string));
        const fmt = w.fmt as { audioFormat: number; numChannels: number };
        t.equal(fmt.audioFormat, f.wav === 'PCMU' ? 7 : 6, 'format tag');
        const wd = decode(fin.wavPath as string);
        t.equal(wd.channels[0].length, 6.3 * 8000, 'WAV duration exact: header patched');
        t.ok(toneShare(span(wd.channels[0], 1, 2), LEFT) > 0.9 && toneShare(span(wd.channels[1], 1, 2), RIGHT) > 0.9, 'WAV channels as the MP3');
        t.ok(rmsDb(span(wd.channels[1], 2.05, 2.95)) < -60, 'WAV gap is silence');
        t.equal(fin.sidecar.files.wav?.size, readFileSync(fin.wavPath as string).length);
      } else {
        t.equal(fin.wavPath, null);
      }
    });
  }
});

t.test('a crashed encoder worker: the recording continues on a new one; the other worker\'s recording is untouched', async (t) => {
  const pool = new EncoderPool(2, log);
  t.teardown(() => pool.close());
  const dir = mkdtempSync(join(tmpdir(), 'rec-crash-'));
  const clock = new FakeClock();
  const deps = { pool, spoolDir: dir, clock, log, format: { channels: 2, kbps: 16 } as Mp3Format, wav: null, holdSamples: 1120, leftChannel: 'other' };
  const a = new Recording(deps, ctx('crash-a'));
  const b = new Recording(deps, ctx('crash-b'));
  await a.open();
  await b.open();
  // both are fed by one loop: b mirrors a's audio
  const origWrite = a.write.bind(a);
  a.write = (slot, at, pcm) => {
    origWrite(slot, at, pcm);
    b.write(slot, at, pcm);
  };
  const origTick = a.tick.bind(a);
  a.tick = () => {
    origTick();
    b.tick();
  };
  await feed(a, clock, 8, { onSecond: (s) => s === 3 && pool.crashWorkerOf(a.mediaId) });
  const [fa, fb] = await Promise.all([a.stop('record.terminate', []), b.stop('record.terminate', [])]);
  t.equal(fb.sidecar.truncated, false);
  t.equal(decode(fb.mp3Path).channels[0].length, 8 * 8000, 'the other recording is exact');
  t.equal(fa.sidecar.truncated, false, 'not truncated: it continued');
  t.ok(fa.sidecar.events.some((e) => e.type === 'encoder.restart'), 'the restart is in the history');
  const d = decode(fa.mp3Path);
  // the dead encoder takes what it buffered with it (LAME's look-ahead, under 0.15 s; without a bit reservoir no frame
  // depends on the lost ones)
  t.ok(Math.abs(d.seconds - 8) < 0.15, `duration ${d.seconds.toFixed(3)} s is 8 s ± 0.15 s (one splice)`);
  t.ok(toneShare(span(d.channels[0], 6, 7.5), LEFT) > 0.8 && toneShare(span(d.channels[1], 6, 7.5), RIGHT) > 0.8, 'audio after the crash, channels kept');
});

/** A media session (the media side of a call, as on a media host) on a fake clock whose recordings use `pool`. */
function slowSession(pool: EncoderPool): { clock: FakeClock; session: MediaSession; start: () => Promise<string> } {
  const clock = new FakeClock();
  const session = new MediaSession('slow1', log, clock, 1120, 500);
  const deps = { pool, spoolDir: mkdtempSync(join(tmpdir(), 'rec-slow-')), clock, log, format: { channels: 2, kbps: 16 } as const, wav: null, holdSamples: 1120, leftChannel: 'other' };
  return { clock, session, start: () => session.start(deps, ctx('slow1'), Number.POSITIVE_INFINITY) };
}

t.test('capture starts at dialogstart: the audio that arrives while the files are still opening is in the MP3', async (t) => {
  const pool = new EncoderPool(1, log);
  t.teardown(() => pool.close());
  // an encoder pool (standing for a slow disk or a busy pool) whose open completes only when the test says so
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  let opened = false;
  const slow = {
    open: async (id: string, f: Mp3Format) => {
      await gate;
      await pool.open(id, f);
      opened = true;
    },
    encode: (id: string, input: Int16Array[]) => pool.encode(id, input),
    finish: (id: string) => pool.finish(id),
  } as unknown as EncoderPool;
  const { clock, session, start } = slowSession(slow);
  const sink = session.sinkFor(0);
  void start();
  t.equal(opened, false, 'started while the encoder was still opening');
  const head = tonePcm({ freq: 700, amplitude: 8000 }, 0.5);
  const rest = tonePcm({ freq: 1100, amplitude: 8000 }, 1);
  const play = async (pcm: Int16Array): Promise<void> => {
    for (let k = 0; k < pcm.length / 160; k++) {
      sink(0, clock.t, pcm.subarray(k * 160, (k + 1) * 160));
      clock.t += 160;
      session.tick();
      await new Promise((r) => setImmediate(r));
    }
  };
  await play(head); // the first 500 ms: the files are not open yet
  t.equal(opened, false, 'the first 500 ms arrived before the files were open');
  release();
  while (!opened) await new Promise((r) => setTimeout(r, 5));
  await play(rest);
  const fin = await session.stop('record.terminate');
  t.ok(fin, 'finalized');
  const d = decode(fin?.mp3Path ?? '');
  t.equal(d.channels[0].length, 1.5 * 8000, 'the file covers the whole 1.5 s from dialogstart');
  t.ok(toneShare(span(d.channels[0], 0.02, 0.48), 700) > 0.9, `its first 500 ms are the audio captured before the open (700 Hz share ${toneShare(span(d.channels[0], 0.02, 0.48), 700).toFixed(3)})`);
  t.ok(toneShare(span(d.channels[0], 0.55, 1.45), 1100) > 0.9, 'then the rest');
});

t.test('a recording that starts between two packets has audio from its first sample', async (t) => {
  const pool = new EncoderPool(1, log);
  t.teardown(() => pool.close());
  const { clock, session, start } = slowSession(pool);
  const sink = session.sinkFor(0);
  const tone = tonePcm({ freq: 700, amplitude: 8000 }, 2);
  // RTP flows before the dialogstart, as on a live call; the dialogstart arrives 12 ms into a packet's 20 ms, and
  // the leg's clock runs a packet ahead of arrival (its first packet came late): the newest packet already released
  // starts 8 ms after the start, the one before covers the start
  sink(0, clock.t - 160 - 12 * 8, tone.subarray(0, 160));
  sink(0, clock.t - 12 * 8, tone.subarray(160, 320));
  sink(0, clock.t + 8 * 8, tone.subarray(320, 480));
  await start();
  let at = clock.t + 8 * 8 + 160;
  for (let k = 3; k < 100; k++) {
    clock.t = at;
    sink(0, at, tone.subarray(k * 160, (k + 1) * 160));
    at += 160;
    session.tick();
    await new Promise((r) => setImmediate(r));
  }
  clock.t = at;
  const fin = await session.stop('record.terminate');
  const d = decode(fin?.mp3Path ?? '');
  t.equal(fin?.lateSamples, 0, 'nothing counted as late');
  t.ok(rmsDb(span(d.channels[0], 0, 0.007)) > -19, `the first 7 ms have the tone (${rmsDb(span(d.channels[0], 0, 0.007)).toFixed(1)} dBFS): the packets released before the start`);
});
