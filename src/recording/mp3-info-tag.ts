import type { Mp3Format } from './mp3-encoder.js';

/**
 * The "Info" frame (Xing header for CBR plus the LAME extension) that leads an MP3 file and tells decoders how many
 * frames follow and how many samples of encoder delay and padding to drop, so a file decodes to exactly the samples
 * that were encoded (ffmpeg, mpg123 and browsers honour it). Our encoders stream frames as they go and write no
 * header a finished file could use (the WASM build is driven frame by frame, lamejs writes none), so we write it: a
 * placeholder when the file opens, the real one over it when the file is finalized. Pure.
 *
 * Our streams are MPEG-2.5 Layer III at 8 kHz (576 samples per frame). Frame sizes are 72 × kbps / 8 bytes, whole
 * numbers, so there is never a padding slot and a file's frame count is its audio bytes divided by the frame size.
 */

export const SAMPLES_PER_FRAME = 576;
/** Samples LAME puts in front of the audio (ENCDELAY) at 8 kHz (the recording-files test checks that a WASM-encoded file decodes to exactly the samples encoded). */
export const ENCODER_DELAY = 576;
/** Samples an MP3 decoder lags (the synthesis filterbank): the last frame's final samples need a frame after them. */
export const DECODER_DELAY = 529;

/** Samples a file of `frames` audio frames can play when it was cut off mid-stream (no flush): nothing to pad. */
export function playableSamples(frames: number): number {
  return Math.max(0, frames * SAMPLES_PER_FRAME - ENCODER_DELAY - DECODER_DELAY);
}

const BITRATE_INDEX: Record<number, number> = { 8: 1, 16: 2, 32: 4 };

/** Bytes of one frame of the format. */
export function frameBytes(f: Mp3Format): number {
  return (72 * f.kbps * 1000) / 8000;
}

/** The 4-byte frame header: MPEG-2.5, Layer III, no CRC, 8000 Hz, no padding, original. */
function header(f: Mp3Format): Uint8Array {
  const mode = f.channels === 1 ? 0b11 : 0b00; // single channel | stereo (not joint: the parties stay separable)
  return Uint8Array.of(0xff, 0xe3, (BITRATE_INDEX[f.kbps] << 4) | (0b10 << 2), (mode << 6) | 0b0100);
}

/** CRC-16 as LAME computes the tag CRC (polynomial 0x8005, reflected: 0xA001). */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc & 0xffff;
}

export interface InfoTagFacts {
  /** Audio frames after the Info frame. */
  frames: number;
  /** Samples that were fed to the encoder. */
  samples: number;
  /** Size of the whole file, Info frame included. */
  fileBytes: number;
}

/** The Info frame for a file with these facts (frames 0 for a placeholder). */
export function infoFrame(f: Mp3Format, facts: InfoTagFacts): Uint8Array {
  const out = new Uint8Array(frameBytes(f));
  const view = new DataView(out.buffer);
  out.set(header(f), 0);
  let o = 4 + (f.channels === 1 ? 9 : 17); // side information of an MPEG-2/2.5 frame, left zero (silent frame)
  out.set([0x49, 0x6e, 0x66, 0x6f], o); // "Info": Xing header of a CBR file
  view.setUint32(o + 4, 0x1 | 0x2); // flags: frame count, byte count
  view.setUint32(o + 8, facts.frames);
  view.setUint32(o + 12, facts.fileBytes);
  o += 16;
  const lame = o;
  out.set(new TextEncoder().encode('LAME3.100'), o); // 9 bytes: version
  out[o + 9] = 0x00; // tag revision 0, VBR method 0 (unknown / CBR)
  out[o + 10] = 0; // lowpass / 100 Hz: unknown
  // peak (4), radio gain (2), audiophile gain (2): zero = not set
  out[o + 19] = 0; // encoding flags, ATH type
  out[o + 20] = Math.min(255, f.kbps); // bitrate
  const padding = Math.max(0, facts.frames * SAMPLES_PER_FRAME - ENCODER_DELAY - facts.samples);
  const delays = (Math.min(4095, ENCODER_DELAY) << 12) | Math.min(4095, padding);
  out[o + 21] = (delays >>> 16) & 0xff;
  out[o + 22] = (delays >>> 8) & 0xff;
  out[o + 23] = delays & 0xff;
  // misc (1), mp3gain (1), preset/surround (2)
  view.setUint32(o + 28, facts.fileBytes); // music length
  // music CRC (2) left zero; tag CRC over everything before it
  view.setUint16(o + 34, crc16(out.subarray(0, o + 34)));
  if (lame + 36 > out.length) throw new Error(`Info frame does not fit a ${f.kbps} kbit/s frame`);
  return out;
}

/** Audio frames in a file of `fileBytes` that starts with an Info frame (whole frames only: a torn tail is not counted). */
export function framesIn(f: Mp3Format, fileBytes: number): number {
  return Math.max(0, Math.floor(fileBytes / frameBytes(f)) - 1);
}
