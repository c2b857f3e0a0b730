import { stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { encryptFile, isEnveloped, type Encryption } from './cms-envelope.js';
import type { Sidecar, SpooledFile } from './metadata.js';
import { fileExists } from './spool-file.js';

/** The name a spool file has once encrypted: the same with `extension: mp3`, `<mediaId>.p7m` / `<mediaId>.wav.p7m` with `p7m`. */
export function encryptedName(name: string, extension: Encryption['extension']): string {
  if (extension === 'mp3') return name;
  return name.endsWith('.mp3') ? `${name.slice(0, -4)}.p7m` : `${name}.p7m`;
}

/**
 * Encrypts a finalized recording's files (MP3, WAV copy) in the spool and returns their new entries for the
 * sidecar. Safe to run again after a crash at any point: a file that already is an envelope, or whose encrypted
 * copy was already renamed into place, is kept (its leftover plaintext removed), anything else is encrypted. The
 * sidecar is written after this, so delivery never sees a plaintext file of an encrypting recorder.
 */
export async function encryptRecordingFiles(spoolDir: string, files: Sidecar['files'], enc: Encryption): Promise<Sidecar['files']> {
  const one = async <F extends SpooledFile>(f: F): Promise<F> => {
    const plain = join(spoolDir, f.name);
    const name = encryptedName(f.name, enc.extension);
    const target = join(spoolDir, name);
    if (name !== f.name && (await fileExists(target)) && !(await fileExists(`${target}.part`))) {
      await unlink(plain).catch(() => undefined); // the rename happened; only the clean-up was missed
    } else if (name === f.name && (await isEnveloped(plain))) {
      // replaced in place before a crash
    } else {
      await encryptFile(plain, target, enc);
      if (name !== f.name) await unlink(plain);
    }
    const encrypted = { format: 'cms-enveloped-data' as const, cipher: enc.cipher, keyTransport: enc.keyTransport, certificates: enc.recipients.map((r) => r.fingerprint) };
    return { ...f, name, size: (await stat(target)).size, encrypted };
  };
  return { mp3: await one(files.mp3), ...(files.wav ? { wav: await one(files.wav) } : {}) };
}
