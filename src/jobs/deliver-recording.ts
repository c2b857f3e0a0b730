import { readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { DeliveryConfig } from '../config.js';
import type { Destination } from '../profiles.js';
import { DeliveryError } from '../errors.js';
import type { Sidecar } from '../recording/metadata.js';
import { httpRequest } from './http-request.js';
import { buildRecordingResource, type StoredFiles } from './recording-resource.js';
import type { DestinationHealth } from './destination-health.js';
import type { WebDavClient } from './webdav-client.js';

/** What a delivery has done so far; kept in the job so a retry or a restart does not repeat finished steps. */
export interface DeliveryProgress {
  stored?: StoredFiles;
  posted?: boolean;
}

export interface DeliverDeps {
  config: DeliveryConfig;
  /** Where this recording goes (its profile's destinations) and the WebDAV client with its credentials. */
  destinationOf: (sidecar: Sidecar) => { destination: Destination; webdav: WebDavClient };
  log: Logger;
  /** Told how each destination's attempt went. */
  health?: DestinationHealth;
  /** Told how long each finished step took (metrics). */
  observe?: (stage: 'put' | 'metadata', seconds: number) => void;
}

/** The collection an MSML `dest` names, if its host is allowed (null: no dest). Throws on a host not allowed. */
export function destCollection(dest: string | null, allowedHosts: string[]): string | null {
  if (!dest) return null;
  let url: URL;
  try {
    url = new URL(dest);
  } catch {
    throw new DeliveryError(`record dest "${dest}" is not a URL`, 'put', 400);
  }
  if (!/^https?:$/.test(url.protocol)) throw new DeliveryError(`record dest "${dest}" is not http(s)`, 'put', 400);
  if (!allowedHosts.includes(url.hostname) && !allowedHosts.includes(url.host)) {
    throw new DeliveryError(`record dest host ${url.host} is not in delivery.allowedDestHosts`, 'put', 403);
  }
  return dest.replace(/\/+$/, '');
}

async function removeIfThere(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/**
 * Delivers one spooled recording: MKCOL + PUT the MP3 (and the WAV copy), then — only after they are stored — POST
 * the metadata, then delete the spool files (the sidecar last). Each finished step is saved through `save`.
 */
export async function deliverRecording(sidecarPath: string, progress: DeliveryProgress, save: (p: DeliveryProgress) => Promise<void>, deps: DeliverDeps): Promise<DeliveryProgress> {
  const { config } = deps;
  let sidecar: Sidecar;
  try {
    sidecar = JSON.parse(await readFile(sidecarPath, 'utf8')) as Sidecar;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && progress.posted) return progress; // done before a restart
    throw new DeliveryError(`sidecar ${sidecarPath}: ${(err as Error).message}`, 'spool', 0, err);
  }
  const { destination: dest, webdav } = deps.destinationOf(sidecar);
  const spool = dirname(sidecarPath);
  const mp3Path = join(spool, sidecar.files.mp3.name);
  const wavPath = sidecar.files.wav ? join(spool, sidecar.files.wav.name) : null;
  const day = sidecar.startTime.slice(0, 10);
  const root = (destCollection(sidecar.msml.dest, dest.allowedDestHosts) ?? dest.webdavUrl).replace(/\/+$/, '');
  const urlOf = (name: string): string => `${root}/${day}/${encodeURIComponent(name)}`;

  if (!progress.stored) {
    const stored: StoredFiles = { mp3Uri: urlOf(sidecar.files.mp3.name), wavUri: sidecar.files.wav ? urlOf(sidecar.files.wav.name) : null };
    const put = async (url: string, file: string, type: string): Promise<void> => {
      await webdav.ensureParents(url);
      try {
        await webdav.put(url, file, type);
      } catch (err) {
        // the collection vanished since we made it: make it again, once
        if (!(err instanceof DeliveryError) || (err.status !== 409 && err.status !== 404)) throw err;
        await webdav.ensureParents(url);
        await webdav.put(url, file, type);
      }
    };
    const t0 = performance.now();
    try {
      // CMS EnvelopedData is application/pkcs7-mime (RFC 8551 §3.2.2)
      const cms = 'application/pkcs7-mime; smime-type=enveloped-data';
      await put(stored.mp3Uri, mp3Path, sidecar.files.mp3.encrypted ? cms : 'audio/mpeg');
      if (stored.wavUri && wavPath) await put(stored.wavUri, wavPath, sidecar.files.wav?.encrypted ? cms : 'audio/wav');
    } catch (err) {
      deps.health?.failed('webdav', root, (err as Error).message);
      throw err;
    }
    deps.health?.ok('webdav', root);
    deps.observe?.('put', (performance.now() - t0) / 1000);
    progress = { ...progress, stored };
    await save(progress);
    deps.log.info({ mediaId: sidecar.mediaId, uri: stored.mp3Uri }, 'recording stored');
  }

  if (!progress.posted && dest.metadataUrl) {
    const body = Buffer.from(JSON.stringify(buildRecordingResource(sidecar, progress.stored as StoredFiles)));
    const t0 = performance.now();
    let r;
    const failed = (e: DeliveryError): DeliveryError => {
      deps.health?.failed('metadata', dest.metadataUrl, e.message);
      return e;
    };
    try {
      r = await httpRequest({
        method: 'POST',
        url: dest.metadataUrl,
        headers: { 'Content-Type': 'application/json' },
        body,
        user: dest.metadataUser,
        password: dest.metadataPassword,
        timeoutMs: config.timeoutMs,
      });
    } catch (err) {
      throw failed(new DeliveryError(`POST ${dest.metadataUrl}: ${(err as Error).message}`, 'metadata', null, err));
    }
    if (r.status < 200 || r.status >= 300) throw failed(new DeliveryError(`POST ${dest.metadataUrl}: ${r.status} ${r.body.slice(0, 200)}`, 'metadata', r.status));
    deps.health?.ok('metadata', dest.metadataUrl);
    deps.observe?.('metadata', (performance.now() - t0) / 1000);
    progress = { ...progress, posted: true };
    await save(progress);
  }

  await removeIfThere(mp3Path);
  if (wavPath) await removeIfThere(wavPath);
  await removeIfThere(sidecarPath);
  deps.log.info({ mediaId: sidecar.mediaId }, 'recording delivered');
  return progress;
}
