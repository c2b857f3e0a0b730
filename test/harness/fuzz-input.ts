/**
 * Seeded fuzz inputs shared by the parser fuzz suite and the end-to-end one: a small PRNG (replay a failure with
 * FUZZ_SEED), one-edit mutations that include the shapes that broke things before (bare LF, DOCTYPE/ENTITY, NUL,
 * lone surrogates, huge numbers), and the real SIP samples under test/fixtures/msml-samples as seeds.
 */
import { readdirSync, readFileSync } from 'node:fs';

export const SEED = Number(process.env.FUZZ_SEED ?? 20261201);

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = ['<', '>', '/', '"', "'", '=', '&', ';', ':', '@', '\r\n', '\n', '\0', ' ', '<!DOCTYPE x [<!ENTITY e "e">]>', '&e;', ']]>', '<![CDATA[', 'msml', 'record', '\u00ff', '\ud800', '9'.repeat(20), '-1'];

export interface Fuzzer {
  rand: () => number;
  int: (n: number) => number;
  pick: <T>(xs: T[]) => T;
  /** One to four random edits of `s`: delete, duplicate, insert a token, flip a character, truncate, CRLF → LF. */
  mutate: (s: string) => string;
}

export function fuzzer(seed = SEED): Fuzzer {
  const rand = rng(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)];
  const mutate = (s: string): string => {
    const n = 1 + int(4);
    let out = s;
    for (let k = 0; k < n; k++) {
      const i = int(out.length + 1);
      switch (int(6)) {
        case 0:
          out = out.slice(0, i) + out.slice(i + 1 + int(20));
          break;
        case 1:
          out = out.slice(0, i) + out.slice(i, i + int(40)) + out.slice(i);
          break;
        case 2:
          out = out.slice(0, i) + pick(TOKENS) + out.slice(i);
          break;
        case 3:
          out = out.slice(0, i) + String.fromCharCode(int(256)) + out.slice(i + 1);
          break;
        case 4:
          out = out.slice(0, i);
          break;
        default:
          out = out.replace(/\r\n/g, '\n');
      }
    }
    return out;
  };
  return { rand, int, pick, mutate };
}

/** The SIP messages of test/fixtures/msml-samples, whole. */
export const samples = readdirSync(new URL('../fixtures/msml-samples/', import.meta.url)).sort().map((f) => readFileSync(new URL(`../fixtures/msml-samples/${f}`, import.meta.url), 'utf8'));
const bodyOf = (sip: string): string => sip.split(/\r?\n\r?\n/).slice(1).join('\n\n');
export const msmlSeeds = samples.map(bodyOf).filter((b) => b.includes('<msml'));
export const sdpSeeds = samples.map(bodyOf).filter((b) => b.startsWith('v=0'));
export const uriSeeds = samples.map((s) => s.split(/\r?\n/)[0].split(' ')[1] ?? '').filter((u) => u.startsWith('sip:'));
