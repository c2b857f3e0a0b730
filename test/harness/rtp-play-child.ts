/**
 * Plays a tone as RTP from a process of its own (`playInChild`), so a test that keeps its own event loop busy (a
 * fuzz loop, a burst of requests) does not delay the packets: the recorder sees the pace a real phone sends at.
 * Run as a script, it is that process: argv = port law freq seconds ssrc.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { G711Law } from '../../src/media/g711.js';
import { RtpSender } from './rtp-sender.js';

export interface ChildPlayer {
  /** The UDP port the child sends from (what the SDP offer names). */
  port: number;
  /** Starts the tone; resolves when the child has sent all of it and exited. */
  play(to: number, opts: { law: G711Law; freq: number; seconds: number; ssrc: number }): Promise<void>;
}

const self = fileURLToPath(import.meta.url);

/** Opens the child's socket first (its port goes into the offer), then plays on demand. */
export async function childPlayer(): Promise<ChildPlayer> {
  const child = spawn(process.execPath, ['--import', 'tsx', self], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`RTP player exited ${code}`)));
  });
  return {
    port,
    play(to, o) {
      child.stdin.write(`${JSON.stringify({ to, ...o })}\n`);
      return new Promise((resolve) => child.once('exit', () => resolve()));
    },
  };
}

if (process.argv[1] === self) {
  const sender = await RtpSender.open();
  process.stdout.write(`${sender.port}\n`);
  process.stdin.once('data', async (d: Buffer) => {
    const o = JSON.parse(d.toString()) as { to: number; law: G711Law; freq: number; seconds: number; ssrc: number };
    await sender.play(o.to, o);
    sender.close();
    process.exit(0);
  });
}
