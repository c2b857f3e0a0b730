import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { decodeG711, encodeG711, transcodeG711 } from '../../src/media/g711.js';
import { MediaStream } from '../../src/media/media-stream.js';
import { buildRtp, parseRtp, type RtpPacket } from '../../src/media/rtp-packet.js';
import { ToneInjector } from '../../src/media/tone-injector.js';
import { UdpEngine, udpEngineBinding } from '../../src/media/udp-engine.js';
import type { NegotiatedMedia } from '../../src/media/negotiated-media.js';
import { MMAP_THRESHOLD_BYTES } from '../../src/ops/mmap-threshold.js';
import { freeUdpPort } from '../harness/free-port.js';
import { until } from '../harness/until.js';

const binding = udpEngineBinding();
if (binding instanceof Error) {
  // npm ci builds it; a machine without a compiler runs on the dgram sockets (media.udp auto)
  t.fail(`the native UDP engine is not built: ${binding.message}`);
  process.exit(1);
}


/** A phone: a UDP socket that keeps what it receives. */
async function phone(): Promise<{ sock: Socket; port: number; got: Buffer[]; at: number[] }> {
  const sock = createSocket('udp4');
  const got: Buffer[] = [];
  const at: number[] = [];
  sock.on('message', (m) => {
    got.push(m);
    at.push(performance.now());
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { sock, port: sock.address().port, got, at };
}

const media = (codec: 'PCMU' | 'PCMA', payloadType: number, remotePort: number, dir: NegotiatedMedia['remoteDirection'] = 'sendrecv'): NegotiatedMedia => ({
  mline: 0, payloadType, codec, telephoneEventPt: 101, remoteAddress: '127.0.0.1', remotePort,
  remoteDirection: dir, localDirection: 'sendrecv', ptime: 20, label: null,
});

const pcm = Int16Array.from({ length: 160 }, (_, i) => Math.round(5000 * Math.sin(i / 3)));

/** Two parties through the engine: phone a ↔ stream sa (port pa) ... stream sb (port pb) ↔ phone b. */
async function setup(t: Test, ma: (port: number) => NegotiatedMedia, mb: (port: number) => NegotiatedMedia) {
  const engine = new UdpEngine(binding as Exclude<typeof binding, Error>);
  t.teardown(() => engine.close());
  const a = await phone();
  const b = await phone();
  t.teardown(() => {
    a.sock.close();
    b.sock.close();
  });
  const pa = await freeUdpPort();
  const pb = await freeUdpPort();
  const heard: { slot: number; at: number; pcm: Int16Array }[] = [];
  const sink = (slot: number, at: number, p: Int16Array): void => void heard.push({ slot, at, pcm: p.slice() });
  const opts = { jitterMs: 20, maxSkewMs: 400 };
  const sa = new MediaStream(engine.open(pa, '127.0.0.1'), ma(a.port), 0, sink, opts);
  const sb = new MediaStream(engine.open(pb, '127.0.0.1'), mb(b.port), 1, sink, opts);
  sa.peer = sb;
  sb.peer = sa;
  const timer = setInterval(() => {
    engine.dispatch();
    sa.poll();
    sb.poll();
  }, 10);
  t.teardown(() => clearInterval(timer));
  return { engine, a, b, pa, pb, sa, sb, heard };
}

const rtp = (pt: number, seq: number, payload: Uint8Array): Buffer => buildRtp({ payloadType: pt, marker: false, sequence: seq, timestamp: seq * 160, ssrc: 0x1234, payload });

t.test('the engine relays a packet as received, on its own thread, and queues it for the recording', async (t) => {
  const { engine, a, b, pa, sb, heard } = await setup(t, (p) => media('PCMU', 0, p), (p) => media('PCMU', 0, p));
  const d = rtp(0, 1, encodeG711('PCMU', pcm));
  a.sock.send(d, pa, '127.0.0.1');
  await until('b.got.length === 1', () => b.got.length === 1, 2000);
  t.ok(b.got[0].equals(d), 'identical bytes at the other party');
  await until('heard.length > 0', () => heard.length > 0, 2000);
  const want = new Int16Array(160);
  decodeG711('PCMU', encodeG711('PCMU', pcm), want);
  t.same(Array.from(heard[0].pcm.subarray(0, 160)), Array.from(want), 'the recording has the audio');
  t.equal(sb.relay.relayed, 1, 'counted relayed on the peer stream');
  t.equal(engine.stats.relayed, 1, 'by the engine');
});

t.test('the engine converts μ-law to A-law and rewrites the payload type; the recording gets the original', async (t) => {
  const { a, b, pa, sb } = await setup(t, (p) => media('PCMU', 0, p), (p) => media('PCMA', 98, p));
  const payload = encodeG711('PCMU', pcm);
  const d = rtp(0, 1, payload);
  a.sock.send(d, pa, '127.0.0.1');
  await until('b.got.length === 1', () => b.got.length === 1, 2000);
  const out = parseRtp(b.got[0]) as RtpPacket;
  t.equal(out.payloadType, 98);
  t.equal(out.sequence, 1);
  t.same(Buffer.from(out.payload), Buffer.from(transcodeG711('PCMU', 'PCMA', payload)), 'the same bytes as the JavaScript relay converts to');
  await until('sb.relay.transcoded === 1', () => sb.relay.transcoded === 1, 2000);
  t.equal(sb.relay.relayed, 1);
});

t.test('symmetric RTP: the far end is where its packets come from, not the SDP port', async (t) => {
  const { a, b, pa, pb } = await setup(t, (p) => media('PCMU', 0, p), () => media('PCMU', 0, 9));
  // b's SDP said port 9; b sends first, from its real port
  b.sock.send(rtp(0, 1, encodeG711('PCMU', pcm)), pb, '127.0.0.1');
  await until('a.got.length === 1', () => a.got.length === 1, 2000);
  a.sock.send(rtp(0, 1, encodeG711('PCMU', pcm)), pa, '127.0.0.1');
  await until('b.got.length === 1', () => b.got.length === 1, 2000);
  t.pass('relayed to the port b sends from');
});

t.test('a party that does not receive (recvonly... sendonly hold) gets nothing; telephone-events keep their mapping', async (t) => {
  const { a, b, pa, sa, sb } = await setup(t, (p) => media('PCMU', 0, p), (p) => media('PCMU', 0, p, 'sendonly'));
  a.sock.send(rtp(0, 1, encodeG711('PCMU', pcm)), pa, '127.0.0.1');
  await until('sb.relay.dropped === 1', () => sb.relay.dropped === 1, 2000);
  t.equal(b.got.length, 0, 'nothing to the held party');
  // off hold, an event: relayed with the peer's event type
  sb.update({ ...(sb.media as NegotiatedMedia), remoteDirection: 'sendrecv', telephoneEventPt: 96 });
  a.sock.send(rtp(101, 2, Buffer.from([1, 0, 0, 160])), pa, '127.0.0.1');
  await until('b.got.length === 1', () => b.got.length === 1, 2000);
  t.equal((parseRtp(b.got[0]) as RtpPacket).payloadType, 96);
  t.equal(sa.stats.received, 1, 'the audio packet is recorded, the event is not');
});

t.test('an alert tone to a party: this thread relays (the engine wakes it), with the tone in place of the audio', async (t) => {
  const { a, b, pa, sb } = await setup(t, (p) => media('PCMU', 0, p), (p) => media('PCMU', 0, p));
  const tone = Int16Array.from({ length: 800 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 1000 * i) / 8000)));
  sb.tone = new ToneInjector(tone, 0, () => undefined);
  const sentAt = performance.now();
  a.sock.send(rtp(0, 1, encodeG711('PCMU', pcm)), pa, '127.0.0.1');
  await until('b.got.length === 1', () => b.got.length === 1, 2000);
  t.ok(b.at[0] - sentAt < 9, `woken at once, not at the 10 ms timer (${(b.at[0] - sentAt).toFixed(1)} ms)`);
  const out = parseRtp(b.got[0]) as RtpPacket;
  t.same(Buffer.from(out.payload), Buffer.from(encodeG711('PCMU', tone.subarray(0, 160))), 'the tone');
  t.equal(sb.relay.toned, 1);
  sb.tone = null;
  a.sock.send(rtp(0, 2, encodeG711('PCMU', pcm)), pa, '127.0.0.1');
  await until('b.got.length === 2', () => b.got.length === 2, 2000);
  t.same(Buffer.from((parseRtp(b.got[1]) as RtpPacket).payload), Buffer.from(encodeG711('PCMU', pcm)), 'the engine relays again after the tone');
});

