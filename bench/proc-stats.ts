/** What /proc says of a process: CPU time (whole, or of its threads by name), RSS, open file descriptors. Linux only. */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLK = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim() || 100);

/** utime + stime of a /proc stat file (a process's: all its threads; a task's: that thread), seconds. */
const statCpuSeconds = (path: string): number => {
  const f = readFileSync(path, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK;
};

export const cpuSeconds = (pid: number): number => statCpuSeconds(`/proc/${pid}/stat`);

/** CPU seconds of the process's threads named `comm` (the native UDP engine's are "udp-engine"). */
export const threadCpuSeconds = (pid: number, comm: string): number => {
  let sum = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() !== comm) continue;
      sum += statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
    } catch {
      // the thread ended
    }
  }
  return sum;
};

export const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

export const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** Where a process's resident memory is, MB (from /proc/PID/smaps). */
export interface RssParts {
  /** glibc's malloc arenas: the main one ([heap]) and each thread's (a 64 MB-aligned reservation of its own). */
  arenas: number;
  /** Other anonymous memory: V8's heaps, thread stacks, large allocations mmapped on their own. */
  anon: number;
  /** Mapped files: the node binary, libraries, the native engine. */
  files: number;
}

const ARENA = 64 * 2 ** 20;

export function rssParts(pid: number): RssParts {
  const parts: RssParts = { arenas: 0, anon: 0, files: 0 };
  let kind: keyof RssParts = 'anon';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    // a mapping's header: start-end perms offset dev inode [path]
    const m = /^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (m) {
      const start = Number.parseInt(m[1], 16);
      const path = m[2];
      // a thread arena starts 64 MB-aligned (its header first) and is anonymous; [heap] is the main arena
      kind = path === '[heap]' || (path === '' && start % ARENA === 0) ? 'arenas' : path === '' || path.startsWith('[') ? 'anon' : 'files';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) parts[kind] += Number(rss[1]) / 1024;
  }
  return parts;
}
