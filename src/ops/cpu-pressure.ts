import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * What the kernel says about the recorder's CPU: the container's quota (how many cores it may use), how long its
 * cgroup was throttled by that quota, and how long runnable tasks waited for a CPU (PSI). A pod on a busy node or at
 * its quota loses CPU in bursts long before its own event loop looks late; these counters see it as it happens.
 *
 * - cgroup v2 (most Kubernetes nodes): `cpu.max` (`<quota> <period>` or `max <period>`), `cpu.stat`
 *   `throttled_usec`, the cgroup's own `cpu.pressure`.
 * - cgroup v1: `cpu/cpu.cfs_quota_us` (-1: none) and `cpu.cfs_period_us`, `cpu/cpu.stat` `throttled_time` (ns).
 * - PSI: the cgroup's own `cpu.pressure` (v2) only; the machine's `/proc/pressure/cpu` is reported, not acted on.
 *
 * Every reader returns null where the file is missing or unreadable: a signal this machine lacks is not checked.
 */
export interface CgroupPaths {
  /** The cgroup v2 directory of this process (unified hierarchy). */
  v2: string;
  /** The cgroup v1 cpu controller's directory of this process. */
  v1cpu: string;
  /** The machine's PSI file. */
  psi: string;
}

export const defaultCgroupPaths = (): CgroupPaths => {
  const own = readOr('/proc/self/cgroup') ?? '';
  // "0::/kubepods/…" (v2) and "N:cpu,cpuacct:/…" (v1): the path below the mount
  const v2 = /^0::(.*)$/m.exec(own)?.[1] ?? '/';
  const v1 = /^\d+:[^:]*\bcpu\b[^:]*:(.*)$/m.exec(own)?.[1] ?? '/';
  const under = (root: string, p: string): string => (p === '/' ? root : `${root}${p}`);
  return { v2: under('/sys/fs/cgroup', v2), v1cpu: under('/sys/fs/cgroup/cpu', v1), psi: '/proc/pressure/cpu' };
};

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The CPU quota in cores (e.g. 1.5), or null for none. Pure over the files' texts. */
export function quotaCores(read: (path: string) => string | null, p: CgroupPaths): number | null {
  const max = read(`${p.v2}/cpu.max`);
  if (max !== null) {
    const [q, period] = max.trim().split(/\s+/);
    if (q !== 'max' && Number(q) > 0 && Number(period) > 0) return Number(q) / Number(period);
    return null;
  }
  const q = Number(read(`${p.v1cpu}/cpu.cfs_quota_us`)?.trim());
  const period = Number(read(`${p.v1cpu}/cpu.cfs_period_us`)?.trim());
  return q > 0 && period > 0 ? q / period : null;
}

/** Cores the process may use: the machine's, bounded by the container's quota (rounded up, at least 1). */
export function usableCores(read: (path: string) => string | null = readOr, p: CgroupPaths = defaultCgroupPaths()): number {
  const q = quotaCores(read, p);
  const cores = Math.max(1, availableParallelism());
  return q === null ? cores : Math.max(1, Math.min(cores, Math.ceil(q)));
}

/** The cgroup's throttled time so far, µs, or null where there is no counter. */
export function throttledUs(read: (path: string) => string | null, p: CgroupPaths): number | null {
  const v2 = read(`${p.v2}/cpu.stat`);
  const m2 = v2 !== null ? /^throttled_usec (\d+)$/m.exec(v2) : null;
  if (m2) return Number(m2[1]);
  const v1 = read(`${p.v1cpu}/cpu.stat`);
  const m1 = v1 !== null ? /^throttled_time (\d+)$/m.exec(v1) : null;
  return m1 ? Number(m1[1]) / 1000 : null;
}

/**
 * Time the cgroup's runnable tasks waited for a CPU so far (its own PSI `some` total, cgroup v2 `cpu.pressure`), µs;
 * null where the cgroup has none (cgroup v1). The machine's `/proc/pressure/cpu` is not taken in its place: it counts
 * every process's waiting, and on a node others keep busy it read 90 % while every recording was whole.
 */
export function cpuWaitUs(read: (path: string) => string | null, p: CgroupPaths): number | null {
  const t = read(`${p.v2}/cpu.pressure`);
  const m = t !== null ? /^some .*\btotal=(\d+)/m.exec(t) : null;
  return m ? Number(m[1]) : null;
}

/** The machine's CPU pressure (PSI `some` avg10, %), for /status only: what the whole node waits, not the recorder. */
export function machineCpuWaitAvg10(read: (path: string) => string | null = readOr, p: CgroupPaths = defaultCgroupPaths()): number | null {
  const t = read(p.psi);
  const m = t !== null ? /^some avg10=([\d.]+)/m.exec(t) : null;
  return m ? Number(m[1]) : null;
}

/** One window's CPU starvation: the share of it the cgroup was throttled, and the share tasks waited for a CPU. */
export interface CpuStarvation {
  /** Percent of the window throttled by the quota (null: no counter). */
  throttledPct: number | null;
  /** Percent of the window in which some runnable task waited for a CPU (null: no PSI). */
  cpuWaitPct: number | null;
}

/** Samples the counters once per window and turns them into shares of that window. */
export class CpuPressure {
  private last: { at: number; throttled: number | null; wait: number | null } | null = null;

  /** `paths`: where to read (default: this process's cgroup, looked up at every sample: a process can be moved). */
  constructor(
    private readonly read: (path: string) => string | null = readOr,
    private readonly paths: CgroupPaths | null = null,
  ) {}

  sample(nowMs: number): CpuStarvation {
    const paths = this.paths ?? defaultCgroupPaths();
    const throttled = throttledUs(this.read, paths);
    const wait = cpuWaitUs(this.read, paths);
    const prev = this.last;
    this.last = { at: nowMs, throttled, wait };
    if (!prev || nowMs <= prev.at) return { throttledPct: null, cpuWaitPct: null };
    const windowUs = (nowMs - prev.at) * 1000;
    const pct = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : Math.max(0, Math.min(100, ((a - b) / windowUs) * 100)));
    return { throttledPct: pct(throttled, prev.throttled), cpuWaitPct: pct(wait, prev.wait) };
  }
}
