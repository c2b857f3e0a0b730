import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineRoute, RelayOutcome, RtpEndpoint, RtpEndpointStats } from './rtp-endpoint.js';
import { parseRtpInto, type RtpPacket } from './rtp-packet.js';

/** The native engine's counters since it started. */
export interface UdpEngineStats {
  /** Packets the engine's thread relayed. */
  relayed: number;
  /** Datagrams dropped because the JavaScript thread left 256 MB unread (it stood still for minutes). */
  queueDropped: number;
  /** Relayed packets the kernel refused to send. */
  sendErrors: number;
  /** Datagrams longer than 2,048 bytes (not RTP of any codec we take): dropped, neither relayed nor recorded. */
  truncated: number;
  /** Bytes waiting for the JavaScript thread now. */
  queuedBytes: number;
  /** Bytes the queue has allocated (64 kB; more only while a backlog waits). */
  queueAllocatedBytes: number;
}

type Engine = { readonly brand: unique symbol };

/** `src/media/native/udp-engine.cc`, built by node-gyp into build/Release/udp_engine.node. */
interface Binding {
  create(onReady: () => void): Engine;
  open(e: Engine, port: number, bindAddress: string): number;
  gen(e: Engine, slot: number): number;
  close(e: Engine, slot: number): void;
  setRemote(e: Engine, slot: number, address: string | null, port: number): void;
  setRoute(e: Engine, slot: number, peer: number, native: boolean, wake: boolean, inAudio: number, inEvent: number, outAudio: number, outEvent: number, table: Uint8Array | null): void;
  send(e: Engine, slot: number, data: Uint8Array, address: string, port: number): number;
  read(e: Engine, into: Uint8Array): number;
  stats(e: Engine): UdpEngineStats;
  destroy(e: Engine): void;
  nowMs(): number;
  niceThread(n: number): boolean;
  trimMalloc(): boolean;
  fixMmapThreshold(bytes: number): boolean;
  headerBytes: number;
}

let loaded: Binding | Error | undefined;

/** The compiled engine, or why it cannot be loaded (not built: no compiler where `npm ci` ran). Loaded once. */
export function udpEngineBinding(): Binding | Error {
  if (loaded === undefined) {
    try {
      // build/Release/ at the package root: above src/media (from source) or dist/src/media (compiled)
      let dir = dirname(fileURLToPath(import.meta.url));
      let file: string | null = null;
      for (let i = 0; i < 5 && file === null; i++, dir = dirname(dir)) {
        const f = join(dir, 'build/Release/udp_engine.node');
        if (existsSync(f)) file = f;
      }
      if (file === null) throw new Error('build/Release/udp_engine.node is not built (npm ci builds it with node-gyp: python3, make and g++)');
      loaded = createRequire(import.meta.url)(file) as Binding;
    } catch (err) {
      loaded = err as Error;
    }
  }
  return loaded;
}

/**
 * The native UDP engine of one media host (`media.udp: native`): its sockets are read, and relayed where a route
 * says so, by a thread of the engine's own (`native/udp-engine.cc`), so a relayed packet never waits for this thread
 * (mixing, encoding, file I/O, GC). Every datagram is queued for this thread as well; `dispatch` hands them to their
 * endpoints with the arrival time the engine stamped. The media host calls `dispatch` on its 10 ms timer, and the
 * engine wakes it at once for packets it leaves to JavaScript to relay. `close()` is idempotent.
 */
export class UdpEngine {
  private readonly e: Engine;
  private readonly endpoints = new Map<number, NativeEndpoint>();
  private readonly buf = Buffer.alloc(1 << 20);
  private readonly dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private readonly header: number;
  /** performance.now() minus the engine's clock (both CLOCK_MONOTONIC). */
  private readonly offset: number;
  private closed = false;

  constructor(readonly binding: Binding) {
    this.e = binding.create(() => this.dispatch());
    this.header = binding.headerBytes;
    this.offset = performance.now() - binding.nowMs();
  }

  /** A socket bound to `port`; throws (EADDRINUSE: another process holds it) leaving nothing open. */
  open(port: number, bindAddress: string): NativeEndpoint {
    if (this.closed) throw new Error('the UDP engine is closed');
    const slot = this.binding.open(this.e, port, bindAddress);
    const ep = new NativeEndpoint(this, slot, this.binding.gen(this.e, slot), port);
    this.endpoints.set(slot, ep);
    return ep;
  }

  /** @internal */
  closeEndpoint(ep: NativeEndpoint): void {
    if (this.endpoints.get(ep.slot) === ep) this.endpoints.delete(ep.slot);
    if (!this.closed) this.binding.close(this.e, ep.slot);
  }

