import { open, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SpoolError } from '../errors.js';

/** Whether a path exists (a spool file, a recording's encrypted copy). */
export const fileExists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

/** fsyncs a directory so that a rename inside it survives a power cut. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * A file written as `<final>.part` and renamed to `<final>` once complete and fsynced: a reader never sees a
 * half-written file under its final name, and a crash leaves a `.part` to recover.
 */
export class SpoolFile {
  bytes = 0;
  private fh: FileHandle | null = null;
  private closed = false;

  private constructor(readonly finalPath: string) {}

  get partPath(): string {
    return `${this.finalPath}.part`;
  }

  static async create(finalPath: string): Promise<SpoolFile> {
    const f = new SpoolFile(finalPath);
    try {
      f.fh = await open(f.partPath, 'wx');
    } catch (err) {
      throw new SpoolError(`cannot create ${f.partPath}: ${(err as Error).message}`, err);
    }
    return f;
  }

  async append(data: Uint8Array): Promise<void> {
    if (!this.fh || data.length === 0) return;
    try {
      await this.fh.write(data, 0, data.length, this.bytes);
      this.bytes += data.length;
    } catch (err) {
      throw new SpoolError(`cannot write ${this.partPath}: ${(err as Error).message}`, err);
    }
  }

  /** Cuts the file to `length` bytes; later appends continue from there. */
  async truncate(length: number): Promise<void> {
    if (!this.fh || length >= this.bytes) return;
    try {
      await this.fh.truncate(length);
      this.bytes = length;
    } catch (err) {
      throw new SpoolError(`cannot truncate ${this.partPath}: ${(err as Error).message}`, err);
    }
  }

  /** Writes at an absolute offset (header patching). */
  async writeAt(data: Uint8Array, position: number): Promise<void> {
    if (!this.fh) return;
    try {
      await this.fh.write(data, 0, data.length, position);
    } catch (err) {
      throw new SpoolError(`cannot write ${this.partPath}: ${(err as Error).message}`, err);
    }
  }

  /** Closes and deletes the `.part` (a recording that could not start). Idempotent. */
  async discard(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => undefined);
    await unlink(this.partPath).catch(() => undefined);
  }

  /** fsync, close, rename `.part` to the final name, fsync the directory. Idempotent. */
  async finalize(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const fh = this.fh;
    this.fh = null;
    if (!fh) return;
    try {
      await fh.sync();
      await fh.close();
      await rename(this.partPath, this.finalPath);
      await syncDir(dirname(this.finalPath));
    } catch (err) {
      throw new SpoolError(`cannot finalize ${this.finalPath}: ${(err as Error).message}`, err);
    }
  }
}

/** Writes JSON durably: temp file, fsync, rename, fsync directory. A failed write leaves no temp file behind. */
export async function writeJsonDurably(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify(value, null, 2) + '\n', { flush: true });
    await rename(tmp, path);
    await syncDir(dirname(path));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw new SpoolError(`cannot write ${path}: ${(err as Error).message}`, err);
  }
}
