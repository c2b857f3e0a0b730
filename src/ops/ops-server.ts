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

/**
 * The operations HTTP endpoint: GET /metrics (Prometheus), /livez (the event loop answers), /readyz (200 or 503
 * with the reasons), /status (JSON), POST /drain, POST /media-workers/<n>/restart. Anything else is 404.
 */
export class OpsServer {
  private server: Server;
  private closed = false;

  constructor(
    private readonly h: OpsHandlers,
    private readonly log: Logger,
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

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}
