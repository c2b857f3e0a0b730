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
