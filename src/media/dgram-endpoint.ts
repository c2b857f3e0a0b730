import { createSocket, type Socket } from 'node:dgram';
import { RELAY_JS, type RtpEndpoint, type RtpEndpointStats } from './rtp-endpoint.js';
import { parseRtpInto, type RtpPacket } from './rtp-packet.js';

/**
 * An RTP endpoint on Node's dgram socket (`media.udp: js`, or where the native engine is not built): one 'message'
 * event and one Buffer per datagram, read and relayed on the media host's own thread. The stream relays.
 */
export class DgramEndpoint implements RtpEndpoint {
  readonly stats: RtpEndpointStats = { datagrams: 0, malformed: 0, lastMalformed: null };
  onPacket: RtpEndpoint['onPacket'] = () => undefined;
  readonly routes = false;
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
      this.onPacket(p, at, rinfo, msg, RELAY_JS);
    });
    socket.on('error', () => undefined);
  }

  /** Binds a socket on `port`; rejects (EADDRINUSE: another process holds it) leaving nothing open. */
  static async bind(port: number, bindAddress: string): Promise<DgramEndpoint> {
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
    return new DgramEndpoint(socket, port);
  }

  route(): void {
    // the stream relays
  }

  setRemote(): void {
    // the stream keeps its far end
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