t.test('what is not RTP is counted and neither relayed nor recorded; the arrival time is the engine\'s', async (t) => {
  const { a, b, pa, sa } = await setup(t, (p) => media('PCMU', 0, p), (p) => media('PCMU', 0, p));
  a.sock.send(Buffer.from('not rtp at all'), pa, '127.0.0.1');
  await until('sa.endpoint.stats.malformed === 1', () => sa.endpoint.stats.malformed === 1, 2000);
  t.equal(b.got.length, 0);
  const sentAt = performance.now();
  a.sock.send(rtp(0, 1, encodeG711('PCMU', pcm)), pa, '127.0.0.1');
  await until('b.got.length === 1', () => b.got.length === 1, 2000);
  await until('sa.lastPacketAt >= sentAt', () => sa.lastPacketAt >= sentAt, 2000);
  t.ok(sa.lastPacketAt - sentAt < 5, `arrival stamped by the engine (${(sa.lastPacketAt - sentAt).toFixed(2)} ms after the send)`);
});

t.test('a closed socket frees its port at once and the peer stops relaying into it; close is idempotent', async (t) => {
  const { engine, a, b, pa, pb, sb } = await setup(t, (p) => media('PCMU', 0, p), (p) => media('PCMU', 0, p));
  sb.close();
  sb.close();
  const again = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.bind(pb, '127.0.0.1', () => resolve());
  });
  again.close();
  a.sock.send(rtp(0, 1, encodeG711('PCMU', pcm)), pa, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(b.got.length, 0, 'nothing relayed from a closed socket');
  engine.close();
  engine.close();
  t.throws(() => engine.open(pb, '127.0.0.1'), /closed/);
});

