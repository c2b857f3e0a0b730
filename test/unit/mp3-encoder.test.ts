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

/** The 4-byte headers of a CBR stream's frames (all the same size). */
const frames = (all: Buffer, fb: number): Buffer[] => Array.from({ length: all.length / fb }, (_, i) => all.subarray(i * fb, (i + 1) * fb));

t.test('wasm: the instance and its grown memory go when the last encoder is freed; the next one starts fresh', async (t) => {
  const f = encoderFactory('wasm');
  await f.ready;
  t.equal(f.memoryBytes(), 0, 'no instance before the first encoder');
  const first = f.create({ channels: 2, kbps: 16 });
  const small = f.memoryBytes();
  t.ok(small > 0, `one encoder: ${(small / 2 ** 20).toFixed(1)} MB`);
  const many = Array.from({ length: 60 }, () => f.create({ channels: 2, kbps: 16 }));
  for (const e of many) e.encode([tone(440, 4000), tone(700, 4000)]);
  const grown = f.memoryBytes();
  t.ok(grown > small * 2, `61 encoders grew it to ${(grown / 2 ** 20).toFixed(1)} MB`);
  for (const e of many) e.free();
  t.equal(f.memoryBytes(), grown, 'kept while an encoder is open');
  first.free();
  first.free(); // idempotent: counted once
  t.equal(f.memoryBytes(), 0, 'the last one freed: the instance is dropped');
  const next = f.create({ channels: 1, kbps: 8 });
  t.equal(f.memoryBytes(), small, 'the next recording starts a fresh instance at its first size');
  const out = Buffer.concat([next.encode([tone(440, 8000)]), next.flush()]);
  t.equal(out[0], 0xff, 'and encodes');
  next.free();
});

t.test('wasm: true stereo, every frame stands alone (no bit reservoir), mono is mono', async (t) => {
  const f = encoderFactory('wasm');
  await f.ready;
  for (const format of [{ channels: 2, kbps: 16 }, { channels: 1, kbps: 8 }] as const) {
    const enc = f.create(format);
    const all = Buffer.concat([enc.encode(format.channels === 2 ? [tone(440, 8000), tone(440, 8000)] : [tone(440, 8000)]), enc.flush()]);
    enc.free();
    const fs = frames(all, frameBytes(format));
    const modes = new Set(fs.map((fr) => fr[3] >> 6));
    t.same([...modes], [format.channels === 2 ? 0 : 3], `${format.channels} ch: channel mode ${format.channels === 2 ? 'stereo (not joint, even for equal channels)' : 'mono'} in every frame`);
    // MPEG-2/2.5 side info starts with the 8-bit main_data_begin: 0 = the frame's audio is all in the frame itself
    t.ok(fs.every((fr) => fr[4] === 0), `${format.channels} ch: main_data_begin 0 in all ${fs.length} frames`);
  }
});

t.test('wasm: quality is applied, a batch larger than any before (memory growth) encodes, the blob is the built one', async (t) => {
  const { createHash } = await import('node:crypto');
  const { LAME_WASM_BASE64, LAME_WASM_SHA256 } = await import('../../src/recording/lame-wasm/lame-wasm-binary.js');
  t.equal(createHash('sha256').update(Buffer.from(LAME_WASM_BASE64, 'base64')).digest('hex'), LAME_WASM_SHA256, 'embedded WebAssembly matches the hash build.sh recorded');
  const input = (): Int16Array[] => [tone(440, 16000), tone(1100, 16000)];
  const out = async (q: number): Promise<Buffer> => {
    const f = encoderFactory('wasm', q);
    await f.ready;
    const e = f.create({ channels: 2, kbps: 16 });
    const b = Buffer.concat([e.encode(input()), e.flush()]);
    e.free();
    return b;
  };
  const [q3, q7] = [await out(3), await out(7)];
  t.equal(q3.length, q7.length, 'same CBR length');
  t.notOk(q3.equals(q7), 'quality 3 and 7 write different frames');
  const f = encoderFactory('wasm');
  await f.ready;
  const e = f.create({ channels: 2, kbps: 16 });
  const parts = [e.encode(input())];
  const big = 8000 * 60; // one minute in one call: the module's memory grows under the call
  parts.push(e.encode([tone(440, big), tone(1100, big)]), e.flush());
  e.free();
  const all = Buffer.concat(parts);
  const fb = frameBytes({ channels: 2, kbps: 16 });
  t.equal(all.length % fb, 0, 'whole frames');
  t.ok(Math.abs(all.length / fb - (16000 + big) / 576) <= 3, `${all.length / fb} frames for ${(16000 + big) / 8000} s`);
  t.ok(frames(all, fb).every((fr) => fr[0] === 0xff && (fr[1] & 0xe0) === 0xe0), 'every frame starts with a sync word');
});
