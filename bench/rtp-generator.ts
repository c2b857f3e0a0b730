/**
 * The bench's phones: a process of its own (forked by load.ts, never in the recorder's or the SIP side's process)
 * that sends every party's RTP from its own UDP socket, on its own 20 ms phase, with 0-4 ms of send jitter and every
 * 97th packet sent after its successor, and measures what comes back relayed (the other party's packets, matched by
 * SSRC and sequence number to when they were sent).
 *
 * Messages from the parent (process.send): `add` (opens a party's socket; replies its port), `start` (sends to the
 * recorder's port from now on), `hold` / `unhold` (the party stops sending, then goes on with the next sequence number
 * on a fresh 20 ms schedule), `end` (the party stops and closes its socket), `stop` (stops every party; replies the
 * counts), `close` (exits). With `--no-relay-samples` (the soak) no relay latency is kept (an hour of it is ~10^7
 * samples).
 */
import { createSocket, type Socket } from 'node:dgram';
import { encodeG711 } from '../src/media/g711.js';
import { buildRtp } from '../src/media/rtp-packet.js';
import { tonePcm } from '../test/harness/pcap.js';

export type GeneratorRequest =
  | { op: 'add'; id: number; ssrc: number; freq: number }
  | { op: 'start'; id: number; ssrc: number; remotePort: number }
  | { op: 'hold' | 'unhold' | 'end'; id: number; ssrc: number }
  | { op: 'stop'; id: number }
  | { op: 'close'; id: number };

export interface GeneratorStats {
  sent: number;
  received: number;
  /** Relay latency samples (every 4th relayed packet), ms. */
  relayMs: number[];
  /** The longest time the send loop did not run, ms. */
  longestPauseMs: number;
  /** This process's CPU over its life, share of one core. */
  cpu: number;
}

class Party {
  seq = 0;
  held: number | null = null;
  startedAt = 0;
  remotePort = 0;
  readonly sentAt = new Float64Array(65536);
  readonly phase: number;
  constructor(
    readonly socket: Socket,
    readonly ssrc: number,
    readonly payload: Uint8Array,
  ) {
    this.phase = (ssrc * 7.31) % 20;
  }
}

/** A packet's send jitter, 0-4 ms, fixed by party and sequence number (runs are comparable). */
const jitterMs = (ssrc: number, seq: number): number => (((ssrc * 2654435761 + seq * 40503) >>> 0) % 4000) / 1000;

const parties = new Map<number, Party>();
const live: Party[] = [];
const payloads = new Map<number, Uint8Array>();
const stats: GeneratorStats = { sent: 0, received: 0, relayMs: [], longestPauseMs: 0, cpu: 0 };
const born = performance.now();
const cpu0 = process.cpuUsage();
let sending = true;
let lastPump = performance.now();
const relaySamples = !process.argv.includes('--no-relay-samples');

const send = (p: Party, seq: number): void => {
  const off = (seq % 50) * 160;
  const pkt = buildRtp({ payloadType: 0, marker: seq === 0, sequence: seq & 0xffff, timestamp: (seq * 160) >>> 0, ssrc: p.ssrc, payload: p.payload.subarray(off, off + 160) });
  p.sentAt[seq & 0xffff] = performance.now();
  p.socket.send(pkt, p.remotePort, '127.0.0.1');
  stats.sent++;
};

const pump = setInterval(() => {
  const now = performance.now();
  stats.longestPauseMs = Math.max(stats.longestPauseMs, now - lastPump);
  lastPump = now;
  if (!sending) return;
  for (const p of live) {
    for (;;) {
      if (p.startedAt + p.phase + p.seq * 20 + jitterMs(p.ssrc, p.seq) > now) break;
      if (p.seq % 97 === 50) {
        p.held = p.seq;
      } else {
        send(p, p.seq);
        if (p.held !== null) send(p, p.held);
        p.held = null;
      }
      p.seq++;
    }
  }
}, 1);

const reply = (m: unknown): void => {
  process.send?.(m);
};

process.on('message', (m: GeneratorRequest) => {
  switch (m.op) {
    case 'add': {
      const s = createSocket('udp4');
      s.bind(0, '127.0.0.1', () => {
        s.setRecvBufferSize(1 << 20);
        let payload = payloads.get(m.freq);
        if (!payload) {
          payload = encodeG711('PCMU', tonePcm({ freq: m.freq, amplitude: 6000 }, 1));
          payloads.set(m.freq, payload);
        }
        const p = new Party(s, m.ssrc, payload);
        parties.set(m.ssrc, p);
        s.on('message', (d) => {
          stats.received++;
          if (!relaySamples || (stats.received & 3) !== 0 || d.length < 12) return;
          const from = parties.get(d.readUInt32BE(8));
          const at = from?.sentAt[d.readUInt16BE(2)] ?? 0;
          if (at > 0) stats.relayMs.push(performance.now() - at);
        });
        reply({ id: m.id, port: s.address().port });
      });
      return;
    }
    case 'start': {
      const p = parties.get(m.ssrc);
      if (p) {
        p.remotePort = m.remotePort;
        p.startedAt = performance.now();
        live.push(p);
      }
      reply({ id: m.id });
      return;
    }
    case 'hold':
    case 'unhold':
    case 'end': {
      const p = parties.get(m.ssrc);
      const at = p ? live.indexOf(p) : -1;
      if (at >= 0) live.splice(at, 1);
      if (p && m.op === 'unhold') {
        // the next packet now, then every 20 ms (the sequence number goes on)
        p.startedAt = performance.now() - p.phase - p.seq * 20;
        live.push(p);
      }
      if (p && m.op === 'end') {
        parties.delete(m.ssrc);
        p.socket.close();
      }
      reply({ id: m.id });
      return;
    }
    case 'stop': {
      sending = false;
      const c = process.cpuUsage(cpu0);
      stats.cpu = (c.user + c.system) / 1e6 / ((performance.now() - born) / 1000);
      reply({ id: m.id, stats });
      return;
    }
    case 'close':
      clearInterval(pump);
      for (const p of parties.values()) p.socket.close();
      reply({ id: m.id });
      setImmediate(() => process.exit(0));
      return;
  }
});
