import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** What a recorder publishes about itself for the resource-manager shim. */
export interface RecorderEntry {
  id: string;
  /** Where to send its INVITEs, e.g. sip:10.1.2.3:5060. */
  sipUri: string;
  maxCalls: number;
  activeCalls: number;
  draining: boolean;
  /** ms since epoch of this beat (informational; liveness is the key's expiry, so clocks need not agree). */
  at: number;
}

const MEMBERS = 'msmlrec:recorders';
const entryKey = (id: string): string => `msmlrec:recorder:${id}`;
const confKey = (confId: string): string => `msmlrec:conf:${confId}`;

/** `tcp/1.2.3.4:5060,udp/1.2.3.4:5060` (drachtio's connect report) → `sip:1.2.3.4:5060`, udp preferred. */
export function sipUriFromHostports(hostports: string): string | null {
  const list = hostports.split(',').map((h) => h.trim()).filter(Boolean);
  const pick = list.find((h) => h.startsWith('udp/')) ?? list[0];
  if (!pick) return null;
  const [proto, hostport] = pick.includes('/') ? pick.split('/', 2) : ['udp', pick];
  return proto === 'tcp' ? `sip:${hostport};transport=tcp` : `sip:${hostport}`;
}

/**
 * Keeps this recorder's entry fresh in Redis: one key per recorder that expires after three missed beats (a
 * recorder that died or lost Redis drops out by itself), plus a set of ids to find them. `close()` removes the entry
 * at once so the shim stops sending calls before the process exits.
 */
export class RecorderHeartbeat {
  private readonly redis: Redis;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    redisUrl: string,
    private readonly heartbeatMs: number,
    /** The entry to publish, or null while it is not known yet (no SIP address before drachtio connected). */
    private readonly entry: () => RecorderEntry | null,
    private readonly log: Logger,
  ) {
    this.redis = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    this.redis.on('error', () => undefined);
    this.redis.on('ready', () => void this.beat());
  }

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.timer.unref();
    void this.beat();
  }

  /** Publishes now (also called on state changes such as draining). Never throws. */
  async beat(): Promise<void> {
    const e = this.entry();
    if (!e || this.closed || this.redis.status !== 'ready') return;
    try {
      await this.redis.multi().sadd(MEMBERS, e.id).set(entryKey(e.id), JSON.stringify(e), 'PX', this.heartbeatMs * 3).exec();
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const e = this.entry();
    if (e && this.redis.status === 'ready') {
      await this.redis.multi().del(entryKey(e.id)).srem(MEMBERS, e.id).exec().catch(() => undefined);
    }
    this.redis.disconnect();
  }
}

/** The shim's view of the registry: live recorders, and which recorder holds a conf-id. */
export class RecorderDirectory {
  constructor(private readonly redis: Redis) {}

  /** Recorders whose entry has not expired. Forgets ids whose entry expired. */
  async list(): Promise<RecorderEntry[]> {
    const ids = (await this.redis.smembers(MEMBERS)).sort();
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map(entryKey));
    const out: RecorderEntry[] = [];
    const gone: string[] = [];
    values.forEach((v, i) => {
      if (v === null) gone.push(ids[i]);
      else {
        try {
          out.push(JSON.parse(v) as RecorderEntry);
        } catch {
          gone.push(ids[i]);
        }
      }
    });
    if (gone.length) await this.redis.srem(MEMBERS, ...gone);
    return out;
  }

  /** The recorder a conf-id was given to, if any. */
  pinned(confId: string): Promise<string | null> {
    return this.redis.get(confKey(confId));
  }

  /**
   * Gives a conf-id to a recorder unless another shim already gave it to one (then that one is returned).
   * `replace` overwrites a pin whose recorder is gone.
   */
  async pin(confId: string, recorderId: string, ttlSec: number, replace = false): Promise<string> {
    if (replace) {
      await this.redis.set(confKey(confId), recorderId, 'EX', ttlSec);
      return recorderId;
    }
    const ok = await this.redis.set(confKey(confId), recorderId, 'EX', ttlSec, 'NX');
    if (ok === 'OK') return recorderId;
    return (await this.redis.get(confKey(confId))) ?? recorderId;
  }
}
