import { createSocket, type Socket } from 'node:dgram';
import { parseRtpInto, type RtpPacket } from './rtp-packet.js';
import type { RtpPortPool } from './rtp-port-pool.js';

export interface RtpEndpointStats {
  datagrams: number;
  malformed: number;
  lastMalformed: string | null;
}

/**
 * One UDP socket on a pooled even port. Parses what arrives and hands RTP to `onPacket` with the arrival time
 * and the source (for symmetric RTP). Sends are best-effort. `close()` is idempotent and returns the port.
 */
export class RtpEndpoint {
  readonly stats: RtpEndpointStats = { datagrams: 0, malformed: 0, lastMalformed: null };
  /**
   * `datagram` is the packet as received (a fresh buffer per datagram; `p.payload` is a view into it). `p` and `from`
   * are valid during the call only: the same packet object is refilled for the next datagram.
   */
  onPacket: (p: RtpPacket, arrivalMs: number, from: { address: string; port: number }, datagram: Buffer) => void = () => undefined;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
    private readonly pool: RtpPortPool,
  ) {
    const p: RtpPacket = { payloadType: 0, marker: false, sequence: 0, timestamp: 0, ssrc: 0, payload: new Uint8Array(0) };
    socket.on('message', (msg, rinfo) => {
      const at = performance.now();
      this.stats.datagrams++;
      const why = parseRtpInto(msg, p);
      if (why !== null) {
        this.stats.malformed++;
        this.stats.lastMalformed = why;
        return;
      }
      this.onPacket(p, at, rinfo, msg);
    });
    socket.on('error', () => undefined);
  }

  /** Binds a socket on a port from the pool, skipping ports another process holds. */
  static async open(pool: RtpPortPool, bindAddress: string, attempts = 16): Promise<RtpEndpoint> {
    let lastErr: unknown;
    for (let i = 0; i < attempts; i++) {
      const port = pool.take();
      const socket = createSocket({ type: bindAddress.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 256 * 1024 });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind(port, bindAddress, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        return new RtpEndpoint(socket, port, pool);
      } catch (err) {
        lastErr = err;
        socket.close();
        pool.release(port);
      }
    }
    throw lastErr;
  }

  send(data: Uint8Array, address: string, port: number): void {
    if (this.closed) return;
    this.socket.send(data, port, address);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
    this.pool.release(this.port);
  }
}
