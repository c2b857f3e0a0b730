import { createSocket, type Socket } from 'node:dgram';
import { parseRtpInto, type RtpPacket } from './rtp-packet.js';

export interface RtpEndpointStats {
  datagrams: number;
  malformed: number;
  lastMalformed: string | null;
}

/**
 * One UDP socket on an even port (taken from the RTP port pool by the main thread). Parses what arrives and hands
 * RTP to `onPacket` with the arrival time and the source (for symmetric RTP). Sends are best-effort. `close()` is
 * idempotent; the port goes back to the pool when the main thread hears the leg closed.
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

  /** Binds a socket on `port`; rejects (EADDRINUSE: another process holds it) leaving nothing open. */
  static async bind(port: number, bindAddress: string): Promise<RtpEndpoint> {
    const socket = createSocket({ type: bindAddress.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 256 * 1024 });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, bindAddress, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw err;
    }
    return new RtpEndpoint(socket, port);
  }

  send(data: Uint8Array, address: string, port: number): void {
    if (this.closed) return;
    this.socket.send(data, port, address);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}
