/**
 * G.711 μ-law and A-law (ITU-T G.711), table driven. Decode tables are built once from the reference
 * expansion; encoders follow the ITU-T/Sun reference segment search.
 */
export type G711Law = 'PCMU' | 'PCMA';

function ulawToLinear(u: number): number {
  u = ~u & 0xff;
  let t = ((u & 0x0f) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

function alawToLinear(a: number): number {
  a ^= 0x55;
  let t = (a & 0x0f) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else {
    t += 0x108;
    t <<= seg - 1;
  }
  return a & 0x80 ? t : -t;
}

const ULAW = new Int16Array(256);
const ALAW = new Int16Array(256);
for (let i = 0; i < 256; i++) {
  ULAW[i] = ulawToLinear(i);
  ALAW[i] = alawToLinear(i);
}

/** Decodes the first `n` G.711 bytes of `input` into `out` (at least as long) and returns the number of samples. */
export function decodeG711(law: G711Law, input: Uint8Array, out: Int16Array, n = input.length): number {
  const table = law === 'PCMU' ? ULAW : ALAW;
  for (let i = 0; i < n; i++) out[i] = table[input[i]];
  return n;
}

const SEG_AEND = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
const SEG_UEND = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
function segment(v: number, ends: number[]): number {
  for (let i = 0; i < 8; i++) if (v <= ends[i]) return i;
  return 8;
}

/** Encodes one 16-bit linear sample to μ-law. */
export function linearToUlaw(pcm: number): number {
  const BIAS = 0x84;
  let mask: number;
  pcm = pcm >> 2;
  if (pcm < 0) {
    pcm = -pcm;
    mask = 0x7f;
  } else mask = 0xff;
  if (pcm > 8159) pcm = 8159;
  pcm += BIAS >> 2;
  const seg = segment(pcm, SEG_UEND);
  if (seg >= 8) return 0x7f ^ mask;
  return (((seg << 4) | ((pcm >> (seg + 1)) & 0xf)) ^ mask) & 0xff;
}

/** Encodes one 16-bit linear sample to A-law. */
export function linearToAlaw(pcm: number): number {
  let mask: number;
  pcm = pcm >> 3;
  if (pcm >= 0) mask = 0xd5;
  else {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  const seg = segment(pcm, SEG_AEND);
  if (seg >= 8) return 0x7f ^ mask;
  let aval = seg << 4;
  if (seg < 2) aval |= (pcm >> 1) & 0xf;
  else aval |= (pcm >> seg) & 0xf;
  return (aval ^ mask) & 0xff;
}

// 16-bit linear -> G.711 lookup (64 KiB per law): encoding a WAV copy or a relayed packet is one load per sample.
const ENC: Record<G711Law, Uint8Array | null> = { PCMU: null, PCMA: null };
function encTable(law: G711Law): Uint8Array {
  let t = ENC[law];
  if (!t) {
    t = new Uint8Array(65536);
    const f = law === 'PCMU' ? linearToUlaw : linearToAlaw;
    for (let v = -32768; v < 32768; v++) t[v & 0xffff] = f(v);
    ENC[law] = t;
  }
  return t;
}

/** Encodes 16-bit PCM to G.711 (into `out` when given, which must be at least as long). */
export function encodeG711(law: G711Law, pcm: Int16Array, out: Uint8Array<ArrayBufferLike> = new Uint8Array(pcm.length)): Uint8Array<ArrayBufferLike> {
  const t = encTable(law);
  for (let i = 0; i < pcm.length; i++) out[i] = t[pcm[i] & 0xffff];
  return out;
}

// μ-law <-> A-law byte maps (through linear, as G.711 Annex tables do): relaying between legs that differ.
const TRANSCODE: Record<string, Uint8Array> = {};
export function transcodeTable(from: G711Law, to: G711Law): Uint8Array {
  const key = `${from}>${to}`;
  let t = TRANSCODE[key];
  if (!t) {
    const lin = from === 'PCMU' ? ULAW : ALAW;
    const enc = encTable(to);
    t = new Uint8Array(256);
    for (let i = 0; i < 256; i++) t[i] = enc[lin[i] & 0xffff];
    TRANSCODE[key] = t;
  }
  return t;
}

/** Converts G.711 bytes from one law to the other (a copy; the same law returns the input). */
export function transcodeG711(from: G711Law, to: G711Law, input: Uint8Array): Uint8Array {
  if (from === to) return input;
  const t = transcodeTable(from, to);
  const out = new Uint8Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = t[input[i]];
  return out;
}

/** The byte that decodes to silence. */
export const G711_SILENCE: Record<G711Law, number> = { PCMU: 0xff, PCMA: 0xd5 };
