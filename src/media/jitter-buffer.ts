/**
 * Reorders packets of one RTP stream by sequence number (wrap-safe, 16-bit sequence extended to a counter)
 * and releases them in order: at once when they are next, or once the oldest has waited `latencyMs`, at which
 * point the missing ones are declared lost. Pure: time is passed in.
 */
export interface Sequenced {
  sequence: number;
}

export interface JitterStats {
  received: number;
  released: number;
  lost: number;
  duplicates: number;
  late: number;
  reordered: number;
  resets: number;
}

interface Held<T> {
  ext: number;
  at: number;
  packet: T;
}

/** A sequence more than this far from the expected one is a restart of the stream, not reordering. */
const RESET_DISTANCE = 3000;

export class JitterBuffer<T extends Sequenced> {
  readonly stats: JitterStats = { received: 0, released: 0, lost: 0, duplicates: 0, late: 0, reordered: 0, resets: 0 };
  private next: number | null = null;
  private highest = -1;
  private held = new Map<number, Held<T>>();
  private recent = new Set<number>();
  private recentOrder: number[] = [];

  constructor(
    private readonly latencyMs: number,
    private readonly maxHeld = 256,
  ) {}

  private extend(seq: number): number {
    if (this.next === null) return seq;
    const ref = this.highest >= 0 ? this.highest : this.next;
    const cycle = Math.floor(ref / 65536);
    let best = cycle * 65536 + seq;
    for (const c of [cycle - 1, cycle + 1]) {
      const cand = c * 65536 + seq;
      if (cand >= 0 && Math.abs(cand - ref) < Math.abs(best - ref)) best = cand;
    }
    return best;
  }

  private remember(ext: number): void {
    this.recent.add(ext);
    this.recentOrder.push(ext);
    if (this.recentOrder.length > 512) this.recent.delete(this.recentOrder.shift() as number);
  }

  /** Adds a packet received at `nowMs`; returns the packets now releasable, in order. */
  push(packet: T, nowMs: number): T[] {
    this.stats.received++;
    const out: T[] = [];
    if (this.next === null) {
      this.next = packet.sequence;
    }
    let ext = this.extend(packet.sequence);
    if (Math.abs(ext - this.next) > RESET_DISTANCE) {
      // the stream restarted (new sender, reset sequence): hand over what we hold, then start again
      out.push(...this.restart());
      this.next = packet.sequence;
      ext = packet.sequence;
    }
    if (ext < this.next) {
      if (this.recent.has(ext)) this.stats.duplicates++;
      else this.stats.late++;
      return out;
    }
    if (this.held.has(ext)) {
      this.stats.duplicates++;
      return out;
    }
    if (ext < this.highest) this.stats.reordered++;
    if (ext > this.highest) this.highest = ext;
    this.held.set(ext, { ext, at: nowMs, packet });
    out.push(...this.poll(nowMs));
    if (this.held.size > this.maxHeld) out.push(...this.releaseOldest());
    return out;
  }

  /** Releases what is due at `nowMs`: in-order packets, and past gaps whose waiting time ran out. */
  poll(nowMs: number): T[] {
    const out: T[] = [];
    for (;;) {
      if (this.next === null || this.held.size === 0) return out;
      const h = this.held.get(this.next);
      if (h) {
        this.release(h, out);
        continue;
      }
      // a gap: give up on it once the oldest held packet has waited long enough
      const oldest = this.lowestHeld();
      if (oldest && nowMs - oldest.at >= this.latencyMs) {
        this.skipTo(oldest);
        continue;
      }
      return out;
    }
  }

  private lowestHeld(): Held<T> | null {
    let oldest: Held<T> | null = null;
    for (const x of this.held.values()) if (!oldest || x.ext < oldest.ext) oldest = x;
    return oldest;
  }

  /** Gives up on the gap in front of `h`: the missing packets count as lost. */
  private skipTo(h: Held<T>): void {
    this.stats.lost += h.ext - (this.next as number);
    this.next = h.ext;
  }

  private releaseOldest(): T[] {
    const oldest = this.lowestHeld();
    if (!oldest || this.next === null) return [];
    this.skipTo(oldest);
    return this.poll(Number.NEGATIVE_INFINITY);
  }

  private release(h: Held<T>, out: T[]): void {
    this.held.delete(h.ext);
    this.remember(h.ext);
    this.next = h.ext + 1;
    this.stats.released++;
    out.push(h.packet);
  }

  /**
   * A new stream begins (a new SSRC: its sequence numbers say nothing about the old one's). Returns what was held,
   * in order; the next packet starts a fresh sequence.
   */
  restart(): T[] {
    const out = this.flush();
    this.stats.resets++;
    this.next = null;
    this.highest = -1;
    this.recent.clear();
    this.recentOrder = [];
    return out;
  }

  /** Releases everything held, in order, counting the gaps as lost. */
  flush(): T[] {
    const out: T[] = [];
    const keys = [...this.held.keys()].sort((a, b) => a - b);
    for (const k of keys) {
      if (this.next !== null && k > this.next) this.stats.lost += k - this.next;
      this.release(this.held.get(k) as Held<T>, out);
    }
    return out;
  }

  /** Packets currently held. */
  get size(): number {
    return this.held.size;
  }
}
