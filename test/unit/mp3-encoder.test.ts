import t from 'tap';
import { encoderFactory, type EncoderEngine } from '../../src/recording/mp3-encoder.js';
import { frameBytes } from '../../src/recording/mp3-info-tag.js';

const tone = (freq: number, n: number): Int16Array => Int16Array.from({ length: n }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * freq * i) / 8000)));

for (const engine of ['wasm', 'lamejs'] as EncoderEngine[]) {
  t.test(`${engine}: CBR 8 kHz frames of the configured size, for every format`, async (t) => {
    const f = encoderFactory(engine);
    await f.ready;
    for (const format of [{ channels: 1, kbps: 8 }, { channels: 2, kbps: 16 }, { channels: 2, kbps: 32 }] as const) {
      const enc = f.create(format);
      const chunks: Uint8Array[] = [];
      for (let k = 0; k < 10; k++) chunks.push(enc.encode(format.channels === 2 ? [tone(440, 800), tone(700, 800)] : [tone(440, 800)]));
      chunks.push(enc.flush());
      enc.free();
      const all = Buffer.concat(chunks);
      const fb = frameBytes(format);
      t.equal(all.length % fb, 0, `${format.kbps} kbit/s: whole ${fb}-byte frames`);
      t.equal(all[0], 0xff, 'starts with a frame sync');
      t.equal(all[1] & 0xe0, 0xe0, '...');
      t.equal((all[1] >> 3) & 3, 0, 'MPEG-2.5 (8 kHz)');
      t.ok(all.length / fb >= 14, `${all.length / fb} frames for 1 s`);
    }
  });
}

t.test('wasm: many encoders share one WebAssembly instance and stay independent', async (t) => {
  const f = encoderFactory('wasm');
  await f.ready;
  const encs = Array.from({ length: 20 }, () => f.create({ channels: 2, kbps: 16 }));
  const outs = encs.map((e, i) => Buffer.concat([e.encode([tone(300 + i * 50, 4000), tone(900, 4000)]), e.flush()]));
  const alone = f.create({ channels: 2, kbps: 16 });
  const ref = Buffer.concat([alone.encode([tone(300 + 7 * 50, 4000), tone(900, 4000)]), alone.flush()]);
  t.ok(outs[7].equals(ref), 'an encoder among 20 writes the same bytes as one alone');
  t.notOk(outs[7].equals(outs[8]), 'different input, different bytes');
  for (const e of [...encs, alone]) e.free();
});
