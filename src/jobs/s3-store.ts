import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { DeliveryError } from '../errors.js';

/** An S3 bucket (or an S3-compatible store) to put files in. */
export interface S3Target {
  bucket: string;
  /** Key prefix, '' or ending in '/'. */
  prefix: string;
  region: string;
  /** '' = AWS. */
  endpoint: string;
  forcePathStyle: boolean;
  /** '' = the AWS SDK's default credential chain. */
  accessKeyId: string;
  secretAccessKey: string;
}

/** The bucket and key prefix of `S3:<bucket>[/<prefix>]` (null: not an S3 destination). */
export function parseS3Url(u: string): { bucket: string; prefix: string } | null {
  const m = /^S3:([^/]+)(?:\/(.*))?$/i.exec(u);
  if (!m) return null;
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { bucket: m[1], prefix: prefix ? `${prefix}/` : '' };
}

/**
 * PUTs files into one bucket with the AWS SDK for JavaScript v3. The SDK does not retry (one attempt per call):
 * the delivery job's backoff does, with the same rules as for WebDAV. Errors become DeliveryError with the HTTP
 * status (null for a network error), so 5xx / 429 / network retry and 4xx (bad credentials, no such bucket) fail
 * the job for `jobs list`.
 */
export class S3Store {
  private client: Promise<{ s3: S3Client; sdk: typeof import('@aws-sdk/client-s3') }> | null = null;

  constructor(
    readonly target: S3Target,
    private readonly timeoutMs: number,
  ) {}

  /** The SDK is loaded with the first S3 upload (a recorder without an S3 destination never loads it). */
  private connect(): Promise<{ s3: S3Client; sdk: typeof import('@aws-sdk/client-s3') }> {
    this.client ??= import('@aws-sdk/client-s3').then((sdk) => ({ sdk, s3: this.makeClient(sdk) }));
    return this.client;
  }

  private makeClient(sdk: typeof import('@aws-sdk/client-s3')): S3Client {
    const { target, timeoutMs } = this;
    return new sdk.S3Client({
      region: target.region,
      ...(target.endpoint ? { endpoint: target.endpoint } : {}),
      forcePathStyle: target.forcePathStyle,
      ...(target.accessKeyId ? { credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey } } : {}),
      maxAttempts: 1,
      // checksums only where S3 requires them: S3-compatible stores (and older S3 APIs) refuse aws-chunked uploads
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { requestTimeout: timeoutMs, connectionTimeout: timeoutMs },
    });
  }

  /** The URI a stored key is named by in the metadata. */
  uriOf(key: string): string {
    return `s3://${this.target.bucket}/${key}`;
  }

  /** Stores `file` under `<prefix><key>`; returns its s3:// URI. */
  async put(key: string, file: string, contentType: string): Promise<string> {
    const Key = `${this.target.prefix}${key}`;
    const uri = this.uriOf(Key);
    try {
      const size = (await stat(file)).size;
      const { s3, sdk } = await this.connect();
      await s3.send(new sdk.PutObjectCommand({ Bucket: this.target.bucket, Key, Body: createReadStream(file), ContentLength: size, ContentType: contentType }));
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number }; Code?: string };
      const status = e.$metadata?.httpStatusCode ?? null;
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && status === null) throw new DeliveryError(`PUT ${uri}: ${e.message}`, 'spool', 0, err);
      throw new DeliveryError(`PUT ${uri}: ${status ?? 'network'} ${e.name}${e.message && e.message !== e.name ? `: ${e.message}` : ''}`.slice(0, 300), 'put', status, err);
    }
    return uri;
  }

  close(): void {
    void this.client?.then((c) => c.s3.destroy(), () => undefined);
  }
}
