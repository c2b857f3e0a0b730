import { readFile } from 'node:fs/promises';
import wavefile from 'wavefile';
import { SAMPLE_RATE } from './sample-clock.js';

/** Longest alert tone taken, s (a recording tone is a beep or a short announcement). */
const MAX_SECONDS = 30;

/**
 * Reads an alert tone: a WAV file (8 kHz mono: G.711 μ-law / A-law, or 16-bit PCM) from a path or an http(s) URL,
 * as 16-bit PCM. Throws with what is wrong (unreadable, not a WAV, another rate, stereo, too long).
 */
export async function loadAlertTone(src: string, timeoutMs = 5000): Promise<Int16Array> {
  let bytes: Uint8Array;
  if (/^https?:\/\//.test(src)) {
    const r = await fetch(src, { signal: AbortSignal.timeout(timeoutMs) });
    if (!r.ok) throw new Error(`alert tone ${src}: HTTP ${r.status}`);
    bytes = new Uint8Array(await r.arrayBuffer());
  } else {
    try {
      bytes = await readFile(src);
    } catch (err) {
      throw new Error(`alert tone ${src}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  return decodeAlertTone(bytes, src);
}

/** Decodes an alert tone WAV (see loadAlertTone). Pure. */
export function decodeAlertTone(bytes: Uint8Array, src: string): Int16Array {
  const w = new wavefile.WaveFile();
  try {
    w.fromBuffer(bytes);
  } catch (err) {
    throw new Error(`alert tone ${src}: not a WAV file (${(err as Error).message})`);
  }
  const fmt = w.fmt as { sampleRate: number; numChannels: number; audioFormat: number; bitsPerSample: number };
  if (fmt.sampleRate !== SAMPLE_RATE) throw new Error(`alert tone ${src}: ${fmt.sampleRate} Hz; 8000 Hz is needed`);
  if (fmt.numChannels !== 1) throw new Error(`alert tone ${src}: ${fmt.numChannels} channels; mono is needed`);
  if (fmt.audioFormat === 7) w.fromMuLaw();
  else if (fmt.audioFormat === 6) w.fromALaw();
  else if (!(fmt.audioFormat === 1 && fmt.bitsPerSample === 16)) throw new Error(`alert tone ${src}: format ${fmt.audioFormat}/${fmt.bitsPerSample} bits; G.711 or 16-bit PCM is needed`);
  const pcm = Int16Array.from(w.getSamples(false, Int16Array) as unknown as ArrayLike<number>);
  if (pcm.length === 0) throw new Error(`alert tone ${src}: no samples`);
  if (pcm.length > MAX_SECONDS * SAMPLE_RATE) throw new Error(`alert tone ${src}: longer than ${MAX_SECONDS} s`);
  return pcm;
}

/**
 * Alert tones by source (path or URL), each read once and kept: `get` answers at once with the tone, why it could not
 * be read, or null while it is still being read (it starts reading on first ask; `preload` starts it earlier). One
 * that could not be read is read again on a later ask, `retryMs` after.
 */
export class AlertToneCache {
  private readonly tones = new Map<string, { pcm: Int16Array } | { error: string; at: number } | null>();

  constructor(
    private readonly onError: (src: string, why: string) => void = () => undefined,
    /** A tone that could not be read is tried again after this long, ms. */
    private readonly retryMs = 30_000,
  ) {}

  preload(src: string): void {
    const had = this.tones.get(src);
    if (had === null || (had && ('pcm' in had || Date.now() - had.at < this.retryMs))) return;
    this.tones.set(src, null);
    loadAlertTone(src).then(
      (pcm) => this.tones.set(src, { pcm }),
      (err: Error) => {
        this.tones.set(src, { error: err.message, at: Date.now() });
        this.onError(src, err.message);
      },
    );
  }

  get(src: string): { pcm: Int16Array } | { error: string } | null {
    this.preload(src);
    return this.tones.get(src) ?? null;
  }
}
