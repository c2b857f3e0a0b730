/**
 * Memory the threads freed goes back to the system when the recorder is idle: the native engine's trimMalloc
 * really lowers the RSS of a process whose C heap holds freed memory (a child node with --expose-gc), collectGarbage
 * shrinks a quiet thread's heap, and IdleTrim collects and trims once after a quiet minute, never while a call is up.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import pino from 'pino';
import t from 'tap';
import { collectGarbage } from '../../src/ops/collect-garbage.js';
import { IdleTrim } from '../../src/ops/idle-trim.js';
import { ROOT } from '../harness/recorder-harness.js';
import { sleep } from '../harness/until.js';

t.test('trimMalloc gives freed C heap memory back (RSS of a process that freed 100 MB of small buffers)', async (t) => {
  // 40,000 buffers of 2 kB (malloc'd by Node's allocator), every 50th kept so the heap cannot shrink from its top
  const script = `
    const b = require(${JSON.stringify(join(ROOT, 'build/Release/udp_engine.node'))});
    const rss = () => process.memoryUsage.rss();
    let all = [], keep = [];
    for (let i = 0; i < 40000; i++) { const a = new ArrayBuffer(2048); new Uint8Array(a).fill(1); all.push(a); if (i % 50 === 0) keep.push(a); }
    all = null; gc(); gc();
    const before = rss(); const released = b.trimMalloc(); const after = rss();
    console.log(JSON.stringify({ before, after, released, kept: keep.length }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout) as { before: number; after: number; released: boolean };
  t.equal(o.released, true, 'glibc says it gave memory back');
  t.ok(o.before - o.after > 50 * 2 ** 20, `RSS ${(o.before / 2 ** 20).toFixed(1)} → ${(o.after / 2 ** 20).toFixed(1)} MB`);
});

t.test('collectGarbage: a quiet thread gives its garbage and its free heap pages back', async (t) => {
  // what a busy thread leaves: 100,000-string arrays, made and dropped, nothing allocated after
  let keep: string[][] | null = [];
  for (let i = 0; i < 150; i++) {
    keep.push(Array.from({ length: 100_000 }, (_, j) => `${i}:${j}`));
    if (keep.length > 15) keep.shift();
  }
  keep = null;
  const before = getHeapStatistics();
  collectGarbage();
  collectGarbage(); // again: the flag is set once, the collection runs every time
  const after = getHeapStatistics();
  const mb = (x: number): string => (x / 2 ** 20).toFixed(1);
  t.ok(before.total_heap_size - after.total_heap_size > 50 * 2 ** 20, `heap reserved ${mb(before.total_heap_size)} → ${mb(after.total_heap_size)} MB`);
  t.ok(after.used_heap_size < before.used_heap_size / 2, `heap used ${mb(before.used_heap_size)} → ${mb(after.used_heap_size)} MB`);
});

t.test('IdleTrim: once per idle period, after idleMs without calls, threads collected before the trim; a call cancels it', async (t) => {
  let trims = 0;
  let collects = 0;
  const order: string[] = [];
  const trim = new IdleTrim(
    {
      collect: async () => {
        collects++;
        order.push('collect');
      },
      trim: () => {
        trims++;
        order.push('trim');
        return true;
      },
    },
    pino({ level: 'silent' }),
    200,
  );
  t.teardown(() => trim.close());
  const keepAlive = setInterval(() => undefined, 100);
  t.teardown(() => clearInterval(keepAlive));
  trim.calls(0);
  await sleep(300);
  t.equal(trims, 1, 'the idle start is trimmed');
  t.same(order, ['collect', 'trim'], 'the threads collect their garbage first');
  await sleep(300);
  t.equal(trims, 1, 'once per idle period, not every idleMs');
  trim.calls(1);
  trim.calls(0);
  await sleep(100);
  trim.calls(2); // a call within idleMs
  await sleep(300);
  t.equal(trims, 1, 'never while a call is up');
  trim.calls(0);
  await sleep(150);
  trim.calls(0); // a second report of the same idle period does not restart the wait
  await sleep(100);
  t.equal(trims, 2, 'the next idle period is trimmed');
  trim.calls(0);
  trim.close();
  trim.close();
  await sleep(300);
  t.equal(trims, 2, 'closed: nothing more');
  t.equal(collects, 2);
});

t.test('IdleTrim: a call that comes while the threads collect skips the trim; a collection that hangs does not stop it', async (t) => {
  let trims = 0;
  let release = (): void => undefined;
  const slow = new IdleTrim({ collect: () => new Promise<void>((r) => (release = r)), trim: () => (trims++, true) }, pino({ level: 'silent' }), 50);
  t.teardown(() => slow.close());
  slow.calls(0);
  await sleep(100);
  slow.calls(1); // the call comes while the threads collect
  release();
  await sleep(50);
  t.equal(trims, 0, 'no trim under a call');
  const hung = new IdleTrim({ collect: () => new Promise<void>(() => undefined), trim: () => (trims++, true) }, pino({ level: 'silent' }), 50, 100);
  t.teardown(() => hung.close());
  hung.calls(0);
  await sleep(250);
  t.equal(trims, 1, 'a collection that never answers: the trim goes on after collectMs');
  const noTrim = new IdleTrim({ collect: async () => undefined, trim: null }, pino({ level: 'silent' }), 50);
  t.teardown(() => noTrim.close());
  noTrim.calls(0);
  await sleep(100);
  t.pass('without the native engine it only collects');
});
