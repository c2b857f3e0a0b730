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

/** Writes a pcap of `seconds` of the tone as 20 ms RTP packets (50 per second). */
export function writeRtpPcap(path: string, opts: { law: G711Law; tone: ToneSpec; seconds: number; ssrc?: number; payloadType?: number }): void {
  const pt = opts.payloadType ?? (opts.law === 'PCMU' ? 0 : 8);
  const pcm = tonePcm(opts.tone, opts.seconds);
  const g711 = encodeG711(opts.law, pcm);
  const chunks: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(1, 20); // Ethernet
  chunks.push(gh);
  const packets = Math.floor(g711.length / 160);
  const seq0 = 1000;
  const ts0 = 160_000;
  for (let k = 0; k < packets; k++) {
    const rtp = buildRtp({ payloadType: pt, marker: k === 0, sequence: seq0 + k, timestamp: ts0 + k * 160, ssrc: opts.ssrc ?? 0x1234abcd, payload: g711.subarray(k * 160, (k + 1) * 160) });
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(6000, 0);
    udp.writeUInt16BE(6000, 2);
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
    const usec = k * 20_000;
    ph.writeUInt32LE(Math.floor(usec / 1e6), 0);
    ph.writeUInt32LE(usec % 1e6, 4);
    ph.writeUInt32LE(frame.length, 8);
    ph.writeUInt32LE(frame.length, 12);
    chunks.push(ph, frame);
  }
  writeFileSync(path, Buffer.concat(chunks));
}
