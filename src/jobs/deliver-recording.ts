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
import type { S3Store } from './s3-store.js';
import type { WebDavClient } from './webdav-client.js';

/**
 * What a delivery has done so far; kept in the job so a retry or a restart does not repeat finished steps: each
 * file once stored (`mp3Uri`, `wavUri`), then both (`stored`), then the metadata POST.
 */
export interface DeliveryProgress {
  mp3Uri?: string;
  wavUri?: string;
  stored?: StoredFiles;
  posted?: boolean;
}

/** Where SpeechMiner's WAV goes when not beside the MP3: a WebDAV collection of its own, or an S3 bucket. */
export type SpeechMinerStore = { kind: 'webdav'; client: WebDavClient; root: string } | { kind: 's3'; store: S3Store };

/** Where one recording goes: its profile's destinations and the clients that reach them. */
export interface RecordingTargets {
  destination: Destination;
  /** The WebDAV client with the MP3 store's credentials. */
  webdav: WebDavClient;
  /** null: the WAV goes beside the MP3. */
  speechMiner: SpeechMinerStore | null;
}

export interface DeliverDeps {
  config: DeliveryConfig;
  /** Where this recording goes (its profile's destinations) and the clients with their credentials. */
  destinationOf: (sidecar: Sidecar) => RecordingTargets;
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
  const { destination: dest, webdav, speechMiner } = deps.destinationOf(sidecar);
  const spool = dirname(sidecarPath);
  const mp3Path = join(spool, sidecar.files.mp3.name);
  const wavPath = sidecar.files.wav ? join(spool, sidecar.files.wav.name) : null;
  const day = sidecar.startTime.slice(0, 10);
  const root = (destCollection(sidecar.msml.dest, dest.allowedDestHosts) ?? dest.webdavUrl).replace(/\/+$/, '');
  const urlIn = (collection: string, name: string): string => `${collection}/${day}/${encodeURIComponent(name)}`;
  // CMS EnvelopedData is application/pkcs7-mime (RFC 8551 §3.2.2)
  const cms = 'application/pkcs7-mime; smime-type=enveloped-data';

  /** PUTs a file into a WebDAV collection, making the collections on the way (and once more if one vanished). */
  const davPut = async (client: WebDavClient, url: string, file: string, type: string): Promise<void> => {
    await client.ensureParents(url);
    try {
      await client.put(url, file, type);
    } catch (err) {
      if (!(err instanceof DeliveryError) || (err.status !== 409 && err.status !== 404)) throw err;
      await client.ensureParents(url);
      await client.put(url, file, type);
    }
  };
  /** Runs one store step, telling the destination's health how it went. */
  const step = async <T>(kind: 'webdav' | 's3', where: string, run: () => Promise<T>): Promise<T> => {
    try {
      const r = await run();
      deps.health?.ok(kind, where);
      return r;
    } catch (err) {
      deps.health?.failed(kind, where, (err as Error).message);
      throw err;
    }
  };

  if (!progress.stored) {
    const t0 = performance.now();
    if (!progress.mp3Uri) {
      const uri = urlIn(root, sidecar.files.mp3.name);
      await step('webdav', root, () => davPut(webdav, uri, mp3Path, sidecar.files.mp3.encrypted ? cms : 'audio/mpeg'));
      progress = { ...progress, mp3Uri: uri };
      await save(progress);
    }
    const wav = sidecar.files.wav;
    if (wav && wavPath && !progress.wavUri) {
      const type = wav.encrypted ? cms : 'audio/wav';
      let uri: string;
      if (speechMiner?.kind === 's3') {
        const t = speechMiner.store.target;
        uri = await step('s3', `s3://${t.bucket}/${t.prefix}`, () => speechMiner.store.put(`${day}/${wav.name}`, wavPath, type));
      } else {
        const collection = speechMiner?.kind === 'webdav' ? speechMiner.root : root;
        const client = speechMiner?.kind === 'webdav' ? speechMiner.client : webdav;
        uri = urlIn(collection, wav.name);
        await step('webdav', collection, () => davPut(client, uri, wavPath, type));
      }
      progress = { ...progress, wavUri: uri };
      await save(progress);
    }
    const stored: StoredFiles = { mp3Uri: progress.mp3Uri as string, wavUri: progress.wavUri ?? null };
    deps.observe?.('put', (performance.now() - t0) / 1000);
    progress = { ...progress, stored };
    await save(progress);
    deps.log.info({ mediaId: sidecar.mediaId, uri: stored.mp3Uri, wavUri: stored.wavUri }, 'recording stored');
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
