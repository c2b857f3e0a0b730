import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Encryption } from './cms-envelope.js';
import { encryptRecordingFiles } from './encrypt-recording.js';
import { buildSidecar, type RecordingContext, type Sidecar } from './metadata.js';
import { syncDir, writeJsonDurably } from './spool-file.js';
import { spoolNames } from './spool-names.js';

/** A recording's finished files in the spool: its sidecar and the paths of what is to be delivered. */
export interface FinalizedFiles {
  sidecar: Sidecar;
  sidecarPath: string;
  mp3Path: string;
  wavPath: string | null;
  /** Time spent encrypting the files, ms (null: not encrypted). */
  encryptMs: number | null;
}

/** What a finished recording's sidecar says besides its context and files. */
export type SidecarFacts = Omit<Parameters<typeof buildSidecar>[1], 'files'>;

/**
 * The last steps of every recording, stopped live (`Recording.stop`) or finished from the spool after its writer died
 * (`spool-recovery.ts`), once its MP3 (and WAV) are complete and renamed: the files are encrypted for the
 * certificates it was started with (if any), the spool directory is synced, the sidecar is written durably (which
 * makes the recording deliverable), and the recovery record is removed.
 */
export async function finalizeFiles(
  spoolDir: string,
  ctx: Omit<RecordingContext, 'mediaId'>,
  mediaId: string,
  files: Sidecar['files'],
  encryption: Encryption | null,
  facts: SidecarFacts,
): Promise<FinalizedFiles> {
  const names = spoolNames(mediaId);
  const t0 = performance.now();
  const done = encryption ? await encryptRecordingFiles(spoolDir, files, encryption) : files;
  const encryptMs = encryption ? performance.now() - t0 : null;
  await syncDir(spoolDir);
  const sidecar = buildSidecar({ ...ctx, mediaId: names.mp3 }, { ...facts, files: done });
  const sidecarPath = join(spoolDir, names.sidecar);
  await writeJsonDurably(sidecarPath, sidecar);
  await unlink(join(spoolDir, names.open)).catch(() => undefined);
  const spooled = (f: { name: string } | undefined): string | null => (f ? join(spoolDir, f.name) : null);
  return { sidecar, sidecarPath, mp3Path: spooled(done.mp3) as string, wavPath: spooled(done.wav), encryptMs };
}
