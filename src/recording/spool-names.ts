/**
 * The names of a recording's files in the spool, in one place, so the recorder, the recovery, the delivery and the
 * spool watch agree on them. A file being written is `<name>.part` (spool-file.ts) until it is complete.
 */
export const spoolNames = (mediaId: string) => ({
  mp3: `${mediaId}.mp3`,
  wav: `${mediaId}.wav`,
  /** The sidecar: written last, it makes the recording deliverable. */
  sidecar: `${mediaId}.json`,
  /** The recovery record of a recording in progress. */
  open: `${mediaId}.open.json`,
});

/** The media id a sidecar's name carries (see `spoolNames`). */
export const mediaIdOfSidecar = (name: string): string => name.slice(0, -'.json'.length);

/** A finalized recording's sidecar (not a recovery record). */
export const isSidecar = (name: string): boolean => name.endsWith('.json') && !name.endsWith('.open.json');

/** The recovery record of a recording in progress (or left open by a crash). */
export const isOpenRecord = (name: string): boolean => name.endsWith('.open.json');
