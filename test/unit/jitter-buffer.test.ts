import t from 'tap';
import { JitterBuffer } from '../../src/media/jitter-buffer.js';

const seqs = (ps: { sequence: number }[]): number[] => ps.map((p) => p.sequence);

t.test('in order packets pass straight through', async (t) => {
  const jb = new JitterBuffer<{ sequence: number }>(60);
  t.same(seqs(jb.push({ sequence: 1 }, 0)), [1]);
  t.same(seqs(jb.push({ sequence: 2 }, 20)), [2]);
  t.equal(jb.stats.lost, 0);
});

t.test('reordering is undone; a gap waits for the latency, then counts as lost', async (t) => {
  const jb = new JitterBuffer<{ sequence: number }>(60);
  jb.push({ sequence: 10 }, 0);
  t.same(seqs(jb.push({ sequence: 12 }, 40)), [], '12 waits for 11');
  t.same(seqs(jb.push({ sequence: 11 }, 45)), [11, 12], '11 arrives late but within the window');
  t.equal(jb.stats.reordered, 1);
  t.same(seqs(jb.push({ sequence: 14 }, 60)), [], '14 waits for 13');
  t.same(seqs(jb.poll(100)), [], 'not yet');
  t.same(seqs(jb.poll(120)), [14], 'after 60 ms 13 is given up');
  t.equal(jb.stats.lost, 1);
  t.same(seqs(jb.push({ sequence: 13 }, 130)), [], '13 arriving now is late');
  t.equal(jb.stats.late, 1);
});

t.test('duplicates are dropped whether held or already released', async (t) => {
  const jb = new JitterBuffer<{ sequence: number }>(60);
  jb.push({ sequence: 1 }, 0);
  t.same(seqs(jb.push({ sequence: 1 }, 1)), []);
  jb.push({ sequence: 3 }, 2);
  t.same(seqs(jb.push({ sequence: 3 }, 3)), []);
  t.equal(jb.stats.duplicates, 2);
});

t.test('sequence wrap 65535 -> 0 is continuous, in and out of order', async (t) => {
  const jb = new JitterBuffer<{ sequence: number }>(60);
  const out: number[] = [];
  for (const s of [65533, 65534, 0, 65535, 1, 2]) out.push(...seqs(jb.push({ sequence: s }, 0)));
  t.same(out, [65533, 65534, 65535, 0, 1, 2]);
  t.equal(jb.stats.lost, 0);
});

t.test('a far jump is a stream restart, not 30000 lost packets', async (t) => {
  const jb = new JitterBuffer<{ sequence: number }>(60);
  jb.push({ sequence: 100 }, 0);
  t.same(seqs(jb.push({ sequence: 40000 }, 20)), [40000]);
  t.equal(jb.stats.resets, 1);
  t.equal(jb.stats.lost, 0);
});

t.test('flush hands over everything held, in order', async (t) => {
  const jb = new JitterBuffer<{ sequence: number }>(1000);
  jb.push({ sequence: 1 }, 0);
  jb.push({ sequence: 4 }, 0);
  jb.push({ sequence: 3 }, 0);
  t.same(seqs(jb.flush()), [3, 4]);
  t.equal(jb.stats.lost, 1);
  t.equal(jb.size, 0);
});

t.test('allocation-free: every call returns the same array; a packet too far ahead for the ring gives up the gap at once', async (t) => {
  const jb = new JitterBuffer<{ sequence: number }>(60, 256);
  const first = jb.push({ sequence: 1 }, 0);
  t.equal(jb.push({ sequence: 2 }, 0), first, 'push refills one array');
  t.equal(jb.poll(0), first, 'so does poll');
  jb.push({ sequence: 4 }, 0);
  t.equal(jb.size, 1, '4 waits for 3');
  // 600 ahead is beyond the ring (512 slots for 256 held) but no restart (< 3000): 4 is played, the rest given up
  t.same(seqs(jb.push({ sequence: 604 }, 1)), [4], 'the held packet is handed over');
  t.equal(jb.size, 1, '604 is held in the ring');
  t.same(seqs(jb.poll(100)), [604], 'and released once its gap has waited');
  t.equal(jb.stats.lost, 1 + 599, '3 and 5..603 lost');
  t.equal(jb.stats.resets, 0, 'not a restart');
  t.equal(jb.push({ sequence: 604 }, 101).length, 0, 'a duplicate of a released packet is refused');
  t.equal(jb.accepted, false, '... and said to be refused (its pooled object goes back)');
  t.equal(jb.stats.duplicates, 1);
});

t.test('capture after a stall of the thread: a gap is not given up before the socket was read (its packet waits there)', async (t) => {
  const { CaptureStage } = await import('../../src/media/capture-stage.js');
  const run = (giveUpGaps: boolean): { played: number[]; lost: number } => {
    const played: number[] = [];
    const c = new CaptureStage(80, 400, 0, (_slot, at) => played.push(at / 160));
    const pkt = (seq: number) => ({ version: 2, padding: false, marker: false, payloadType: 0, sequence: seq, timestamp: seq * 160, ssrc: 7, csrcCount: 0, payload: new Uint8Array(160).fill(0xff) });
    for (let s = 0; s < 50; s++) c.accept(pkt(s) as never, 'PCMU', s * 20);
    // 51 was read just before the stop; 50 (sent right after it, reordered) waits in the socket for 1.5 s
    c.accept(pkt(51) as never, 'PCMU', 1020);
    c.poll(2520, giveUpGaps); // the timer runs first after the stall
    c.accept(pkt(50) as never, 'PCMU', 2520); // then the I/O phase reads the socket
    c.poll(2600, true);
    return { played, lost: c.stats.lost };
  };
  const held = run(false);
  t.equal(held.lost, 0, 'held back after the stall: nothing lost');
  t.same(held.played.slice(48), [48, 49, 50, 51], 'and 50, 51 play in order');
  const old = run(true);
  t.equal(old.lost, 1, 'given up on the timer after the stall (as before): the packet in the socket is lost');
});
