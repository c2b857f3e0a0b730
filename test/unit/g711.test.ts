import t from 'tap';
import { readFileSync } from 'node:fs';
import { decodeG711, encodeG711, linearToAlaw, linearToUlaw, transcodeG711 } from '../../src/media/g711.js';

const ref = JSON.parse(readFileSync(new URL('../fixtures/g711-sox.json', import.meta.url), 'utf8')) as { PCMU: number[]; PCMA: number[] };
const all = Uint8Array.from({ length: 256 }, (_, i) => i);

for (const law of ['PCMU', 'PCMA'] as const) {
  t.test(`${law} decode matches sox for every code`, async (t) => {
    const out = new Int16Array(256);
    t.equal(decodeG711(law, all, out), 256);
    t.same(Array.from(out), ref[law]);
  });
  t.test(`${law} encode inverts decode`, async (t) => {
    const out = new Int16Array(256);
    decodeG711(law, all, out);
    const back = encodeG711(law, out);
    const again = new Int16Array(256);
    decodeG711(law, back, again);
    t.same(Array.from(again), Array.from(out), 'decode(encode(decode(x))) == decode(x)');
  });
}

t.test('known values', async (t) => {
  t.equal(ref.PCMU[0x00], -32124);
  t.equal(ref.PCMU[0x80], 32124);
  t.equal(ref.PCMU[0xff], 0);
  t.equal(ref.PCMA[0xd5], 8);
  t.equal(linearToUlaw(0), 0xff, 'μ-law silence');
  t.equal(linearToAlaw(0), 0xd5, 'A-law silence');
  t.equal(linearToUlaw(32767), 0x80);
  t.equal(linearToUlaw(-32768), 0x00);
});

t.test('μ-law ↔ A-law transcoding keeps every value within one quantization step', async (t) => {
  const u = new Uint8Array(256).map((_, i) => i);
  for (const [from, to] of [['PCMU', 'PCMA'], ['PCMA', 'PCMU']] as const) {
    const out = transcodeG711(from, to, u);
    const a = new Int16Array(256);
    const b = new Int16Array(256);
    decodeG711(from, u, a);
    decodeG711(to, out, b);
    let worst = 0;
    for (let i = 0; i < 256; i++) {
      // relative error: G.711 steps grow with the magnitude (about 1/16 of it), 16 at the bottom of μ-law
      const err = Math.abs(a[i] - b[i]);
      worst = Math.max(worst, err / Math.max(256, Math.abs(a[i])));
    }
    t.ok(worst <= 1 / 16 + 1e-9, `${from}→${to}: worst relative error ${worst.toFixed(4)}`);
  }
  t.equal(transcodeG711('PCMU', 'PCMU', u), u, 'same law: no copy');
  t.equal(transcodeG711('PCMU', 'PCMA', Uint8Array.of(0xff))[0], 0xd5, 'μ-law silence becomes A-law silence');
});
