import type { MediaStream } from '../media/media-stream.js';

/** A live stream counts as "without media" when nothing arrived for this long and it is not on hold. */
export const NO_MEDIA_AFTER_MS = 5000;

/** RTP counts of one stream (or a sum of streams). */
export interface StreamCounts {
  received: number;
  lost: number;
  late: number;
  duplicates: number;
  ssrcChanges: number;
  /** Packets that arrived more than the skew limit late (a stall's backlog) and were still placed by their timestamp. */
  latePlaced: number;
  malformed: number;
  /** SRTP packets that failed authentication (dropped). */
  srtpRejected: number;
  relayed: number;
  transcoded: number;
  relayDropped: number;
  /** Datagrams the native UDP engine dropped because its media thread left 256 MB unread (a media host's, not a stream's). */
  engineDropped: number;
  /** Packets the native UDP engine relayed that the kernel refused to send (a media host's). */
  relaySendErrors: number;
}

export const zeroCounts = (): StreamCounts => ({
  received: 0,
  lost: 0,
  late: 0,
  duplicates: 0,
  ssrcChanges: 0,
  latePlaced: 0,
  malformed: 0,
  srtpRejected: 0,
  relayed: 0,
  transcoded: 0,
  relayDropped: 0,
  engineDropped: 0,
  relaySendErrors: 0,
});

export function countsOf(s: MediaStream): StreamCounts {
  const st = s.stats;
  return {
    received: st.received,
    lost: st.lost,
    late: st.late,
    duplicates: st.duplicates,
    ssrcChanges: st.ssrcChanges,
    latePlaced: st.latePlaced,
    malformed: st.malformed,
    srtpRejected: st.srtpRejected,
    relayed: s.relay.relayed,
    transcoded: s.relay.transcoded,
    relayDropped: s.relay.dropped,
    engineDropped: 0,
    relaySendErrors: 0,
  };
}

export function addCounts(into: StreamCounts, c: StreamCounts): StreamCounts {
  for (const k of Object.keys(into) as (keyof StreamCounts)[]) into[k] += c[k];
  return into;
}

/**
 * What finished streams and recordings counted, so the metrics (finished + live) only ever grow. Streams hand
 * their final counts over as they close (on their media host); live ones are summed when the host reports, so the
 * packet path pays nothing. The main thread's tally counts finished recordings.
 */
export class MediaTally {
  readonly closed: StreamCounts = zeroCounts();
  /** Streams that closed without having received a single RTP packet. */
  streamsWithoutMedia = 0;
  /** Silence filled into finished recordings, samples (both channels summed). */
  silentSamples = 0;
  /** Audio dropped from finished recordings because it reached the mixer after its place was encoded, samples. */
  lateSamples = 0;

  streamClosed(s: MediaStream): void {
    const c = countsOf(s);
    addCounts(this.closed, c);
    if (c.received === 0) this.streamsWithoutMedia++;
  }
}
