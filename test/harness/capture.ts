/**
 * Captures loopback UDP and TCP with dumpcap (Wireshark's capture tool, Debian `tshark`) and parses the pcap: the
 * tests see what really went over the wire — relayed RTP, when each SIP request and RTP packet arrived, and (TCP) the
 * drachtio control link's frames.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './recorder-harness.js';

export interface CapturedUdp {
  /** Capture time, ms since the epoch (kernel timestamp). */
  ms: number;
  /** UDP datagram, or one TCP segment's payload. */
  proto: 'udp' | 'tcp';
  src: string;
  sport: number;
  dst: string;
  dport: number;
  payload: Buffer;
}

export interface Capture {
  stop(): Promise<CapturedUdp[]>;
}

/** Starts dumpcap on `lo` with a BPF filter; resolves once it is capturing. */
export async function startCapture(filter: string): Promise<Capture> {
  const file = join(tempDir('cap'), 'lo.pcap');
  const proc = spawn('dumpcap', ['-i', 'lo', '-P', '-q', '-f', filter, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`dumpcap did not start: ${err}`)), 10_000);
    proc.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/Capturing on/i.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    void exited.then((c) => {
      clearTimeout(t);
      reject(new Error(`dumpcap exited (${c}): ${err}`));
    });
  });
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 300)); // let the last packets reach the file
      proc.kill('SIGINT');
      await exited;
      return parsePcap(readFileSync(file));
    },
  };
}

/** Parses a classic pcap of Ethernet (or Linux cooked) frames into its IPv4 UDP datagrams and TCP segments. */
export function parsePcap(buf: Buffer): CapturedUdp[] {
  const magic = buf.readUInt32LE(0);
  const nano = magic === 0xa1b23c4d;
  if (magic !== 0xa1b2c3d4 && !nano) throw new Error('not a little-endian pcap file');
  const linktype = buf.readUInt32LE(20);
  const l2 = linktype === 1 ? 14 : linktype === 113 ? 16 : linktype === 0 ? 4 : -1;
  if (l2 < 0) throw new Error(`unsupported link type ${linktype}`);
  const out: CapturedUdp[] = [];
  for (let o = 24; o + 16 <= buf.length; ) {
    const sec = buf.readUInt32LE(o);
    const frac = buf.readUInt32LE(o + 4);
    const incl = buf.readUInt32LE(o + 8);
    const frame = buf.subarray(o + 16, o + 16 + incl);
    o += 16 + incl;
    const ip = frame.subarray(l2);
    if (ip.length < 28 || ip[0] >> 4 !== 4 || (ip[9] !== 17 && ip[9] !== 6)) continue;
    const ihl = (ip[0] & 0x0f) * 4;
    const l4 = ip.subarray(ihl, ip.readUInt16BE(2));
    const tcp = ip[9] === 6;
    if (tcp && l4.length < 20) continue;
    out.push({
      ms: sec * 1000 + (nano ? frac / 1e6 : frac / 1e3),
      proto: tcp ? 'tcp' : 'udp',
      src: `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`,
      dst: `${ip[16]}.${ip[17]}.${ip[18]}.${ip[19]}`,
      sport: l4.readUInt16BE(0),
      dport: l4.readUInt16BE(2),
      payload: tcp ? l4.subarray((l4[12] >> 4) * 4) : l4.subarray(8, l4.readUInt16BE(4)),
    });
  }
  return out;
}
