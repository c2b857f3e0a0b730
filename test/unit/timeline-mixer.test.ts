import t from 'tap';
import { LegTimeline } from '../../src/media/leg-timeline.js';
import { ChannelMixer } from '../../src/recording/channel-mixer.js';

const fill = (n: number, v: number): Int16Array => new Int16Array(n).fill(v);

t.test('timeline: RTP time after the anchor, wrap-safe; loss keeps positions', async (t) => {
  const tl = new LegTimeline(3200);
  t.equal(tl.place(1, 0xffffff60, 1000), 1000, 'anchored at arrival');
  t.equal(tl.place(1, 0x00000000, 1165), 1160, '32-bit wrap: next packet is 160 later');
  t.equal(tl.place(1, 0x000001e0, 1500), 1640, 'two lost packets: position follows RTP time, not arrival');
});

t.test('timeline: a new SSRC or a wild timestamp re-anchors, and is counted', async (t) => {
  const tl = new LegTimeline(3200);
  tl.place(1, 5000, 0);
  t.equal(tl.place(2, 999999, 8000), 8000);
  t.equal(tl.ssrcChanges, 1);
  t.equal(tl.place(2, 999999 + 160 + 80000, 8160), 8160, 'a 10 s timestamp jump with no 10 s wait re-anchors');
  t.equal(tl.reanchors, 1);
});

t.test('mixer: fixed slots, silence where nothing was written, late writes dropped', async (t) => {
  const m = new ChannelMixer(2, 2, 1000);
  m.write(1, 1000, fill(160, 7)); // right first: order of arrival does not pick the channel
  m.write(0, 1160, fill(160, 3));
  const f = m.take(1400);
  t.equal(f.start, 1000);
  t.equal(f.channels.length, 2);
  t.equal(f.channels[0].length, 400);
  t.same([f.channels[0][0], f.channels[0][200], f.channels[0][399]], [0, 3, 0]);
  t.same([f.channels[1][0], f.channels[1][200]], [7, 0]);
  m.write(0, 1300, fill(160, 9));
  t.equal(m.lateSamples, 100, 'the part before position 1400 is late');
  t.equal(m.take(1460).channels[0][0], 9);
});

t.test('mixer: pause silences by clock, both channels, exactly the paused span', async (t) => {
  const m = new ChannelMixer(2, 2, 0);
  m.write(0, 0, fill(800, 5));
  m.write(1, 0, fill(800, 6));
  m.pause(200);
  m.resume(600);
  const f = m.take(800);
  t.same([f.channels[0][199], f.channels[0][200], f.channels[0][599], f.channels[0][600]], [5, 0, 0, 5]);
  t.same([f.channels[1][199], f.channels[1][200], f.channels[1][600]], [6, 0, 6]);
  t.notOk(m.paused);
});

t.test('mixer: mono is the saturated sum of both parties', async (t) => {
  const m = new ChannelMixer(2, 1, 0);
  m.write(0, 0, fill(10, 30000));
  m.write(1, 0, fill(10, 10000));
  const f = m.take(10);
  t.equal(f.channels.length, 1);
  t.equal(f.channels[0][0], 32767);
});

t.test('mixer: grows for long spans without losing data', async (t) => {
  const m = new ChannelMixer(1, 2, 0, 16);
  m.write(0, 100, fill(50, 4));
  const f = m.take(200);
  t.equal(f.channels[0][120], 4);
  t.equal(f.channels[1][120], 0, 'the unused slot is silence');
});

/**
 * One hour of 20 ms packets from a sender whose clock runs `ppm` fast, with 0–30 ms of network jitter and a rare
 * 150 ms spike. Returns the worst placement error (samples) over the last ten minutes, against where the packet's
 * audio belongs: its send time plus the network's least delay.
 */
