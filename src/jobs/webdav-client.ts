import { DeliveryError } from '../errors.js';
import { httpRequest } from './http-request.js';

export interface WebDavOptions {
  user: string;
  password: string;
  timeoutMs: number;
  /** Collections remembered as existing, at most (1,000; the one made longest ago is forgotten first). */
  maxKnown?: number;
}

/**
 * The two WebDAV verbs delivery needs (RFC 4918): MKCOL for each missing collection on the way (a PUT into a
 * missing collection is 409, or 404 on some servers), and PUT with a Content-Length.
 */
export class WebDavClient {
  /**
   * Collections known to exist, so a busy recorder does not MKCOL the same day's folder for every file. Bounded: a
   * day's folder is one more a day, and an MSML `dest` may name a collection per call.
   */
  private known = new Set<string>();

  constructor(private readonly opts: WebDavOptions) {}

  private async call(method: string, url: string, stage: 'mkcol' | 'put', body?: { file: string }, headers?: Record<string, string>) {
    try {
      return await httpRequest({ method, url, body, headers, user: this.opts.user, password: this.opts.password, timeoutMs: this.opts.timeoutMs });
    } catch (err) {
      throw new DeliveryError(`${method} ${url}: ${(err as Error).message}`, stage, null, err);
    }
  }

  /**
   * Makes sure the collection `fileUrl` goes into exists, creating each missing level from the top down, the
   * configured root included (like nginx's `create_full_put_path`): MKCOL the parent; a 409 (RFC 4918 §9.3.1: a
   * level above is missing; 404 on some servers) makes the level above first, then tries again.
   */
  async ensureParents(fileUrl: string): Promise<void> {
    await this.ensureCollection(fileUrl.slice(0, fileUrl.lastIndexOf('/') + 1));
  }

  private async ensureCollection(url: string): Promise<void> {
    if (this.known.has(url) || new URL(url).pathname === '/') return;
    let r = await this.call('MKCOL', url, 'mkcol');
    if (r.status === 409 || r.status === 404) {
      await this.ensureCollection(new URL('..', url).href);
      r = await this.call('MKCOL', url, 'mkcol');
    }
    // 201 created; 405 = it exists already
    if (r.status !== 405 && !(r.status >= 200 && r.status < 300)) throw new DeliveryError(`MKCOL ${url}: ${r.status}`, 'mkcol', r.status);
    if (this.known.size >= (this.opts.maxKnown ?? 1000)) this.known.delete(this.known.values().next().value as string);
    this.known.add(url);
  }

  async put(url: string, file: string, contentType: string): Promise<void> {
    const r = await this.call('PUT', url, 'put', { file }, { 'Content-Type': contentType });
    if (r.status < 200 || r.status >= 300) {
      if (r.status === 404 || r.status === 409) this.known.clear(); // a collection went away: MKCOL again next time
      throw new DeliveryError(`PUT ${url}: ${r.status}`, 'put', r.status);
    }
  }
}