t.test('a port another process holds: EADDRINUSE, nothing left open', async (t) => {
  const engine = new UdpEngine(binding as Exclude<typeof binding, Error>);
  t.teardown(() => engine.close());
  const holder = createSocket('udp4');
  await new Promise<void>((r) => holder.bind(0, '127.0.0.1', r));
  t.teardown(() => holder.close());
  t.throws(() => engine.open(holder.address().port, '127.0.0.1'), { code: 'EADDRINUSE' });
});

t.test('a backlog grows the queue; once read empty it gives its memory back (64 kB kept)', async (t) => {
  const engine = new UdpEngine(binding as Exclude<typeof binding, Error>);
  t.teardown(() => engine.close());
  const port = await freeUdpPort();
  const ep = engine.open(port, '127.0.0.1');
  let delivered = 0;
  ep.onPacket = () => void delivered++;
  t.equal(engine.stats.queueAllocatedBytes, 64 * 1024, 'the queue starts at 64 kB');
  // this thread stands still (a stall: spawnSync blocks it) while another process sends 12,000 packets of 172
  // bytes: 2.5 MB of records wait
  const packet = rtp(0, 1, encodeG711('PCMU', pcm)).toString('base64');
  const sender = `
    const s = require('node:dgram').createSocket('udp4');
    const b = Buffer.from(${JSON.stringify(packet)}, 'base64');
    let i = 0;
    const burst = () => {
      for (let k = 0; k < 200 && i < 12000; k++, i++) { b.writeUInt16BE(i & 0xffff, 2); s.send(b, ${port}, '127.0.0.1'); }
      if (i < 12000) setTimeout(burst, 2); else setTimeout(() => s.close(), 50);
    };
    burst();`;
  const r = spawnSync(process.execPath, ['-e', sender], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const { queuedBytes, queueAllocatedBytes } = engine.stats;
  t.ok(queuedBytes >= 12_000 * 212 * 0.9, `${(queuedBytes / 2 ** 20).toFixed(1)} MB waited`);
  t.ok(queueAllocatedBytes > 2 * 2 ** 20, `the backlog allocated ${(queueAllocatedBytes / 2 ** 20).toFixed(1)} MB`);
  engine.dispatch();
  t.ok(delivered >= 12_000 * 0.9, `${delivered} packets delivered`);
  t.equal(engine.stats.queuedBytes, 0, 'all read');
  t.equal(engine.stats.queueAllocatedBytes, 64 * 1024, 'and the queue is back to 64 kB');
});

t.test('a fixed mmap threshold keeps large freed blocks out of the arenas', async (t) => {
  // a 4 MB block freed raises glibc's threshold to 4 MB; then 64 blocks of 512 kB come from the main arena ([heap])
  // unless the threshold is fixed at 128 kB (mmap-threshold.ts), when each gets a mapping given back on free
  const file = fileURLToPath(new URL('../../build/Release/udp_engine.node', import.meta.url));
  const child = (fix: boolean): number => {
    const script = `
      const b = require(${JSON.stringify(file)});
      if (${fix} && !b.fixMmapThreshold(${MMAP_THRESHOLD_BYTES})) process.exit(3);
      const heapKb = () => { const s = require('node:fs').readFileSync('/proc/self/smaps', 'utf8'); const i = s.indexOf('[heap]'); return i < 0 ? 0 : Number(/Rss:\\s+(\\d+)/.exec(s.slice(i))[1]); };
      (() => Buffer.allocUnsafeSlow(4 << 20).fill(1))(); gc(); gc();
      const before = heapKb();
      const keep = []; for (let i = 0; i < 64; i++) keep.push(Buffer.allocUnsafeSlow(512 << 10).fill(2));
      console.log((heapKb() - before) / 1024);`;
    // a bare node: no loader hooks (tap's NODE_OPTIONS) whose allocations come first, no glibc settings inherited
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    t.equal(r.status, 0, r.stderr);
    return Number(r.stdout.trim());
  };
  const dynamic = child(false);
  const fixed = child(true);
  t.ok(dynamic > 16, `glibc's own threshold: the main arena grew ${dynamic.toFixed(1)} MB`);
  t.ok(fixed < 4, `fixed at 128 kB: it grew ${fixed.toFixed(1)} MB`);
});
