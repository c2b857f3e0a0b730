#!/usr/bin/env node
/**
 * The `msml-recorder` command. With no arguments (or `run`) it runs the recorder; `jobs` looks after deliveries:
 *   msml-recorder jobs list          jobs waiting, delayed, running or failed, one per line
 *   msml-recorder jobs retry <id>    requeue one failed job
 *   msml-recorder jobs retry-all     requeue every failed job
 * It reads the same configuration (conf/default.yaml, MSMLREC_CONFIG, MSMLREC_* variables) as the recorder.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from './config.js';
import { ConfigError } from './errors.js';
import { queueName } from './jobs/delivery-queue.js';
import { main } from './main.js';

const USAGE = 'usage: msml-recorder [run] | jobs list | jobs retry <job-id> | jobs retry-all';

export async function jobsCommand(args: string[], out: (line: string) => void): Promise<number> {
  const config = loadConfig();
  const connection = new Redis(config.delivery.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 5000 });
  connection.on('error', () => undefined);
  const queue = new Queue(queueName(config.delivery), { connection });
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
    await queue.close();
    connection.disconnect();
  }
}

async function cli(argv: string[]): Promise<void> {
  if (argv.length === 0 || argv[0] === 'run') return main();
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