  /** @internal */
  setRoute(ep: NativeEndpoint, r: EngineRoute): void {
    if (this.closed) return;
    const peer = r.peer instanceof NativeEndpoint && r.peer.engine === this && !r.peer.isClosed ? r.peer.slot : -1;
    this.binding.setRoute(this.e, ep.slot, peer, r.native, r.wake, r.inAudio, r.inEvent, r.outAudio, r.outEvent, r.table);
  }

  /** @internal */
  setRemote(ep: NativeEndpoint, address: string | null, port: number): void {
    if (!this.closed) this.binding.setRemote(this.e, ep.slot, address, port);
  }

  /** @internal */
  send(ep: NativeEndpoint, data: Uint8Array, address: string, port: number): void {
    if (!this.closed) this.binding.send(this.e, ep.slot, data, address, port);
  }

  /** Hands every datagram the engine queued to its endpoint, in arrival order. */
  dispatch(): void {
    const h = this.header;
    while (!this.closed) {
      const n = this.binding.read(this.e, this.buf);
      let o = 0;
      while (o < n) {
        const slot = this.dv.getUint32(o, true);
        const len = this.dv.getUint16(o + 16, true);
        const ep = this.endpoints.get(slot);
        if (ep !== undefined && ep.gen === this.dv.getUint32(o + 4, true)) {
          ep.deliver(this.buf, o, this.buf.subarray(o + h, o + h + len), this.dv.getFloat64(o + 8, true) + this.offset, this.dv.getUint16(o + 18, true));
        }
        o += h + ((len + 3) & ~3);
      }
      // a full buffer: more may wait
      if (n < this.buf.length / 2) return;
    }
  }

  get stats(): UdpEngineStats {
    return this.closed ? { relayed: 0, queueDropped: 0, sendErrors: 0, truncated: 0, queuedBytes: 0, queueAllocatedBytes: 0 } : this.binding.stats(this.e);
  }

  /** Stops the engine's thread and closes every socket it still has. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.binding.destroy(this.e);
    this.endpoints.clear();
  }
}

/** A socket of the native engine (see `UdpEngine`). */
export class NativeEndpoint implements RtpEndpoint {
  readonly stats: RtpEndpointStats = { datagrams: 0, malformed: 0, lastMalformed: null };
  onPacket: RtpEndpoint['onPacket'] = () => undefined;
  readonly routes = true;
  private closed = false;
  private readonly p: RtpPacket = { payloadType: 0, marker: false, sequence: 0, timestamp: 0, ssrc: 0, payload: new Uint8Array(0) };
  /** The last source, kept while packets keep coming from it (no string per packet). */
  private from = { address: '', port: 0 };
  private fromKey = -1;

  constructor(
    readonly engine: UdpEngine,
    readonly slot: number,
    readonly gen: number,
    readonly port: number,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal A datagram the engine queued: `rec` is its record's offset in `buf` (see udp-engine.cc). */
  deliver(buf: Buffer, rec: number, datagram: Buffer, arrivalMs: number, port: number): void {
    if (this.closed) return;
    this.stats.datagrams++;
    const flag = buf[rec + 20] as RelayOutcome;
    const why = parseRtpInto(datagram, this.p);
    if (why !== null) {
      this.stats.malformed++;
      this.stats.lastMalformed = why;
      return;
    }
    const a = rec + 24;
    if (buf[rec + 21] === 4) {
      const key = ((buf[a] << 24) | (buf[a + 1] << 16) | (buf[a + 2] << 8) | buf[a + 3]) >>> 0;
      if (key !== this.fromKey || port !== this.from.port) {
        this.fromKey = key;
        this.from = { address: `${buf[a]}.${buf[a + 1]}.${buf[a + 2]}.${buf[a + 3]}`, port };
      }
    } else {
      const address = ipv6Text(buf, a);
      if (address !== this.from.address || port !== this.from.port) this.from = { address, port };
      this.fromKey = -1;
    }
    this.onPacket(this.p, arrivalMs, this.from, datagram, flag);
  }

  send(data: Uint8Array, address: string, port: number): void {
    if (!this.closed) this.engine.send(this, data, address, port);
  }

  route(r: EngineRoute): void {
    if (!this.closed) this.engine.setRoute(this, r);
  }

  setRemote(address: string | null, port: number): void {
    if (!this.closed) this.engine.setRemote(this, address, port);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.engine.closeEndpoint(this);
  }
}

/** An IPv6 address as text (a v4-mapped one as ::ffff:a.b.c.d, as Node's dgram gives it). */
function ipv6Text(b: Buffer, at: number): string {
  let mapped = b[at + 10] === 0xff && b[at + 11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (b[at + i] !== 0) mapped = false;
  if (mapped) return `::ffff:${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[at + i] << 8) | b[at + i + 1]).toString(16));
  return groups.join(':');
}
