import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  status: number;
  body: string;
}

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** A buffer, or a file sent with its Content-Length (never chunked: some WebDAV servers store nothing then). */
  body?: Buffer | { file: string };
  user?: string;
  password?: string;
  timeoutMs: number;
}

/**
 * One HTTP(S) request with node:http: a fixed Content-Length body, Basic auth, a timeout. Resolves with any status;
 * rejects only on network errors and timeouts. The thin shell under WebDAV and the metadata POST.
 */
export async function httpRequest(r: HttpRequest): Promise<HttpAnswer> {
  const url = new URL(r.url);
  const headers: Record<string, string | number> = { ...(r.headers ?? {}) };
  if (r.user) headers.Authorization = `Basic ${Buffer.from(`${r.user}:${r.password ?? ''}`).toString('base64')}`;
  let length = 0;
  if (Buffer.isBuffer(r.body)) length = r.body.length;
  else if (r.body) length = (await stat(r.body.file)).size;
  headers['Content-Length'] = length;
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, { method: r.method, headers, timeout: r.timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8').slice(0, 2000) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${r.timeoutMs} ms`)));
    req.on('error', reject);
    if (Buffer.isBuffer(r.body)) req.end(r.body);
    else if (r.body) {
      const f = createReadStream(r.body.file);
      f.on('error', (e) => req.destroy(e));
      f.pipe(req);
    } else req.end();
  });
}
