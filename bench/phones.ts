/**
 * The bench's handle on its phones' process (`rtp-generator.ts`): parties by SSRC, each with its own socket there.
 * Shared by the load bench and the soak.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../test/harness/recorder-harness.js';
import type { GeneratorRequest, GeneratorStats } from './rtp-generator.js';

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class Phones {
  private next = 1;
  private readonly waiting = new Map<number, (m: { port?: number; stats?: GeneratorStats }) => void>();
  private constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: { id: number; port?: number; stats?: GeneratorStats }) => {
      this.waiting.get(m.id)?.(m);
      this.waiting.delete(m.id);
    });
  }

  /** `relaySamples` false: the phones keep no relay latency samples (a long run). */
  static start(opts: { relaySamples?: boolean } = {}): Phones {
    const args = opts.relaySamples === false ? ['--no-relay-samples'] : [];
    return new Phones(fork(join(ROOT, 'bench/rtp-generator.ts'), args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }

  private ask(m: WithoutId<GeneratorRequest>): Promise<{ port?: number; stats?: GeneratorStats }> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.send({ ...m, id });
    });
  }

  /** A new party sending `freq`; its local RTP port. */
  async add(ssrc: number, freq: number): Promise<number> {
    return (await this.ask({ op: 'add', ssrc, freq })).port as number;
  }

  async start(ssrc: number, remotePort: number): Promise<void> {
    await this.ask({ op: 'start', ssrc, remotePort });
  }

  /** The party stops sending (on hold), or sends again. */
  async hold(ssrc: number, on: boolean): Promise<void> {
    await this.ask({ op: on ? 'hold' : 'unhold', ssrc });
  }

  /** The party hangs up: it stops sending and closes its socket. */
  async end(ssrc: number): Promise<void> {
    await this.ask({ op: 'end', ssrc });
  }

  async stop(): Promise<GeneratorStats> {
    return (await this.ask({ op: 'stop' })).stats as GeneratorStats;
  }

  async close(): Promise<void> {
    await this.ask({ op: 'close' });
  }
}
