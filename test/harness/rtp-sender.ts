/** Sends G.711 RTP from a real UDP socket at 50 packets/s on an absolute schedule (tests that need no SIPp). */
import { createSocket, type Socket } from 'node:dgram';
import { encodeG711, type G711Law } from '../../src/media/g711.js';
import { buildRtp } from '../../src/media/rtp-packet.js';
import { tonePcm } from './pcap.js';

export class RtpSender {
  sent = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Per SSRC: the next sequence number and when its first play started (a later play goes on from there, as a real sender's would). */
  private readonly streams = new Map<number, { seq: number; t0: number }>();
  private constructor(readonly socket: Socket, readonly port: number) {}

  static async open(): Promise<RtpSender> {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    return new RtpSender(socket, socket.address().port);
  }

  /**
   * Streams a tone to `to` for `seconds`; resolves when done. `hold`: from `atMs` into the play, nothing is sent for
   * `forMs`, then everything held goes out at once (a sender stalled, or a network that buffered its packets).
   */
  play(to: number, opts: { law: G711Law; freq: number; seconds: number; ssrc: number; hold?: { atMs: number; forMs: number } }): Promise<void> {
    const g711 = encodeG711(opts.law, tonePcm({ freq: opts.freq, amplitude: 8000 }, opts.seconds));
    const pt = opts.law === 'PCMU' ? 0 : 8;
    const t0 = performance.now();
    const st = this.streams.get(opts.ssrc) ?? { seq: 0, t0 };
    this.streams.set(opts.ssrc, st);
    // the timestamp goes on by the time that passed since the stream's first packet (a pause in sending is a gap)
    const ts0 = Math.round((t0 - st.t0) / 20) * 160;
    let k = 0;
    return new Promise((resolve) => {
      const next = (): void => {
        const now = performance.now();
        const h = opts.hold;
        const holding = h !== undefined && now - t0 >= h.atMs && now - t0 < h.atMs + h.forMs;
        while (!holding && k * 20 <= now - t0 && (k + 1) * 160 <= g711.length) {
          this.socket.send(buildRtp({ payloadType: pt, marker: k === 0, sequence: st.seq++ & 0xffff, timestamp: (ts0 + k * 160) >>> 0, ssrc: opts.ssrc, payload: g711.subarray(k * 160, (k + 1) * 160) }), to, '127.0.0.1');
          this.sent++;
          k++;
        }
        if ((k + 1) * 160 > g711.length) {
          this.timer = null;
          resolve();
          return;
        }
        const due = holding && h ? t0 + h.atMs + h.forMs : t0 + k * 20;
        this.timer = setTimeout(next, Math.max(1, due - performance.now()));
      };
      next();
    });
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.socket.close();
  }
}
