import t from 'tap';
import { LegTimeline } from '../../src/media/leg-timeline.js';
import { ChannelMixer } from '../../src/recording/channel-mixer.js';

const fill = (n: number, v: number): Int16Array => new Int16Array(n).fill(v);

t.test('timeline: RTP time after the anchor, wrap-safe; loss keeps positions', async (t) => {
  const tl = new LegTimeline(3200);
  t.equal(tl.place(1, 10, 0xffffff60, 1000), 1000, 'anchored at arrival');
  t.equal(tl.place(1, 11, 0x00000000, 1165), 1160, '32-bit wrap: next packet is 160 later');
  t.equal(tl.place(1, 14, 0x000001e0, 1500), 1640, 'two lost packets: position follows RTP time, not arrival');
});

t.test('timeline: a new SSRC or a wild timestamp re-anchors, and is counted', async (t) => {
  const tl = new LegTimeline(3200);
  tl.place(1, 1, 5000, 0);
  t.equal(tl.place(2, 500, 999999, 8000), 8000);
  t.equal(tl.ssrcChanges, 1);
  t.equal(tl.place(2, 501, 999999 + 160 + 80000, 8160), 8160, 'a 10 s timestamp jump with no 10 s wait re-anchors');
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

t.test('mixer: further inputs of a slot are summed (saturated); each input rewrites only its own audio', async (t) => {
  const m = new ChannelMixer(2, 2, 0);
  const third = m.addInput(1);
  t.equal(third, 2, 'a further input after the slots own');
  m.write(0, 0, fill(400, 100));
  m.write(1, 0, fill(200, 1000));
  m.write(third, 100, fill(300, 2000));
  m.write(third, 100, fill(100, 3000)); // the third party's stream rewrites its first 100 samples (a drift correction)
  m.write(1, 300, fill(100, 30000));
  m.write(third, 300, fill(100, 30000));
  const f = m.take(400);
  t.same([f.channels[1][0], f.channels[1][99], f.channels[1][100], f.channels[1][199], f.channels[1][200], f.channels[1][299], f.channels[1][300]], [1000, 1000, 4000, 4000, 2000, 2000, 32767], 'one side: its parties summed where both talk, each alone elsewhere, clipped');
  t.equal(f.channels[0][0], 100, 'the other side untouched');
  t.equal(m.silentSamples[1], 0, 'no silence counted where any input of the slot wrote');
  m.write(third, 400, fill(100, 5));
  const g = m.take(600);
  t.same([g.channels[1][0], g.channels[1][100]], [5, 0]);
  t.equal(m.silentSamples[1], 100, 'silence only where no input of the slot wrote');
  t.throws(() => m.addInput(2), RangeError, 'no input for a slot the mixer does not have');
  const mono = new ChannelMixer(2, 1, 0);
  const x = mono.addInput(0);
  mono.write(0, 0, fill(10, 100));
  mono.write(1, 0, fill(10, 10));
  mono.write(x, 0, fill(10, 1));
  t.equal(mono.take(10).channels[0][0], 111, 'mono: every input of every slot');
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
    const pos = tl.place(7, k & 0xffff, (k * 160) % 2 ** 32, sent + base + jitter);
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

t.test('timeline: a sender that resumes with stale timestamps re-anchors once its lateness does not shrink; the gap stays a gap', async (t) => {
  const tl = new LegTimeline(3200);
  for (let k = 0; k < 100; k++) tl.place(1, k, k * 160, k * 160);
  // 5 s silent (no SDP hold), then the sender resumes where its timestamps left off, in real time
  const late = 40_000;
  const first = tl.place(1, 100, 100 * 160, 100 * 160 + late);
  t.equal(first, 100 * 160, 'at first placed by its timestamp (it could be the backlog of a stall)');
  let k = 101;
  for (; k < 130 && tl.reanchors === 0; k++) tl.place(1, k, k * 160, k * 160 + late);
  t.equal(tl.reanchors, 1, 're-anchored');
  t.ok((k - 100) * 20 <= 240, `after ${(k - 100) * 20} ms of lateness that did not shrink`);
  t.equal(tl.place(1, k, k * 160, k * 160 + late), k * 160 + late, 'then placed at arrival, 5 s later');
  t.equal(tl.latePlaced, k - 1 - 100, 'the packets before the decision were placed late and counted');
});

t.test("timeline: a stall's backlog keeps its place, however late; lateness that shrinks is never a re-anchor", async (t) => {
  for (const stallMs of [700, 1500, 4000]) {
    const tl = new LegTimeline(3200);
    const stallFrom = 50;
    const n = stallMs / 20;
    const places: number[] = [];
    for (let k = 0; k < 300; k++) {
      const sent = k * 160;
      // during the stall nothing is read; then the backlog is read 5 packets per ms
      const arrival = k >= stallFrom && k < stallFrom + n ? (stallFrom + n) * 160 + (k - stallFrom) * 1.6 : sent;
      places.push(tl.place(9, k, 1_000_000 + k * 160, arrival));
    }
    t.same(places, places.map((_, k) => k * 160), `${stallMs} ms stall: every packet at its RTP place`);
    t.equal(tl.reanchors, 0, `${stallMs} ms stall: no re-anchor`);
    t.ok(tl.latePlaced > 0 && tl.latePlaced <= n, `${stallMs} ms stall: ${tl.latePlaced} packets placed late, counted`);
  }
});

t.test('timeline: a wrapped timestamp and sequence number inside a burst keep their place', async (t) => {
  const tl = new LegTimeline(3200);
  const ts0 = 0xffffffff - 160 * 40 + 1;
  const seq0 = 0xffff - 30;
  const places: number[] = [];
  for (let k = 0; k < 120; k++) {
    // packets 20..79 held back 1.5 s by the sender, then sent in one burst
    const arrival = k >= 20 && k < 80 ? 80 * 160 + (k - 20) * 4 : k * 160;
    places.push(tl.place(3, (seq0 + k) & 0xffff, (ts0 + k * 160) % 2 ** 32, arrival));
  }
  t.same(places, places.map((_, k) => k * 160), 'placed by timestamp across both wraps');
  t.equal(tl.reanchors, 0);
});

t.test('timeline: a new SSRC in a burst, a late packet that goes back in time, a real jump: each re-anchors', async (t) => {
  const tl = new LegTimeline(3200);
  for (let k = 0; k < 50; k++) tl.place(1, k, k * 160, k * 160);
  t.equal(tl.place(2, 7, 123_456, 8000 + 9000), 17_000, 'a new SSRC anchors at its arrival, however late the burst');
  t.equal(tl.ssrcChanges, 1);
  for (let k = 1; k < 10; k++) tl.place(2, 7 + k, 123_456 + k * 160, 17_000 + k * 160);
  t.equal(tl.place(2, 17, 123_456 - 50_000, 17_000 + 10 * 160), 17_000 + 10 * 160, 'a timestamp that jumps back is not a continuation: re-anchored at arrival');
  t.equal(tl.reanchors, 1);
  t.equal(tl.place(2, 18, 123_456 + 500_000, 17_000 + 11 * 160), 17_000 + 11 * 160, 'a jump ahead re-anchors');
  t.equal(tl.reanchors, 2);
  tl.reset();
  t.equal(tl.place(2, 19, 5, 99_999), 99_999, 'after a reset (back from hold) the next packet anchors afresh');
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
  for (let k = 0; k < 500; k++) {
    const sent = k * 20 + 1;
    // while stalled nothing is handled; afterwards the queue is drained, in order
    const handled = sent >= stallFrom && sent < stallFrom + stallMs ? stallFrom + stallMs : sent;
    while (nextTick <= handled) {
      mixer.take((nextTick * 8) - hold); // the tick (a timer) runs before the queued packets are read
      nextTick += 100;
    }
    legs.forEach((tl, slot) => mixer.write(slot, tl.place(slot + 1, k, k * 160, handled * 8), fill(160, 1000)));
  }
  mixer.take(10_000 * 8);
  return { late: mixer.lateSamples, silent: mixer.silentSamples };
}

t.test('recording hold: a 1.5 s stall of the recorder loses nothing; a stall past the horizon is counted, not moved', async (t) => {
  const { holdSamples } = await import('../../src/recording/recording.js');
  const hold = holdSamples(80, 2500);
  t.equal(hold, 2580 * 8, 'jitter wait + horizon');
  for (const stall of [700, 1500, 2400]) {
    const ok = stalledRecorder(stall, hold);
    t.equal(ok.late, 0, `${stall} ms stall: no sample dropped as late`);
    t.same(ok.silent, [0, 0], `${stall} ms stall: no silence filled on either leg (the legs sent all along)`);
  }
  const past = stalledRecorder(4000, hold);
  t.ok(past.late > 0, `a 4 s stall drops ${past.late / 16} ms of each leg's audio, counted`);
  t.ok(Math.abs(past.late / 16 - (4000 - 2580)) < 120, 'about what the stall exceeded the hold by');
  t.same(past.silent, [past.late / 2, past.late / 2], 'the dropped span is silence at its place; nothing else moved');
  const old = stalledRecorder(700, (80 + 400) * 8);
  t.ok(old.late > 0, `the old 480 ms hold drops ${old.late / 16} ms of each leg's audio under a 700 ms stall`);
});

t.test('mixer: the ring wraps and grows without losing or moving audio; discard drops uncounted', async (t) => {
  const m = new ChannelMixer(2, 2, 0, 64);
  t.equal(m.capacity, 64);
  let v = 1;
  for (let at = 0; at < 1000; at += 40) {
    m.write(0, at, fill(40, v));
    m.write(1, at, fill(40, -v));
    const f = m.take(at + 40);
    t.equal(f.channels[0][39] + f.channels[1][0], 0, `span ${at}: both slots in place`);
    if (f.channels[0][0] !== v) t.fail(`span ${at}: got ${f.channels[0][0]}`);
    v++;
  }
  m.write(0, 1000 + 300, fill(100, 5)); // beyond the ring: it grows
  t.ok(m.capacity >= 400);
  const f = m.take(1500);
  t.same([f.channels[0][299], f.channels[0][300], f.channels[0][399], f.channels[0][400]], [0, 5, 5, 0]);
  m.write(0, 1500, fill(100, 9));
  const silentBefore = m.silentSamples[0];
  m.discard(1550);
  t.equal(m.position, 1550);
  t.equal(m.silentSamples[0], silentBefore, 'discarding counts no silence');
  t.equal(m.take(1600).channels[0][0], 9, 'what is after the discard stays');
  m.discard(1_000_000);
  t.equal(m.position, 1_000_000, 'a long discard moves the base however far');
  t.equal(m.take(1_000_010).channels[0][0], 0);
});

t.test("mixer: a recording's start cuts off the packet playing across it without counting it late", async (t) => {
  const m = new ChannelMixer(2, 2, 0, 4096);
  m.write(0, 0, fill(1000, 3));
  m.startAt(1000);
  m.write(1, 900, fill(160, 4)); // arrives after the start, began before it
  t.equal(m.lateSamples, 0, 'nothing late');
  const f = m.take(1100);
  t.equal(f.start, 1000);
  t.same([f.channels[1][0], f.channels[1][59], f.channels[1][60]], [4, 4, 0], 'its part from the start on is kept');
  m.write(0, 1050, fill(10, 5));
  t.equal(m.lateSamples, 10, 'after the start, a write behind what was handed out is late');
});

t.test('timeline: a recorder that reads its sockets 15 ms late for 5 s moves the leg by steps of 2.5 ms at most (no 10 ms hole)', async (t) => {
  const tl = new LegTimeline(3200);
  let prevEnd = -1;
  let biggestJump = 0;
  for (let k = 0; k < 1500; k++) {
    // 10 s on time, 5 s every packet read 15 ms late (a busy node), then on time again
    const late = k >= 500 && k < 750 ? 120 : 0;
    const pos = tl.place(4, k, k * 160, 1000 + k * 160 + late);
    if (prevEnd >= 0) biggestJump = Math.max(biggestJump, Math.abs(pos - prevEnd));
    prevEnd = pos + 160;
  }
  t.ok(biggestJump <= 20, `the largest gap or overlap between packets is ${biggestJump} samples (≤ 2.5 ms)`);
});
