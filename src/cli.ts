#!/usr/bin/env node
/**
 * The `msml-recorder` command. With no arguments (or `run`) it runs the recorder; `rm-shim` runs the
 * resource-manager shim that spreads calls over recorders; `drain` asks a running recorder to drain and waits for its
 * calls to end (a Kubernetes preStop hook); `jobs` looks after deliveries:
 *   msml-recorder jobs list          jobs waiting, delayed, running or failed, one per line
 *   msml-recorder jobs retry <id>    requeue one failed job
 *   msml-recorder jobs retry-all     requeue every failed job
 * It reads the same configuration (conf/default.yaml, MSMLREC_CONFIG, MSMLREC_* variables) as the recorder.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { bounded } from './bounded.js';
import { instanceId, loadConfig } from './config.js';
import { ConfigError } from './errors.js';
import { queueName } from './jobs/delivery-queue.js';
import { main } from './main.js';
import { exitOnSignals } from './ops/lifecycle.js';
import { startShim } from './rm-shim/rm-shim.js';

async function shimMain(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    process.stderr.write(`msml-recorder: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const shim = startShim(config);
  exitOnSignals(shim, shim.log);
}

const USAGE = 'usage: msml-recorder [run] | rm-shim | drain [--timeout <s>] | jobs list | jobs retry <job-id> | jobs retry-all';

/**
 * Asks the recorder on this host (its ops port) to drain, then waits until it has no call left or `timeoutS` passed.
 * Exit 0 either way: a preStop hook must not fail the shutdown; SIGTERM then finalizes whatever is left.
 */
export async function drainCommand(args: string[], out: (line: string) => void): Promise<number> {
  const config = loadConfig();
  const i = args.indexOf('--timeout');
  const timeoutS = i >= 0 ? Number(args[i + 1]) : config.drain.callGraceSec;
  const base = `http://127.0.0.1:${config.ops.port}`;
  const token = config.ops.adminToken;
  const r = await fetch(`${base}/drain`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
  out(`drain requested: ${r.status}`);
  const until = Date.now() + timeoutS * 1000;
  for (;;) {
    const s = (await (await fetch(`${base}/status`)).json()) as { calls: number };
    if (s.calls === 0) {
      out('no live calls');
      return 0;
    }
    if (Date.now() >= until) {
      out(`${s.calls} call(s) still live after ${timeoutS} s`);
      return 0;
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
}

export async function jobsCommand(args: string[], out: (line: string) => void): Promise<number> {
  const config = loadConfig();
  const connection = new Redis(config.delivery.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 5000 });
  connection.on('error', () => undefined);
  const queue = new Queue(queueName(config.delivery, instanceId(config)), { connection });
  try {
    switch (args[0]) {
      case 'list': {
        const jobs = await queue.getJobs(['failed', 'waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);
        for (const j of jobs) {
          const state = await j.getState();
          out([state, j.id, `attempts=${j.attemptsMade}`, j.failedReason ?? ''].join('\t').trimEnd());
        }
        out(`# ${jobs.length} job(s) in ${queue.name}`);
        return 0;
      }
      case 'retry': {
        if (!args[1]) {
          out(USAGE);
          return 2;
        }
        const job = await queue.getJob(args[1]);
        if (!job) {
          out(`no job ${args[1]} in ${queue.name}`);
          return 1;
        }
        if ((await job.getState()) !== 'failed') {
          out(`job ${args[1]} is ${await job.getState()}, not failed`);
          return 1;
        }
        await job.retry('failed');
        out(`requeued ${args[1]}`);
        return 0;
      }
      case 'retry-all': {
        const failed = await queue.getJobCountByTypes('failed');
        await queue.retryJobs({ state: 'failed' });
        out(`requeued ${failed} failed job(s)`);
        return 0;
      }
      default:
        out(USAGE);
        return 2;
    }
  } finally {
    await bounded(() => queue.close(), 2000);
    connection.disconnect();
  }
}

async function cli(argv: string[]): Promise<void> {
  if (argv.length === 0 || argv[0] === 'run') return main();
  if (argv[0] === 'rm-shim') return shimMain();
  if (argv[0] === 'drain') {
    try {
      process.exit(await drainCommand(argv.slice(1), (l) => process.stdout.write(`${l}\n`)));
    } catch (err) {
      process.stderr.write(`msml-recorder drain: ${(err as Error).message}\n`);
      process.exit(0);
    }
  }
  if (argv[0] !== 'jobs') {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  try {
    process.exit(await jobsCommand(argv.slice(1), (l) => process.stdout.write(`${l}\n`)));
  } catch (err) {
    process.stderr.write(`msml-recorder: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) void cli(process.argv.slice(2));
