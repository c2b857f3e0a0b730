import { open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { encryptedName } from './encrypt-recording.js';
import { finalizeFiles, type FinalizedFiles } from './finalize-files.js';
import type { Sidecar } from './metadata.js';
import { frameBytes, framesIn, infoFrame, playableSamples } from './mp3-info-tag.js';
import { encryptionFromOpen, type OpenRecord } from './recording.js';
import { fileExists } from './spool-file.js';
import { wavHeader, wavSizePatches } from './wav-header.js';
import { isOpenRecord, spoolNames } from './spool-names.js';

/** Why a recording is being finished from the spool: its sidecar's endReason and error. */
export interface RecoveryCause {
  endReason: string;
  error: string;
}

export const RESTART_CAUSE: RecoveryCause = {
  endReason: 'recorder.restart',
  error: 'the recorder stopped before this recording ended; it was finalized from the spool at restart',
};

/** A recording finished from the spool: its finished files, as for one stopped live. */
export interface RecoveredRecording extends FinalizedFiles {
  mediaId: string;
}

/**
 * Finishes the recordings a previous run left open (killed mid-call, power cut): every `<mediaId>.open.json` in the
 * spool (see `recoverRecording`). Returns the media ids recovered. Runs before the recorder takes calls.
 */
export async function recoverSpool(spoolDir: string, log: Logger): Promise<string[]> {
  const done: string[] = [];
  const names = await readdir(spoolDir);
  for (const name of names.filter(isOpenRecord)) {
    try {
      const r = await recoverRecording(spoolDir, name, log, RESTART_CAUSE);
      if (r) done.push(r.mediaId);
    } catch (err) {
      log.error({ file: name, err: (err as Error).message }, 'could not recover an open recording; left in the spool');
    }
  }
  return done;
}

/**
 * Finishes one recording whose writer is gone (the recorder or its media worker died) from its `<mediaId>.open.json`:
 * the MP3 is cut to whole frames and gets its Info frame, the WAV copy its sizes; both are fsynced and renamed;
 * files of an encrypting recording are encrypted (or their encryption finished); a sidecar marked `truncated` is
 * written. Null when there was nothing to recover (no audio, or already finalized). Throws on I/O errors.
 */
export async function recoverRecording(spoolDir: string, openName: string, log: Logger, cause: RecoveryCause): Promise<RecoveredRecording | null> {
  const openPath = join(spoolDir, openName);
  const rec = JSON.parse(await readFile(openPath, 'utf8')) as OpenRecord;
  const n = spoolNames(rec.mediaId);
  const mp3 = join(spoolDir, n.mp3);
  const sidecarPath = join(spoolDir, n.sidecar);
  const encryptedMp3 = rec.encryption ? join(spoolDir, encryptedName(n.mp3, rec.encryption.extension)) : null;
  if (await fileExists(sidecarPath)) {
    await unlink(openPath); // finalized; only the clean-up was missed
    return null;
  }
  let mp3Size = 0;
  let samples = 0;
  if (await fileExists(`${mp3}.part`)) {
    const fh = await open(`${mp3}.part`, 'r+');
    try {
      const size = (await fh.stat()).size;
      const frames = framesIn(rec.format, size);
      mp3Size = (frames + 1) * frameBytes(rec.format);
      samples = playableSamples(frames);
      await fh.truncate(mp3Size);
      const tag = infoFrame(rec.format, { frames, samples, fileBytes: mp3Size });
      await fh.write(tag, 0, tag.length, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(`${mp3}.part`, mp3);
  } else if (await fileExists(mp3)) {
    mp3Size = (await stat(mp3)).size;
    samples = playableSamples(framesIn(rec.format, mp3Size));
  } else if (encryptedMp3 && (await fileExists(encryptedMp3))) {
    // encrypted to its .p7m and the plaintext removed: only the sidecar was missing (the length is approximate)
    mp3Size = (await stat(encryptedMp3)).size;
    samples = playableSamples(framesIn(rec.format, mp3Size));
  } else {
    log.warn({ mediaId: rec.mediaId }, 'open recording without audio: nothing to recover');
    await unlink(openPath);
    return null;
  }
  let files: Sidecar['files'] = { mp3: { name: n.mp3, size: mp3Size } };
  const wav = join(spoolDir, n.wav);
  if (rec.wav && (await fileExists(`${wav}.part`))) {
    const h = wavHeader(rec.wav, 2);
    const fh = await open(`${wav}.part`, 'r+');
    let size: number;
    try {
      size = (await fh.stat()).size;
      const data = Math.max(0, size - h.bytes.length);
      const whole = data - (data % 2);
      size = h.bytes.length + whole;
      await fh.truncate(size);
      for (const [at, bytes] of wavSizePatches(h, whole)) await fh.write(bytes, 0, 4, at);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(`${wav}.part`, wav);
    files.wav = { name: n.wav, size, codec: rec.wav, channels: 2 };
  } else if (rec.wav) {
    // finalized (or encrypted) before the crash: it is delivered with the rest
    const done = [wav, join(spoolDir, encryptedName(n.wav, rec.encryption?.extension ?? 'mp3'))];
    for (const p of done) {
      if (files.wav || !(await fileExists(p))) continue;
      files.wav = { name: n.wav, size: (await stat(p)).size, codec: rec.wav, channels: 2 };
    }
  }
  // encrypted for the certificates it was started with, before its sidecar makes it deliverable
  const fin = await finalizeFiles(spoolDir, rec.ctx, rec.mediaId, files, encryptionFromOpen(rec.encryption, rec.mediaId), {
    startWallMs: rec.startWallMs,
    samples,
    endReason: cause.endReason,
    truncated: true,
    error: cause.error,
    channels: rec.format.channels,
    kbps: rec.format.kbps,
    leftChannel: rec.leftChannel,
    events: [],
    legs: [],
  });
  log.warn({ mediaId: rec.mediaId, durationMs: fin.sidecar.durationMs, endReason: cause.endReason }, 'recovered a recording left open');
  return { mediaId: rec.mediaId, ...fin };
}
