/**
 * Starts the pieces of an end-to-end test on loopback: the drachtio simulator, the recorder as its own process
 * (exactly as `npm start` runs it, but from source through tsx), and SIPp.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DrachtioSim, freeDualPort } from '../sim/drachtio-sim.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `msmlrec-${prefix}-`));
}

export interface AppProcess {
  proc: ChildProcess;
  logs: string[];
  spoolDir: string;
  /** The ops HTTP server (metrics, health, drain) on 127.0.0.1. */
  opsPort: number;
  /** GET/POST on the ops server. */
  ops(path: string, method?: string): Promise<{ status: number; body: string }>;
  /** Resolves with the first log line whose msg matches. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

let portBase = 20000 + Math.floor(Math.random() * 200) * 100 + (process.pid % 10) * 10000 * 0;

/** A block of even RTP ports for one app instance, distinct per call within this process. */
export function rtpRange(size = 40): { min: number; max: number } {
  portBase += size + 2;
  if (portBase > 60000) portBase = 20000;
  const min = portBase - (portBase % 2);
  return { min, max: min + size };
}

/** Starts the recorder (or, with `args` such as ['rm-shim'], another mode of the msml-recorder command). */
export async function startApp(sim: DrachtioSim, env: Record<string, string> = {}, args: string[] = [], nodeArgs?: string[]): Promise<AppProcess> {
  const spoolDir = env.MSMLREC_SPOOL_DIR ?? tempDir('spool');
  const range = rtpRange();
  const entry = args.length ? [join(ROOT, 'src/cli.ts'), ...args] : [join(ROOT, 'src/main.ts')];
  // nodeArgs: run something else than the sources through tsx (e.g. the compiled build)
  const proc = spawn(process.execPath, nodeArgs ?? ['--import', 'tsx', ...entry], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      MSMLREC_DRACHTIO_HOST: '127.0.0.1',
      MSMLREC_DRACHTIO_PORT: String(sim.controlPort),
      MSMLREC_DRACHTIO_SECRET: 'cymru',
      MSMLREC_SPOOL_DIR: spoolDir,
      MSMLREC_RTP_BIND_ADDRESS: '127.0.0.1',
      MSMLREC_RTP_ADVERTISED_ADDRESS: '127.0.0.1',
      MSMLREC_RTP_PORT_MIN: String(range.min),
      MSMLREC_RTP_PORT_MAX: String(range.max),
      MSMLREC_ENCODER_WORKERS: '1',
      MSMLREC_LOG_LEVEL: 'debug',
      MSMLREC_DELIVERY_ENABLED: 'false',
      MSMLREC_OPS_BIND_ADDRESS: '127.0.0.1',
      MSMLREC_OPS_PORT: '0',
      // a test that stops the app mid-call or with undelivered recordings must not wait for production grace times
      MSMLREC_DRAIN_CALL_GRACE_SEC: '20',
      MSMLREC_DRAIN_DELIVERY_GRACE_SEC: '2',
      // admission by load is off in tests (a busy CI machine must not turn a functional test's call away); the fault
      // matrix turns it on where it is the point
      MSMLREC_ADMISSION_MAX_LOOP_DELAY_MS: '0',
      MSMLREC_ADMISSION_MAX_ENCODE_LAG_MS: '0',
      MSMLREC_ADMISSION_MAX_THROTTLED_PCT: '0',
      MSMLREC_ADMISSION_MAX_CPU_WAIT_PCT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const waiters: { re: RegExp; resolve: (o: Record<string, unknown>) => void }[] = [];
  let partial = '';
  const onLine = (line: string): void => {
    logs.push(line);
    let obj: Record<string, unknown> = {};
    try {
      obj = JSON.parse(line);
    } catch {
      obj = { msg: line };
    }
    for (const w of [...waiters]) {
      if (w.re.test(String(obj.msg))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(obj);
      }
    }
  };
  proc.stdout?.on('data', (d: Buffer) => {
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    lines.forEach(onLine);
  });
  proc.stderr?.on('data', (d: Buffer) => logs.push(`stderr: ${d.toString()}`));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const app: AppProcess = {
    proc,
    logs,
    spoolDir,
    opsPort: 0,
    async ops(path, method = 'GET') {
      const r = await fetch(`http://127.0.0.1:${app.opsPort}${path}`, { method });
      return { status: r.status, body: await r.text() };
    },
    waitForLog(re, timeoutMs = 20_000) {
      for (const line of logs) {
        try {
          const o = JSON.parse(line);
          if (re.test(String(o.msg))) return Promise.resolve(o);
        } catch {
          /* not JSON */
        }
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for log ${re}; last logs:\n${logs.slice(-15).join('\n')}`)), timeoutMs);
        waiters.push({
          re,
          resolve: (o) => {
            clearTimeout(t);
            resolve(o);
          },
        });
      });
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
  app.opsPort = Number((await app.waitForLog(/ops server listening/)).port);
  await app.waitForLog(/connected to drachtio-server/);
  // the app registers its routes right after connecting
  const t0 = Date.now();
  while (!sim.frames.some((f) => f.dir === 'in' && f.text.includes('|route|invite')) && Date.now() - t0 < 5000) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return app;
}

export async function startSim(): Promise<DrachtioSim> {
  return new DrachtioSim({ secret: 'cymru', trace: process.env.SIM_TRACE === '1' }).start();
}

export interface SippResult {
  code: number | null;
  stdout: string;
  stderr: string;
  errors: string;
}

/** Runs a SIPp scenario once against the simulator's SIP port. `{{name}}` placeholders are filled from `vars`. */
export async function runSipp(sim: DrachtioSim, scenario: string, vars: Record<string, string | number>, opts: { timeoutS?: number; transport?: 'u1' | 't1' } = {}): Promise<SippResult> {
  const dir = tempDir('sipp');
  const template = readFileSync(join(ROOT, 'test/sipp', scenario), 'utf8');
  const rendered = template.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in vars)) throw new Error(`scenario ${scenario} needs {{${k}}}`);
    return String(vars[k]);
  });
  const scenarioPath = join(dir, scenario);
  writeFileSync(scenarioPath, rendered);
  // SIPp binds its SIP port and four media ports (mp..mp+3) that freeDualPort only saw free a moment before: when
  // another process took one in between, SIPp exits before sending anything ("Unable to bind"), and it runs again
  // on fresh ports (the scenario itself never ran)
  for (let attempt = 1; ; attempt++) {
    const r = await spawnSipp(sim, scenarioPath, dir, opts);
    if (r.code === 254 && /Unable to bind/.test(r.stderr) && attempt < 4) continue;
    return r;
  }
}

async function spawnSipp(sim: DrachtioSim, scenarioPath: string, dir: string, opts: { timeoutS?: number; transport?: 'u1' | 't1' }): Promise<SippResult> {
  const sipPort = await freeDualPort();
  let mediaPort = await freeDualPort();
  if (mediaPort % 2) mediaPort += 1;
  const args = [
    `127.0.0.1:${sim.sipPort}`,
    '-sf', scenarioPath,
    '-m', '1',
    '-i', '127.0.0.1',
    '-p', String(sipPort),
    '-mi', '127.0.0.1',
    '-mp', String(mediaPort),
    '-t', opts.transport ?? 'u1',
    '-timeout', `${opts.timeoutS ?? 60}s`,
    '-timeout_error',
    '-nostdin',
    '-trace_err',
    ...(process.env.SIPP_TRACE ? ['-trace_msg', '-trace_screen'] : []),
    '-error_file', join(dir, 'errors.log'),
  ];
  const proc = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  let errors = '';
  try {
    errors = readFileSync(join(dir, 'errors.log'), 'utf8');
  } catch {
    /* no errors file: no errors */
  }
  return { code, stdout: stdout.slice(-4000), stderr: stderr.slice(-4000), errors: errors.slice(-4000) };
}
