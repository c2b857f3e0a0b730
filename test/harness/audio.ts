/** Decodes recordings with ffmpeg and measures them: the tests assert on the audio itself. */
import { execFileSync } from 'node:child_process';

export interface Decoded {
  channels: Int16Array[];
  sampleRate: number;
  seconds: number;
}

/** Decodes any audio file ffmpeg reads into planar 16-bit PCM at 8 kHz, keeping its channel count. */
export function decode(path: string): Decoded {
  const probe = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=channels,sample_rate,codec_name', '-of', 'json', path]).toString();
  const stream = JSON.parse(probe).streams[0] as { channels: number; sample_rate: string; codec_name: string };
  const nch = stream.channels;
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-xerror', '-i', path, '-f', 's16le', '-acodec', 'pcm_s16le', '-ar', '8000', '-ac', String(nch), '-'], { maxBuffer: 1 << 30 });
  const all = new Int16Array(raw.buffer, raw.byteOffset, raw.length / 2);
  const frames = all.length / nch;
  const channels = Array.from({ length: nch }, (_, c) => {
    const ch = new Int16Array(frames);
    for (let i = 0; i < frames; i++) ch[i] = all[i * nch + c];
    return ch;
  });
  return { channels, sampleRate: 8000, seconds: frames / 8000 };
}

export function probe(path: string): { codec: string; channels: number; sampleRate: number; bitRate: number } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=channels,sample_rate,codec_name,bit_rate', '-of', 'json', path]).toString();
  const s = JSON.parse(out).streams[0];
  return { codec: s.codec_name, channels: s.channels, sampleRate: Number(s.sample_rate), bitRate: Number(s.bit_rate) };
}

/** RMS level in dBFS of a span (−Infinity for digital silence). */
export function rmsDb(x: Int16Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  const rms = Math.sqrt(s / Math.max(1, x.length));
  return 20 * Math.log10(rms / 32768);
}

/** Share of a span's energy at `freq` (Goertzel), 0..1: near 1 for a pure tone at that frequency. */
export function toneShare(x: Int16Array, freq: number, rate = 8000): number {
  const w = (2 * Math.PI * freq) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let total = 0;
  for (let i = 0; i < x.length; i++) {
    const s0 = x[i] + c * s1 - s2;
    s2 = s1;
    s1 = s0;
    total += x[i] * x[i];
  }
  const power = s1 * s1 + s2 * s2 - c * s1 * s2;
  // a pure tone over N samples gives power = total * N / 2
  return total === 0 ? 0 : power / ((total * x.length) / 2);
}

/** Samples [from, to) seconds of a channel. */
export function span(ch: Int16Array, from: number, to: number, rate = 8000): Int16Array {
  return ch.subarray(Math.round(from * rate), Math.round(to * rate));
}

/**
 * The median tone share of the 100 ms windows of [from, to) seconds. A long window's share drops at a clock
 * correction's phase step (a few samples, inaudible) although the audio is all there; the median of short windows
 * says whether the tone is. `skip`: windows left out (a pause, a hold); none left gives 0.
 */
export function medianToneShare(ch: Int16Array, freq: number, from: number, to: number, skip: (from: number, to: number) => boolean = () => false): number {
  const shares: number[] = [];
  for (let s = from; s + 0.1 <= to + 1e-9; s += 0.1) if (!skip(s, s + 0.1)) shares.push(toneShare(span(ch, s, s + 0.1), freq));
  shares.sort((a, b) => a - b);
  return shares[Math.floor(shares.length / 2)] ?? 0;
}
