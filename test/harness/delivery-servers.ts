/**
 * The real servers delivery talks to, started on free loopback ports for one test file: redis-server (Debian),
 * Apache httpd with mod_dav (Debian apache2, the WebDAV server GIR was tested with) behind Basic auth, moto_server
 * (an S3 API server), a fault proxy in front of each that can answer 503 or 403 for a while, and a small metadata
 * receiver standing in for the Recording Processor. Test equipment only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { freeDualPort } from '../sim/drachtio-sim.js';
import { tempDir } from './recorder-harness.js';

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not come up`);
}

const tcpOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 500 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
  });

/** Every file under `dir` (what a WebDAV server stored), recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : out.push(join(d, e.name));
  };
  walk(dir);
  return out;
}

export interface RedisServer {
  port: number;
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A redis-server with no persistence (a restart loses its jobs: the spool must make up for it), or with `aof` an
 * append-only file fsynced at every write (a restart after kill -9 brings the jobs back).
 */
export async function redisServer(opts: { aof?: boolean } = {}): Promise<RedisServer> {
  const port = await freeDualPort();
  const dir = tempDir('redis');
  let proc: ChildProcess | null = null;
  const ping = async (): Promise<boolean> =>
    new Promise((resolve) => {
      const s = new net.Socket();
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1', () => {
        s.write('PING\r\n');
        s.once('data', (d: Buffer) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
      });
    });
  const r: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      const persistence = opts.aof ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
      proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir], { stdio: 'ignore' });
      await waitFor(ping, 'redis-server');
    },
    async stop() {
      if (!proc || proc.exitCode !== null) return;
      const p = proc;
      const exited = new Promise((res) => p.once('exit', res));
      p.kill('SIGKILL');
      await exited;
    },
  };
  await r.start();
  return r;
}

export interface DavServer {
  /** Where Apache serves (behind the fault proxy: use `url`). */
  apachePort: number;
  /** The WebDAV collection URL to configure (through the proxy). */
  url: string;
  /** The directory the DAV tree lives in. */
  root: string;
  user: string;
  password: string;
  /** What the proxy answers instead of passing on; null = pass everything. */
  fault: { status: number } | null;
  /** Requests that reached the proxy: "METHOD path status". */
  log: string[];
  stop(): Promise<void>;
}

