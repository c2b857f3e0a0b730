import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Readiness } from './readiness.js';

export interface OpsHandlers {
  metrics: () => Promise<{ contentType: string; body: string }>;
  readiness: () => Readiness;
  /** A snapshot for people and for `msml-recorder drain` (calls, pending deliveries, draining). */
  status: () => Promise<Record<string, unknown>>;
  /** Stops taking new calls (as SIGTERM does first), without stopping: the process stays up until SIGTERM. */
  drain: () => void;
  /**
   * Ends media worker `n` as if it had crashed (its calls end, their recordings are finished from the spool and
   * delivered, a new worker takes its place): for a worker that misbehaves. False: no such worker.
   */
  restartMediaWorker?: (n: number) => boolean;
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
const isLoopback = (a: string | undefined): boolean => a !== undefined && (/^127\./.test(a) || a === '::1' || /^::ffff:127\./i.test(a));

/**
 * Whether a request may use a mutating endpoint: with `token` set, it must carry `Authorization: Bearer <token>`
 * (compared in constant time, over digests so the length leaks nothing either); without one, only loopback may.
 * Returns null when allowed, else the status and why.
 */
export function adminRefusal(token: string, authorization: string | undefined, remote: string | undefined): { status: 401 | 403; why: string } | null {
  if (token) {
    const given = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim() ?? '';
    return timingSafeEqual(digest(given), digest(token)) ? null : { status: 401, why: 'a valid bearer token (ops.adminToken) is required' };
  }
  return isLoopback(remote) ? null : { status: 403, why: 'only from loopback: set ops.adminToken to allow it from elsewhere' };
}

/**
 * The operations HTTP endpoint: GET /metrics (Prometheus), /livez (the event loop answers), /readyz (200 or 503
 * with the reasons), /status (JSON), and the mutating POST /drain, POST /media-workers/<n>/restart, which take a
 * bearer token (`adminToken`) or, without one, only loopback. Anything else is 404.
 */
export class OpsServer {
  private server: Server;
  private closed = false;

  constructor(
    private readonly h: OpsHandlers,
    private readonly log: Logger,
    private readonly adminToken = '',
  ) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const p = (this.server.address() as AddressInfo).port;
        this.log.info({ host, port: p }, 'ops server listening');
        resolve(p);
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method === 'GET' && path === '/metrics') {
        const m = await this.h.metrics();
        send(res, 200, m.body, m.contentType);
      } else if (req.method === 'GET' && path === '/livez') {
        send(res, 200, 'ok\n');
      } else if (req.method === 'GET' && path === '/readyz') {
        const r = this.h.readiness();
        send(res, r.ready ? 200 : 503, r.ready ? 'ready\n' : `not ready: ${r.reasons.join('; ')}\n`);
      } else if (req.method === 'GET' && path === '/status') {
        send(res, 200, `${JSON.stringify(await this.h.status())}\n`, 'application/json');
      } else if (req.method === 'POST' && (path === '/drain' || /^\/media-workers\/\d+\/restart$/.test(path)) && this.refuseAdmin(req, res, path)) {
        // refused (401 / 403), nothing done
      } else if (req.method === 'POST' && path === '/drain') {
        this.h.drain();
        send(res, 202, 'draining\n');
      } else if (req.method === 'POST' && /^\/media-workers\/\d+\/restart$/.test(path) && this.h.restartMediaWorker) {
        const n = Number(path.split('/')[2]);
        const done = this.h.restartMediaWorker(n);
        send(res, done ? 202 : 404, done ? `media worker ${n} restarting\n` : `no media worker ${n}\n`);
      } else {
        send(res, 404, 'not found\n');
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message, path }, 'ops request failed');
      send(res, 500, `${(err as Error).message}\n`);
    }
  }

  /** Answers a mutating request that may not run (true); false lets it through. */
  private refuseAdmin(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const refusal = adminRefusal(this.adminToken, req.headers.authorization, req.socket.remoteAddress);
    if (!refusal) return false;
    this.log.warn({ path, from: req.socket.remoteAddress, status: refusal.status }, 'ops request refused');
    if (refusal.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="msml-recorder"');
    send(res, refusal.status, `${refusal.why}\n`);
    return true;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}
