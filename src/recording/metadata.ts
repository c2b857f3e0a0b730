import { SAMPLES_PER_MS } from '../media/sample-clock.js';

/**
 * The sidecar written beside each spooled recording: everything known about it, in one JSON document.
 * Delivery (jobs/) builds the Recording Processor body from it. Pure.
 */
export interface LegSummary {
  callId: string;
  slot: number;
  role: 'other' | 'recordDN';
  codec: string | null;
  remote: string | null;
  packets: number;
  lost: number;
  late: number;
  duplicates: number;
  ssrcChanges: number;
}

export interface RecordingEvent {
  /** pause | resume | hold | unhold | siprec.metadata | ... */
  type: string;
  /** Offset from the start of the recording, ms. */
  offsetMs: number;
  time: string;
  /** What the event carried (a SIPREC metadata update: its participants and document). */
  detail?: Record<string, unknown>;
}

/** A SIPREC participant as the sidecar keeps it: who, and the channel of the stream it sends (null: none). */
export interface SiprecParticipant {
  id: string;
  aor: string | null;
  name: string | null;
  slot: number | null;
  /** Its own vendor data from the metadata (dotted paths below the participant); absent in older sidecars. */
  extensions?: Record<string, string>;
}

/** What a SIPREC recording session (RFC 7866) said about the call, kept whole in the sidecar. */
export interface SiprecInfo {
  /** The metadata's session id (RFC 7865 `session_id`), null without metadata. */
  sessionId: string | null;
  /** The recording session's SIP Call-ID. */
  callId: string;
  /** How the channels were chosen: by who sends each labelled stream, or by m-line order. */
  channelsBy: 'metadata' | 'm-line order';
  /** Each recorded m-line: its index in the SDP, its a=label, its channel and who sends it. */
  streams: { mline: number; label: string | null; slot: number; participant: string | null }[];
  participants: SiprecParticipant[];
  /** Vendor extensions of the metadata (Cisco callData, Avaya UCID, ...) as dotted paths. */
  extensions: Record<string, string>;
  /** The metadata document as the SRC sent it (null: none). */
  metadata: string | null;
}

export interface RecordingContext {
  id: string;
  mediaId: string;
  confId: string | null;
  callUUID: string | null;
  dialogId: string;
  dn: string | null;
  tenant: string | null;
  ivrProfile: string | null;
  tenantDbid: string | null;
  uriParams: Record<string, string>;
  /** The recording profile used (`<Tenant>.<Profile>` or `default`) and its version (profiles file hash). */
  profile?: string;
  profileVersion?: string;
  /** Present for a SIPREC recording session (its MSML part is then empty). */
  siprec?: SiprecInfo;
  msml: {
    dest: string | null;
    format: string | null;
    maxtimeMs: number | null;
    attrs: Record<string, string>;
    params: Record<string, string>;
  };
}

/** A file of a recording in the spool, as delivered. */
export interface SpooledFile {
  name: string;
  size: number;
  /** Present when the file is CMS EnvelopedData (the audio is inside, encrypted for these certificates). */
  encrypted?: { format: 'cms-enveloped-data'; cipher: string; keyTransport: string; certificates: string[] };
}

export interface Sidecar extends RecordingContext {
  schema: 1;
  startTime: string;
  stopTime: string;
  durationMs: number;
  endReason: string;
  truncated: boolean;
  error: string | null;
  /**
   * `lateMs`: audio that reached the recorder after its place in the file was encoded (a stall longer than the hold
   * horizon) and is missing from it, ms summed over the channels; 0 for a whole recording (absent in sidecars written
   * before it was kept).
   */
  audio: { type: 'audio/mp3'; channels: 1 | 2; kbps: number; sampleRate: 8000; leftChannel: string | null; lateMs?: number };
  files: { mp3: SpooledFile; wav?: SpooledFile & { codec: 'PCMU' | 'PCMA'; channels: number } };
  events: RecordingEvent[];
  legs: LegSummary[];
}

export function buildSidecar(
  ctx: RecordingContext,
  t: {
    startWallMs: number;
    samples: number;
    endReason: string;
    truncated: boolean;
    error: string | null;
    channels: 1 | 2;
    kbps: number;
    leftChannel: string | null;
    /** Samples dropped as late (summed over the channels); absent: none known (a recording finished from the spool). */
    lateSamples?: number;
    files: Sidecar['files'];
    events: RecordingEvent[];
    legs: LegSummary[];
  },
): Sidecar {
  const durationMs = Math.round(t.samples / SAMPLES_PER_MS);
  return {
    schema: 1,
    ...ctx,
    startTime: new Date(t.startWallMs).toISOString(),
    stopTime: new Date(t.startWallMs + durationMs).toISOString(),
    durationMs,
    endReason: t.endReason,
    truncated: t.truncated,
    error: t.error,
    audio: { type: 'audio/mp3', channels: t.channels, kbps: t.kbps, sampleRate: 8000, leftChannel: t.leftChannel, lateMs: Math.round((t.lateSamples ?? 0) / SAMPLES_PER_MS) },
    files: t.files,
    events: t.events,
    legs: t.legs,
  };
}

/** `<CallUUID>_<YYYY-MM-DD>_<hh-mm-ss>-<8hex>-<8hex>-<8hex>`, the GIR media id shape, safe as a file name. */
export function makeMediaId(base: string, wallMs: number, rand: () => string): string {
  const d = new Date(wallMs).toISOString();
  const safe = base.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80) || 'recording';
  return `${safe}_${d.slice(0, 10)}_${d.slice(11, 19).replace(/:/g, '-')}-${rand()}-${rand()}-${rand()}`;
}