export async function davServer(): Promise<DavServer> {
  const dir = tempDir('dav');
  const root = join(dir, 'htdocs');
  mkdirSync(join(root, 'recordings'), { recursive: true });
  mkdirSync(join(dir, 'lock'));
  chmodSync(dir, 0o777);
  for (const d of [root, join(root, 'recordings'), join(dir, 'lock')]) chmodSync(d, 0o777);
  const user = 'gir';
  const password = 's3cret';
  writeFileSync(join(dir, 'htpasswd'), `${user}:{SHA}${createHash('sha1').update(password).digest('base64')}\n`);
  const apachePort = await freeDualPort();
  const mods = ['mpm_event', 'authz_core', 'authn_core', 'authn_file', 'auth_basic', 'authz_user', 'dav', 'dav_fs'];
  const conf = [
    'ServerName localhost',
    `Listen 127.0.0.1:${apachePort}`,
    ...mods.map((m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`),
    'User www-data',
    'Group www-data',
    `PidFile ${dir}/httpd.pid`,
    `ErrorLog ${dir}/error.log`,
    `DocumentRoot ${root}`,
    `DavLockDB ${dir}/lock/DavLock`,
    `<Directory ${root}>`,
    '  Dav On',
    '  AuthType Basic',
    '  AuthName "recordings"',
    `  AuthUserFile ${dir}/htpasswd`,
    '  Require valid-user',
    '</Directory>',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'httpd.conf'), conf);
  const apache = spawn('/usr/sbin/apache2', ['-f', join(dir, 'httpd.conf'), '-DFOREGROUND'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let apacheErr = '';
  apache.stderr?.on('data', (d: Buffer) => (apacheErr += d.toString()));
  await waitFor(() => tcpOpen(apachePort), `apache2 (${apacheErr})`);

  const proxy = await faultProxy(apachePort);
  const dav: DavServer = Object.assign(behindProxy(proxy, apache), { apachePort, url: `${proxy.url}/recordings`, root, user, password });
  return dav;
}

/** The fault switch, request log and stop of a server process behind its fault proxy. */
function behindProxy(proxy: FaultProxy, proc: ChildProcess): Pick<DavServer, 'fault' | 'log' | 'stop'> {
  return {
    get fault() {
      return proxy.fault;
    },
    set fault(f) {
      proxy.fault = f;
    },
    log: proxy.log,
    async stop() {
      proxy.close();
      const exited = new Promise((res) => proc.once('exit', res));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

interface FaultProxy {
  url: string;
  fault: { status: number } | null;
  log: string[];
  close(): void;
}

/** An HTTP proxy to a server on `upstreamPort` that answers `fault.status` instead, while a fault is set. */
async function faultProxy(upstreamPort: number): Promise<FaultProxy> {
  const port = await freeDualPort();
  const fp: FaultProxy = { url: `http://127.0.0.1:${port}`, fault: null, log: [], close: () => server.close() };
  const server = http.createServer((req, res) => {
    if (fp.fault) {
      fp.log.push(`${req.method} ${req.url} ${fp.fault.status}`);
      req.resume();
      req.on('end', () => {
        res.writeHead(fp.fault?.status ?? 503, { 'Content-Length': '0' });
        res.end();
      });
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      fp.log.push(`${req.method} ${req.url} ${ur.statusCode}`);
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return fp;
}

export interface S3Server {
  /** The endpoint to configure (through the fault proxy). */
  url: string;
  /** What the proxy answers instead of passing on (e.g. 503, S3's SlowDown); null = pass everything. */
  fault: { status: number } | null;
  /** Requests that reached the proxy: "METHOD path status". */
  log: string[];
  stop(): Promise<void>;
}

/**
 * moto_server (Python moto: a real S3 API server) on a free loopback port, behind a fault proxy. With `auth` it
 * checks credentials (INITIAL_NO_AUTH_ACTION_COUNT=0: every request is authenticated against its IAM, which knows
 * no key), so any access key is refused with 403 InvalidAccessKeyId.
 */
export async function s3Server(opts: { auth?: boolean } = {}): Promise<S3Server> {
  const port = await freeDualPort();
  const env = { ...process.env, ...(opts.auth ? { INITIAL_NO_AUTH_ACTION_COUNT: '0' } : {}) };
  const moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  moto.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor(() => tcpOpen(port), `moto_server (${err.slice(-300)})`, 30_000);
  const proxy = await faultProxy(port);
  return Object.assign(behindProxy(proxy, moto), { url: proxy.url });
}

export interface MetadataReceiver {
  url: string;
  posts: { auth: string | undefined; body: Record<string, unknown> }[];
  /** A status to answer instead of storing the POST (e.g. 503), or null to take it. */
  fault: () => number | null;
  stop(): Promise<void>;
}

/** Stands in for the Recording Processor: records every POST and answers 201. */
export async function metadataReceiver(): Promise<MetadataReceiver> {
  const port = await freeDualPort();
  const posts: MetadataReceiver['posts'] = [];
  const rx = { fault: (): number | null => null };
  const server = http.createServer((req, res) => {
    const failWith = rx.fault();
    if (failWith !== null) {
      req.resume();
      req.on('end', () => {
        res.writeHead(failWith, { 'Content-Length': '0' });
        res.end();
      });
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        posts.push({ auth: req.headers.authorization, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        res.writeHead(201, { 'Content-Type': 'application/json' });
        res.end('{}');
      } catch {
        res.writeHead(400);
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${port}/api/contact-centers/example.com/recordings`,
    posts,
    get fault() {
      return rx.fault;
    },
    set fault(f) {
      rx.fault = f;
    },
    stop: () => new Promise((r) => server.close(() => r())),
  };
}
