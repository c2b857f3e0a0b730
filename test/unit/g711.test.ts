import t from 'tap';
import { readFileSync } from 'node:fs';
import { decodeG711, encodeG711, linearToAlaw, linearToUlaw } from '../../src/media/g711.js';

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
