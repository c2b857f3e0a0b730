/**
 * Reorders packets of one RTP stream by sequence number (wrap-safe, 16-bit sequence extended to a counter)
 * and releases them in order: at once when they are next, or once the oldest has waited `latencyMs`, at which
 * point the missing ones are declared lost. Pure: time is passed in.
 *
 * Nothing is allocated per packet: held packets sit in a ring indexed by sequence number, released ones are
 * remembered (for telling a duplicate from a late packet) in a second ring, and every call returns the same array,
 * refilled — use it before the next call.
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

/** A sequence more than this far from the expected one is a restart of the stream, not reordering. */
const RESET_DISTANCE = 3000;
/** Released sequence numbers remembered, for telling duplicates from late packets. */
const RECENT = 512;

export class JitterBuffer<T extends Sequenced> {
  readonly stats: JitterStats = { received: 0, released: 0, lost: 0, duplicates: 0, late: 0, reordered: 0, resets: 0 };
  private next: number | null = null;
  private highest = -1;
  /** Ring of held packets, slot = extended sequence mod capacity; `heldExt` says which sequence a slot holds (-1: none). */
  private readonly heldItem: (T | null)[];
  private readonly heldExt: Float64Array;
  private readonly heldAt: Float64Array;
  private count = 0;
  private readonly recent = new Float64Array(RECENT).fill(-1);
  private readonly out: T[] = [];
  private readonly capacity: number;
  /** Whether the last push kept its packet (held or released); false: refused as a duplicate or late. */
  accepted = false;

  /**
   * @param latencyMs how long a gap waits for the packets missing in it
   * @param maxHeld packets held at most; past it the oldest gap is given up at once
   */
  constructor(
    private readonly latencyMs: number,
    private readonly maxHeld = 256,
  ) {
    let cap = 1;
    while (cap < maxHeld * 2) cap *= 2;
    this.capacity = cap;
    this.heldItem = new Array<T | null>(cap).fill(null);
    this.heldExt = new Float64Array(cap).fill(-1);
    this.heldAt = new Float64Array(cap);
  }

  private extend(seq: number): number {
    if (this.next === null) return seq;
    const ref = this.highest >= 0 ? this.highest : this.next;
    const cycle = Math.floor(ref / 65536);
    let best = cycle * 65536 + seq;
    const below = best - 65536;
    const above = best + 65536;
    if (below >= 0 && Math.abs(below - ref) < Math.abs(best - ref)) best = below;
    if (Math.abs(above - ref) < Math.abs(best - ref)) best = above;
    return best;
  }

  private slot(ext: number): number {
    return ext & (this.capacity - 1);
  }

  private isHeld(ext: number): boolean {
    return this.heldExt[this.slot(ext)] === ext;
  }

  /** Adds a packet received at `nowMs`; returns the packets now releasable, in order (the same array every call). */
  push(packet: T, nowMs: number): T[] {
    this.out.length = 0;
    this.accepted = false;
    this.stats.received++;
    if (this.next === null) this.next = packet.sequence;
    let ext = this.extend(packet.sequence);
    if (Math.abs(ext - this.next) > RESET_DISTANCE) {
      // the stream restarted (new sender, reset sequence): hand over what we hold, then start again
      this.flushInto();
      this.reset();
      this.next = packet.sequence;
      ext = packet.sequence;
    }
    const next = this.next as number;
    if (ext < next) {
      if (this.recent[ext % RECENT] === ext) this.stats.duplicates++;
      else this.stats.late++;
      return this.out;
    }
    if (this.isHeld(ext)) {
      this.stats.duplicates++;
      return this.out;
    }
    // too far ahead for the ring: give up the gaps in front of it that it would overwrite
    while (ext - (this.next as number) >= this.capacity) this.skipToLowest(ext);
    if (ext < this.highest) this.stats.reordered++;
    if (ext > this.highest) this.highest = ext;
    const i = this.slot(ext);
    this.accepted = true;
    this.heldItem[i] = packet;
    this.heldExt[i] = ext;
    this.heldAt[i] = nowMs;
    this.count++;
    this.pollInto(nowMs);
    if (this.count > this.maxHeld) {
      this.skipToLowest(Number.POSITIVE_INFINITY);
      this.pollInto(Number.NEGATIVE_INFINITY);
    }
    return this.out;
  }

  /** Releases what is due at `nowMs`: in-order packets, and past gaps whose waiting time ran out. */
  poll(nowMs: number): T[] {
    this.out.length = 0;
    this.pollInto(nowMs);
    return this.out;
  }

  private pollInto(nowMs: number): void {
    for (;;) {
      if (this.next === null || this.count === 0) return;
      if (this.isHeld(this.next)) {
        this.release(this.next);
        continue;
      }
      // a gap: give up on it once the oldest held packet has waited long enough
      const lowest = this.lowestHeld();
      if (lowest >= 0 && nowMs - this.heldAt[this.slot(lowest)] >= this.latencyMs) {
        this.skipTo(lowest);
        continue;
      }
      return;
    }
  }

  /** The lowest held sequence (-1: none): the first occupied slot after `next`. */
  private lowestHeld(): number {
    if (this.next === null || this.count === 0) return -1;
    for (let ext = this.next; ext <= this.highest; ext++) if (this.isHeld(ext)) return ext;
    return -1;
  }

  /** Gives up on the gap in front of `ext`: the missing packets count as lost. */
  private skipTo(ext: number): void {
    this.stats.lost += ext - (this.next as number);
    this.next = ext;
  }

  /** Moves `next` to the lowest held packet, or (nothing held below `limit`) as far as needed to make room. */
  private skipToLowest(limit: number): void {
    const lowest = this.lowestHeld();
    if (lowest >= 0 && lowest < limit) {
      this.skipTo(lowest);
      this.pollInto(Number.NEGATIVE_INFINITY);
    } else if (limit !== Number.POSITIVE_INFINITY) {
      this.skipTo(limit - this.capacity + 1);
    } else {
      this.pollInto(Number.NEGATIVE_INFINITY);
    }
  }

  private release(ext: number): void {
    const i = this.slot(ext);
    const item = this.heldItem[i] as T;
    this.heldItem[i] = null;
    this.heldExt[i] = -1;
    this.count--;
    this.recent[ext % RECENT] = ext;
    this.next = ext + 1;
    this.stats.released++;
    this.out.push(item);
  }

  private reset(): void {
    this.next = null;
    this.highest = -1;
    this.recent.fill(-1);
    this.stats.resets++;
  }

  /**
   * A new stream begins (a new SSRC: its sequence numbers say nothing about the old one's). Returns what was held,
   * in order; the next packet starts a fresh sequence.
   */
  restart(): T[] {
    this.out.length = 0;
    this.flushInto();
    this.reset();
    return this.out;
  }

  /** Releases everything held, in order, counting the gaps as lost. */
  flush(): T[] {
    this.out.length = 0;
    this.flushInto();
    return this.out;
  }

  private flushInto(): void {
    while (this.count > 0) {
      const lowest = this.lowestHeld();
      if (lowest < 0) break;
      this.skipTo(lowest);
      this.release(lowest);
    }
  }

  /** Packets currently held. */
  get size(): number {
    return this.count;
  }
}
