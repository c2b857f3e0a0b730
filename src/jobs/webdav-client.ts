import { DeliveryError } from '../errors.js';
import { httpRequest } from './http-request.js';

export interface WebDavOptions {
  user: string;
  password: string;
  timeoutMs: number;
}

/**
 * The two WebDAV verbs delivery needs (RFC 4918): MKCOL for each missing parent collection (a PUT into a missing
 * collection is 409, or 404 on some servers), and PUT with a Content-Length.
 */
export class WebDavClient {
  /** Collections known to exist, so a busy recorder does not MKCOL the same day's folder for every file. */
  private known = new Set<string>();

  constructor(private readonly opts: WebDavOptions) {}

  private async call(method: string, url: string, stage: 'mkcol' | 'put', body?: { file: string }, headers?: Record<string, string>) {
    try {
      return await httpRequest({ method, url, body, headers, user: this.opts.user, password: this.opts.password, timeoutMs: this.opts.timeoutMs });
    } catch (err) {
      throw new DeliveryError(`${method} ${url}: ${(err as Error).message}`, stage, null, err);
    }
  }

  /** Creates every collection from `root` (which must exist) down to the parent of `fileUrl`. */
  async ensureParents(root: string, fileUrl: string): Promise<void> {
    const base = root.endsWith('/') ? root : `${root}/`;
    if (!fileUrl.startsWith(base)) return;
    const parts = fileUrl.slice(base.length).split('/').slice(0, -1);
    let url = base;
    for (const p of parts) {
      url += `${p}/`;
      if (this.known.has(url)) continue;
      const r = await this.call('MKCOL', url, 'mkcol');
      // 201 created; 405 = it exists already
      if (r.status !== 201 && r.status !== 405 && !(r.status >= 200 && r.status < 300)) {
        throw new DeliveryError(`MKCOL ${url}: ${r.status}`, 'mkcol', r.status);
      }
      this.known.add(url);
    }
  }

  async put(url: string, file: string, contentType: string): Promise<void> {
    const r = await this.call('PUT', url, 'put', { file }, { 'Content-Type': contentType });
    if (r.status < 200 || r.status >= 300) {
      if (r.status === 404 || r.status === 409) this.known.clear(); // a collection went away: MKCOL again next time
      throw new DeliveryError(`PUT ${url}: ${r.status}`, 'put', r.status);
    }
  }
}
