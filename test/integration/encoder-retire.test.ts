/**
 * An idle encoder thread gives its memory back: a thread that had many recordings at once is replaced by a fresh
 * one after it has been idle a while (its WASM memory and heap go with it; V8 never collects an idle thread), one
 * that gets a recording meanwhile stays, and one that never had many is left alone; a thread asked to collect its
 * garbage (the recorder's idle step) gives back what its dropped encoders held.
 */
import pino from 'pino';
import t from 'tap';
import { EncoderPool } from '../../src/recording/encoder-pool.js';
import type { Mp3Format } from '../../src/recording/mp3-encoder.js';
import { sleep } from '../harness/until.js';

const log = pino({ level: 'silent' });
// an idle pool's threads do not keep the process alive (as in the recorder, where the SIP side does)
const keepAlive = setInterval(() => undefined, 1000);
t.teardown(() => clearInterval(keepAlive));
const format: Mp3Format = { channels: 2, kbps: 16 };
const second = (): Int16Array[] => [0, 1].map(() => Int16Array.from({ length: 8000 }, (_, i) => Math.round(8000 * Math.sin(i / 3))));
const threadOf = (pool: EncoderPool): number => (pool as unknown as { slots: { worker: { threadId: number } }[] }).slots[0].worker.threadId;
const external = async (pool: EncoderPool): Promise<number> => {
  await pool.askMemory();
  return pool.memory[0]?.external ?? NaN;
};
/** `n` recordings at once on the pool, each a second of audio, then all finished. */
async function burst(pool: EncoderPool, tag: string, n: number): Promise<void> {
  const ids = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
  for (const id of ids) await pool.open(id, format);
  await Promise.all(ids.map((id) => pool.encode(id, second())));
  for (const id of ids) await pool.finish(id);
}

t.test('an idle thread that had 40 recordings at once is replaced, and the next recording is encoded on the new one', async (t) => {
  const pool = new EncoderPool(1, log, 'wasm', 7, 0, { idleMs: 300, minPeak: 8 });
  t.teardown(() => pool.close());
  await burst(pool, 'warm', 1);
  const idle = await external(pool); // the module compiled and one recording's memory: what the fresh one will hold
  const first = threadOf(pool);
  await burst(pool, 'a', 40);
  const held = await external(pool);
  t.ok(held > idle + 10e6, `after 40 recordings at once the idle thread holds ${(held / 1e6).toFixed(1)} MB outside its heap (after one: ${(idle / 1e6).toFixed(1)} MB)`);
  await sleep(800);
  t.not(threadOf(pool), first, 'a fresh thread took its place');
  await pool.open('b', format);
  const mp3 = await pool.encode('b', second());
  t.ok(mp3.length + (await pool.finish('b')).length > 1500, 'the next recording is encoded (a second at 16 kbit/s)');
  const after = await external(pool);
  t.ok(after < idle + 1e6, `after one recording the fresh thread holds ${(after / 1e6).toFixed(1)} MB, as the first did after one`);
});

t.test('a thread that gets a recording within the idle time, or never had many at once, stays', async (t) => {
  const pool = new EncoderPool(1, log, 'wasm', 7, 0, { idleMs: 400, minPeak: 8 });
  t.teardown(() => pool.close());
  const first = threadOf(pool);
  await burst(pool, 'a', 10);
  await sleep(100);
  await pool.open('c', format);
  await sleep(700);
  t.equal(threadOf(pool), first, 'busy again before its idle time ran out: kept');
  await pool.encode('c', second());
  await pool.finish('c');
  await sleep(700);
  t.not(threadOf(pool), first, 'idle for the whole time after that: replaced');
  const second_ = threadOf(pool);
  await burst(pool, 'd', 3);
  await sleep(700);
  t.equal(threadOf(pool), second_, 'a peak of 3 (under minPeak 8): left alone');
});

t.test('collectGarbage: a thread kept (no retire) gives back what its dropped encoders held', async (t) => {
  const pool = new EncoderPool(1, log, 'wasm', 7, 0, { idleMs: 60_000, minPeak: 1000 });
  t.teardown(() => pool.close());
  await burst(pool, 'warm', 1);
  const idle = await external(pool);
  const first = threadOf(pool);
  await burst(pool, 'a', 40);
  await sleep(300);
  const held = await external(pool);
  t.ok(held > idle + 10e6, `idle after 40 recordings at once it still holds ${(held / 1e6).toFixed(1)} MB (after one: ${(idle / 1e6).toFixed(1)} MB)`);
  await pool.collectGarbage();
  const after = await external(pool);
  t.ok(after < idle + 1e6, `after its collection: ${(after / 1e6).toFixed(1)} MB`);
  t.equal(threadOf(pool), first, 'on the same thread');
  await pool.open('b', format);
  t.ok((await pool.encode('b', second())).length + (await pool.finish('b')).length > 1500, 'and it encodes the next recording');
});