function driftRun(ppm: number, seed: number): { worst: number; slews: number; reanchors: number } {
  let x = seed;
  const rand = (): number => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const tl = new LegTimeline(3200);
  const base = 400; // 50 ms one-way delay
  const packets = 180_000;
  let worst = 0;
  for (let k = 0; k < packets; k++) {
    const sent = (k * 160) / (1 + ppm * 1e-6);
    const jitter = rand() * 240 + (rand() < 0.001 ? 1200 : 0);
    const pos = tl.place(7, (k * 160) % 2 ** 32, sent + base + jitter);
    if (k > packets - 30_000) worst = Math.max(worst, Math.abs(pos - (sent + base)));
  }
  return { worst, slews: tl.slews, reanchors: tl.reanchors };
}

t.test('timeline: a sender clock off by ±100 ppm stays within 20 ms of true time over an hour', async (t) => {
  const fast = driftRun(100, 1);
  const slow = driftRun(-100, 2);
  t.ok(fast.worst < 80, `+100 ppm: worst error ${(fast.worst / 8).toFixed(1)} ms after an hour`);
  t.ok(slow.worst < 80, `−100 ppm: worst error ${(slow.worst / 8).toFixed(1)} ms after an hour`);
  t.ok(fast.slews > 100 && slow.slews > 100, 'the offset was corrected in small steps');
  t.equal(fast.reanchors + slow.reanchors, 0, 'drift alone never re-anchors');
  // without the correction an hour at 100 ppm is 360 ms: the assertion above can fail
  const naive = (180_000 * 160 * 100e-6) / 8;
  t.ok(naive > 300, `uncorrected drift would be ${naive} ms`);
});

t.test('timeline: a hold whose timestamps did not advance re-anchors to arrival; the gap stays a gap', async (t) => {
  const tl = new LegTimeline(3200);
  tl.place(1, 0, 0);
  for (let k = 1; k < 100; k++) tl.place(1, k * 160, k * 160);
  // 5 s on hold, then the sender resumes where its timestamps left off
  const at = tl.place(1, 100 * 160, 100 * 160 + 40_000);
  t.equal(at, 100 * 160 + 40_000, 'placed at its arrival, 5 s later');
  t.equal(tl.reanchors, 1);
});

/**
 * Two legs at 50 packets/s placed by their timeline and mixed, with the recorder (not the network) stalled for
 * `stallMs` once: the packets queue in the socket and are all handled when it wakes, and the encode tick that
 * runs first takes everything up to `now - hold`.
 */
function stalledRecorder(stallMs: number, hold: number): { late: number; silent: number[] } {
  const legs = [new LegTimeline(400 * 8), new LegTimeline(400 * 8)];
  const mixer = new ChannelMixer(2, 2, 8); // the recording starts where the first packets land (1 ms)
  const stallFrom = 3000;
  let nextTick = 100;
  for (let k = 0; k < 300; k++) {
    const sent = k * 20 + 1;
    // while stalled nothing is handled; afterwards the queue is drained, in order
    const handled = sent >= stallFrom && sent < stallFrom + stallMs ? stallFrom + stallMs : sent;
    while (nextTick <= handled) {
      mixer.take((nextTick * 8) - hold); // the tick (a timer) runs before the queued packets are read
      nextTick += 100;
    }
    legs.forEach((tl, slot) => mixer.write(slot, tl.place(slot + 1, k * 160, handled * 8), fill(160, 1000)));
  }
  mixer.take(6000 * 8);
  return { late: mixer.lateSamples, silent: mixer.silentSamples };
}

t.test('recording hold: a 400 ms stall of the recorder loses nothing; the old 140 ms wait dropped audio', async (t) => {
  const { holdSamples } = await import('../../src/recording/recording.js');
  const hold = holdSamples(80, 400);
  t.equal(hold, 3840, 'jitter wait + skew limit = 480 ms');
  const ok = stalledRecorder(390, hold);
  t.equal(ok.late, 0, 'no sample dropped as late');
  t.same(ok.silent, [0, 0], 'no silence filled on either leg (the legs sent all along)');
  const old = stalledRecorder(390, (80 + 60) * 8);
  t.ok(old.late > 0, `a 140 ms wait drops ${old.late / 8} ms of each leg's audio under the same stall`);
});
