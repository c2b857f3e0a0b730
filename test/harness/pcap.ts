/**
 * Writes classic libpcap files of G.711 RTP (Ethernet/IPv4/UDP) for SIPp's `play_pcap_audio`, which replays the
 * RTP payloads with the capture's timing to the address our SDP answer gave.
 */
import { writeFileSync } from 'node:fs';
import { encodeG711, type G711Law } from '../../src/media/g711.js';
import { buildRtp } from '../../src/media/rtp-packet.js';

export interface ToneSpec {
  /** Hz; 0 = silence */
  freq: number;
  /** peak amplitude, 0..32767 */
  amplitude: number;
}

/** 16-bit PCM at 8 kHz of a sine tone. */
export function tonePcm(spec: ToneSpec, seconds: number, phaseSamples = 0): Int16Array {
  const n = Math.round(seconds * 8000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(spec.amplitude * Math.sin((2 * Math.PI * spec.freq * (i + phaseSamples)) / 8000));
  return out;
}

function ipChecksum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

export interface PcapOptions {
  law: G711Law;
  tone: ToneSpec;
  seconds: number;
  ssrc?: number;
  payloadType?: number;
  /** Silent spans [from, to) in seconds of sender time (markers the tests find again in the recording). */
  silences?: [number, number][];
  /** Drop packet k when k % lossEvery === lossAt (lossEvery 50 = 2 %). */
  lossEvery?: number;
  lossAt?: number;
  /** Delay packet k by 30 ms (it arrives after k+1) when k % reorderEvery === reorderAt. */
  reorderEvery?: number;
  reorderAt?: number;
  /** From this second on, a new SSRC with new sequence and timestamp bases (a transfer, a sender restart). */
  ssrcChangeAt?: number;
}

export interface PcapPacket {
  /** Index of the 20 ms slot in sender time. */
  k: number;
  /** Send time, µs from the start. */
  usec: number;
  rtp: Buffer;
}

/** The RTP packets of a pcap (before writing): 20 ms each, with the options' loss, reordering and SSRC change. */
export function rtpPackets(opts: PcapOptions): PcapPacket[] {
  const pt = opts.payloadType ?? (opts.law === 'PCMU' ? 0 : 8);
  const pcm = tonePcm(opts.tone, opts.seconds);
  for (const [from, to] of opts.silences ?? []) pcm.fill(0, Math.round(from * 8000), Math.round(to * 8000));
  const g711 = encodeG711(opts.law, pcm);
  const packets = Math.floor(g711.length / 160);
  const changeK = opts.ssrcChangeAt === undefined ? Infinity : Math.round(opts.ssrcChangeAt * 50);
  const out: PcapPacket[] = [];
  for (let k = 0; k < packets; k++) {
    if (opts.lossEvery && k % opts.lossEvery === (opts.lossAt ?? 0)) continue;
    const second = k >= changeK;
    const ssrc = second ? 0x5eed0002 : (opts.ssrc ?? 0x1234abcd);
    const sequence = second ? 40_000 + (k - changeK) : 1000 + k;
    const timestamp = second ? 3_000_000_000 + (k - changeK) * 160 : 160_000 + k * 160;
    const rtp = buildRtp({ payloadType: pt, marker: k === 0 || k === changeK, sequence, timestamp, ssrc, payload: g711.subarray(k * 160, (k + 1) * 160) });
    out.push({ k, usec: k * 20_000, rtp });
  }
  if (opts.reorderEvery) {
    // network reordering: the chosen packet is held up 30 ms and arrives after its successor
    for (const p of out) if (p.k % opts.reorderEvery === (opts.reorderAt ?? 0)) p.usec += 30_000;
    out.sort((a, b) => a.usec - b.usec);
  }
  return out;
}

/** Writes a pcap of `seconds` of the tone as 20 ms RTP packets (50 per second). */
export function writeRtpPcap(path: string, opts: PcapOptions): PcapPacket[] {
  return writeRtpPcapStreams(path, [{ dport: 6000, startSec: 0, opts }])[0];
}

/**
 * Writes one pcap carrying several RTP streams, each to its own UDP destination port and starting at its own time.
 * SIPp plays every packet to the first m-line's port plus (its port − the lowest port in the capture), so streams at
 * 6000 and 6002 reach an answer's ports P and P+2.
 */
export function writeRtpPcapStreams(path: string, streams: { dport: number; startSec: number; opts: PcapOptions }[]): PcapPacket[][] {
  const chunks: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(1, 20); // Ethernet
  chunks.push(gh);
  const perStream = streams.map((s) => rtpPackets(s.opts));
  const all = streams
    .flatMap((s, i) => perStream[i].map((p) => ({ usec: p.usec + Math.round(s.startSec * 1e6), rtp: p.rtp, dport: s.dport })))
    .sort((a, b) => a.usec - b.usec);
  for (const { rtp, usec, dport } of all) {
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(dport, 0);
    udp.writeUInt16BE(dport, 2);
    udp.writeUInt16BE(8 + rtp.length, 4);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 8 + rtp.length, 2);
    ip[8] = 64;
    ip[9] = 17;
    ip.set([127, 0, 0, 1], 12);
    ip.set([127, 0, 0, 1], 16);
    ip.writeUInt16BE(ipChecksum(ip), 10);
    const eth = Buffer.alloc(14);
    eth.writeUInt16BE(0x0800, 12);
    const frame = Buffer.concat([eth, ip, udp, rtp]);
    const ph = Buffer.alloc(16);
    ph.writeUInt32LE(Math.floor(usec / 1e6), 0);
    ph.writeUInt32LE(usec % 1e6, 4);
    ph.writeUInt32LE(frame.length, 8);
    ph.writeUInt32LE(frame.length, 12);
    chunks.push(ph, frame);
  }
  writeFileSync(path, Buffer.concat(chunks));
  return perStream;
}
