/**
 * The messages between the main thread (SIP, MSML, delivery, ops) and a media host (the RTP sockets, relay, jitter
 * buffers, timelines, mixing and recordings of the calls placed on it; in a media worker thread, or in the main
 * thread with `media.workers: 0`). Commands are small and structured-clonable; audio never crosses.
 */
import type { NegotiatedMedia } from '../media/negotiated-media.js';
import type { G711Law } from '../media/g711.js';
import type { StreamCounts } from '../ops/media-tally.js';
import type { ThreadMemory } from '../ops/thread-memory.js';
import type { FinalizedRecording, OpenRecord } from '../recording/recording.js';
import type { RecordingContext } from '../recording/metadata.js';
import type { Mp3Format } from '../recording/mp3-encoder.js';
import type { EncoderEngine } from '../recording/mp3-encoder.js';

/** Who a leg carries: the far end / customer ("other") or the recorded DN's party. */
export type PartyRole = 'other' | 'recordDN';

/** What a media host is started with (the same for every host of a recorder). */
export interface HostConfig {
  spoolDir: string;
  bindAddress: string;
  /** RTP sockets: the native engine's, or Node's dgram (media.udp, resolved by the main thread). */
  udp: 'native' | 'js';
  jitterMs: number;
  maxSkewMs: number;
  /** How late audio may reach a recording and still be recorded at its place (rtp.horizonMs). */
  horizonMs: number;
  /** batchMs: the recordings' encode and write batch; nice: the encoder threads' nice value. */
  encoder: { workers: number; engine: EncoderEngine; quality: number; batchMs: number; nice: number };
  logLevel: string;
  /** How often the host reports its status (silence per call, lag, counts), ms. */
  statusMs: number;
  /** Window of the event-loop delay it reports, ms. */
  loadWindowMs: number;
}

/** A recording alert tone: its audio, the silence between plays, and which parties hear it. */
export interface AlertTone {
  pcm: Int16Array;
  silenceMs: number;
  hears: PartyRole[];
}

/** How one recording is written (a profile's or the recorder's settings). */
export interface RecordingSettings {
  format: Mp3Format;
  wav: G711Law | null;
  leftChannel: string | null;
  /** The certificates as PEM (the host loads them), or null: not encrypted. */
  encryption: OpenRecord['encryption'];
}

export type PlaneCommand =
  | {
      op: 'openLeg';
      key: string;
      legId: number;
      callId: string;
      role: PartyRole;
      slots: number[];
      media: (NegotiatedMedia | null)[];
      ports: number[];
      /** Log bindings of the call (conf, callUUID, profile). */
      log: Record<string, unknown>;
    }
  | { op: 'updateLeg'; key: string; legId: number; media: (NegotiatedMedia | null)[] }
  | { op: 'legEnded'; key: string; legId: number }
  | { op: 'closeLeg'; key: string; legId: number }
  | {
      op: 'start';
      key: string;
      settings: RecordingSettings;
      ctx: Omit<RecordingContext, 'mediaId'>;
      maxSamples: number;
      mediaId: string;
      /** Wall time (ms) the request that starts it reached drachtio-server: the recording starts then (back to the
       * hold horizon), however long the request waited behind busy threads. */
      atWallMs: number;
      /** The alert tone to play to some parties while it records, or null. */
      tone: AlertTone | null;
    }
  | { op: 'pause' | 'resume'; key: string }
  | { op: 'event'; key: string; type: string; detail?: Record<string, unknown> }
  /** `atWallMs`: when the request that stops it arrived; every packet that came before goes in. */
  | { op: 'stop'; key: string; reason: string; atWallMs: number }
  | { op: 'closeSession'; key: string }
  /** The host thread and its encoder threads collect their garbage (an idle recorder's; see collectGarbage). */
  | { op: 'collectGarbage' }
  | { op: 'close' };

/** A command with the id its reply carries. */
export type PlaneRequest = PlaneCommand & { id: number };

/** Per call, in a status report. */
export interface SessionStatus {
  key: string;
  /** How long no party that is not on hold has sent RTP, ms (0: every party on hold). */
  silentMs: number;
  /** The recording's encode lag, ms (0: none). */
  lagMs: number;
  /** The live recording's silent and late samples so far. */
  silentSamples: number;
  lateSamples: number;
}

export interface HostStatus {
  sessions: SessionStatus[];
  /** RTP counts of every stream the host had, closed and live. */
  counts: StreamCounts;
  streamsWithoutMedia: number;
  /** Live streams not on hold without RTP for NO_MEDIA_AFTER_MS. */
  streamsNoMedia: number;
  encodeQueueDepth: number;
  encodeOldestPendingMs: number;
  /** p99 event-loop delay of the host's last full window, ms. */
  loopDelayP99Ms: number;
  /** The host thread's memory, and its encoder threads' (as last asked; null: not known). */
  memory: { host: ThreadMemory; encoders: (ThreadMemory | null)[] };
}

export type PlaneMessage =
  | { kind: 'reply'; id: number; result?: unknown; error?: { message: string; name: string; sipStatus: number; msmlCode: number; openError?: boolean; code?: string } }
  | { kind: 'openFailed'; key: string; mediaId: string; message: string }
  | { kind: 'status'; status: HostStatus }
  /** A log line of the worker's (JSON, newline-terminated). */
  | { kind: 'log'; line: string };

/** What `stop` answers: the finalized recording, or null when none was running. */
export type StopResult = FinalizedRecording | null;
