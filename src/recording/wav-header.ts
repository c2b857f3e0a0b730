import wavefile from 'wavefile';
import type { G711Law } from '../media/g711.js';

/**
 * The header of a G.711 WAV file (format tag 7 μ-law / 6 A-law, 8 kHz, 8 bits per sample) as wavefile builds it,
 * and where its sizes live so that a streamed file can have them patched at the end (or on recovery, from the
 * file size). Pure.
 */
export interface WavHeader {
  bytes: Uint8Array;
  channels: number;
  /** Offsets of the little-endian uint32 fields to patch. */
  riffSizeAt: number;
  factSamplesAt: number | null;
  dataSizeAt: number;
}

export function wavHeader(law: G711Law, channels: number): WavHeader {
  const w = new wavefile.WaveFile();
  w.fromScratch(channels, 8000, law === 'PCMU' ? '8m' : '8a', new Uint8Array(0));
  const bytes = w.toBuffer();
  const ascii = (o: number): string => String.fromCharCode(...bytes.subarray(o, o + 4));
  let factSamplesAt: number | null = null;
  let dataSizeAt = -1;
  for (let o = 12; o + 8 <= bytes.length; ) {
    const id = ascii(o);
    const size = new DataView(bytes.buffer, bytes.byteOffset).getUint32(o + 4, true);
    if (id === 'fact') factSamplesAt = o + 8;
    if (id === 'data') {
      dataSizeAt = o + 4;
      break;
    }
    o += 8 + size + (size & 1);
  }
  if (ascii(0) !== 'RIFF' || dataSizeAt !== bytes.length - 4) throw new Error('unexpected WAV header layout from wavefile');
  return { bytes: Uint8Array.from(bytes), channels, riffSizeAt: 4, factSamplesAt, dataSizeAt };
}

/** The patches that make a header describe `dataBytes` of audio: [offset, 4-byte value] pairs. */
export function wavSizePatches(h: WavHeader, dataBytes: number): [number, Uint8Array][] {
  const u32 = (v: number): Uint8Array => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return b;
  };
  const whole = dataBytes - (dataBytes % h.channels);
  const out: [number, Uint8Array][] = [
    [h.riffSizeAt, u32(h.bytes.length - 8 + whole)],
    [h.dataSizeAt, u32(whole)],
  ];
  if (h.factSamplesAt !== null) out.push([h.factSamplesAt, u32(whole / h.channels)]);
  return out;
}

/** Interleaves planar 8-bit frames (one array per channel, equal lengths). */
export function interleave(channels: Uint8Array[]): Uint8Array {
  const c = channels.length;
  const n = channels[0]?.length ?? 0;
  if (c === 1) return channels[0];
  const out = new Uint8Array(n * c);
  for (let ch = 0; ch < c; ch++) {
    const src = channels[ch];
    for (let i = 0; i < n; i++) out[i * c + ch] = src[i];
  }
  return out;
}
