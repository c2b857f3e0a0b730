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
