import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isSidecar } from '../recording/spool-names.js';

/** What the spool holds and how much room is left, as of the last look. */
export interface SpoolState {
  /** Bytes of every file in the spool (recordings in progress and waiting for delivery). */
  bytes: number;
  files: number;
  /** Finalized recordings not yet delivered. */
  pending: number;
  /** Age of the oldest of them (by its sidecar's time), seconds; 0 when there is none. */
  oldestPendingSec: number;
  /** Bytes free on the spool's file system (for an unprivileged user). */
  freeBytes: number;
}

export interface SpoolLimits {
  /** Most bytes the spool may hold before new calls are refused (0: no limit). */
  maxBytes: number;
  /** Least free bytes on the spool's disk before new calls are refused (0: no limit). */
  minFreeBytes: number;
}

/** Why the spool should take no new recording, or null. Pure. */
export function spoolFull(s: SpoolState, l: SpoolLimits): string | null {
  if (l.maxBytes > 0 && s.bytes >= l.maxBytes) return `spool holds ${s.bytes} bytes (spool.maxBytes ${l.maxBytes})`;
  if (l.minFreeBytes > 0 && s.freeBytes < l.minFreeBytes) return `spool disk has ${s.freeBytes} bytes free (spool.minFreeBytes ${l.minFreeBytes})`;
  return null;
}

/** Size and time of a spool file as last seen. */
type Seen = { size: number; mtimeMs: number };

/**
 * Looks at the spool directory once: sizes, undelivered recordings and their age, free disk. With `seen` (kept from
 * look to look), a finished file (a name without `.part`/`.tmp`/`.open.json`: renamed into place complete) is stat'ed
 * once, so a spool holding thousands of undelivered recordings costs a readdir, not thousands of stats every look.
 * (An encryption with `encryption.extension: mp3` replaces a file under its name: its size is then off by the
 * envelope, under a kB, until the recording is delivered.)
 */
export async function lookAtSpool(dir: string, now = Date.now(), seen?: Map<string, Seen>): Promise<SpoolState> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let bytes = 0;
  let pending = 0;
  let oldest = now;
  const present = seen ? new Set(names) : null;
  for (const n of names) {
    let st: Seen | null | undefined = seen?.get(n);
    if (!st) {
      st = await stat(join(dir, n)).catch(() => null);
      if (st && seen && !/\.(part|tmp)$|\.open\.json$/.test(n)) seen.set(n, { size: st.size, mtimeMs: st.mtimeMs });
    }
    if (!st) continue;
    bytes += st.size;
    if (isSidecar(n)) {
      pending++;
      oldest = Math.min(oldest, st.mtimeMs);
    }
  }
  if (seen && present) for (const n of seen.keys()) if (!present.has(n)) seen.delete(n);
  const fs = await statfs(dir).catch(() => null);
  return { bytes, files: names.length, pending, oldestPendingSec: (now - oldest) / 1000, freeBytes: fs ? fs.bavail * fs.bsize : Number.MAX_SAFE_INTEGER };
}

/**
 * Keeps a recent look at the spool (every `everyMs`), for readiness, admission and metrics: a spool that is
 * filling (the stores are away for long) makes the recorder unready and refuse new conf-ids, so that calls go to a
 * recorder that can keep them; a dead store alone does not (recordings wait in the spool, which is there for that).
 */
export class SpoolWatch {
  state: SpoolState = { bytes: 0, files: 0, pending: 0, oldestPendingSec: 0, freeBytes: Number.MAX_SAFE_INTEGER };
  private timer: NodeJS.Timeout | null = null;
  private reported: string | null = null;
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly dir: string,
    private readonly limits: SpoolLimits,
    private readonly log: Logger,
    private readonly everyMs = 2000,
  ) {}

  /** Why no new call should be taken, or null. */
  get full(): string | null {
    return spoolFull(this.state, this.limits);
  }

  async refresh(): Promise<SpoolState> {
    this.state = await lookAtSpool(this.dir, Date.now(), this.seen);
    const full = this.full;
    if (full !== this.reported) {
      if (full) this.log.error({ reason: full }, 'spool full: refusing new calls until recordings are delivered');
      else if (this.reported) this.log.info('spool has room again: taking new calls');
      this.reported = full;
    }
    return this.state;
  }

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.everyMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
