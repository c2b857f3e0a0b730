import type { Sidecar, SiprecInfo, SpooledFile } from '../recording/metadata.js';

/** Where a recording's files went. */
export interface StoredFiles {
  mp3Uri: string;
  wavUri: string | null;
}

/** GIR's timestamp shape: yyyy-MM-dd'T'HH:mm:ss.SSS+0000. */
export function girTime(iso: string): string {
  return iso.replace(/Z$/, '+0000');
}

/**
 * The JSON POSTed to the Recording Processor for one recording, shaped like GIR's recording resource
 * (shared/reference/genesys-gir-notes.md §4): id = CallUUID, caller/dialed numbers, start/stop, one mediaFiles
 * element per stored file with every MSML and Request-URI parameter, and the call's event history. Pure.
 */
export function buildRecordingResource(s: Sidecar, stored: StoredFiles): Record<string, unknown> {
  const p = { ...siprecParams(s.siprec), ...s.msml.params };
  const parameters: Record<string, string> = {
    ...s.uriParams,
    ...p,
    dateTime: s.startTime.replace(/\.\d+Z$/, 'Z'),
    ...(s.dn && !p.recordDN ? { recordDN: s.dn } : {}),
    ...(s.confId ? { confId: s.confId } : {}),
  };
  const file = (uri: string, mediaId: string, type: string, size: number, extra: Record<string, unknown> = {}) => ({
    mediaUri: uri,
    mediaId,
    callUUID: s.callUUID ?? s.id,
    type,
    startTime: girTime(s.startTime),
    stopTime: girTime(s.stopTime),
    duration: String(s.durationMs),
    size: String(size),
    tenant: s.tenant,
    ivrprofile: s.ivrProfile,
    channels: s.audio.channels,
    parameters,
    ...extra,
  });
  // an encrypted file says so, and for which certificates (SHA-256 fingerprints): the RCS picks its key by them
  const sealed = (f: SpooledFile): Record<string, unknown> => (f.encrypted ? { pkcs7: true, certificates: f.encrypted.certificates, cipher: f.encrypted.cipher } : {});
  const mediaFiles = [file(stored.mp3Uri, s.files.mp3.name, 'audio/mp3', s.files.mp3.size, { truncated: s.truncated, ...sealed(s.files.mp3) })];
  if (stored.wavUri && s.files.wav) {
    mediaFiles.push(file(stored.wavUri, s.files.wav.name, s.files.wav.codec === 'PCMU' ? 'audio/x-wav;codec=pcmu' : 'audio/x-wav;codec=pcma', s.files.wav.size, { channels: s.files.wav.channels, ...sealed(s.files.wav) }));
  }
  return {
    id: s.callUUID ?? s.id,
    callerPhoneNumber: p.ani ?? null,
    dialedPhoneNumber: p.dnis ?? null,
    startTime: girTime(s.startTime),
    stopTime: girTime(s.stopTime),
    mediaFiles,
    eventHistory: s.events.map((e) => ({ type: e.type, time: girTime(e.time), offsetMs: e.offsetMs, ...(e.detail ? { detail: e.detail } : {}) })),
    recorder: { recordingId: s.id, dialogId: s.dialogId, endReason: s.endReason, lateMs: s.audio.lateMs ?? 0, profile: s.profile ?? 'default', profileVersion: s.profileVersion ?? 'builtin', legs: s.legs },
    ...(s.siprec ? { siprec: siprecPart(s.siprec, s.audio.channels) } : {}),
  };
}

/** The number (or user) of a SIP AoR: `sip:+14085550101@host` → `+14085550101`. */
const userOf = (aor: string | null): string | null => (aor ? (/^(?:sips?|tel):([^@;]+)/i.exec(aor)?.[1] ?? aor) : null);

/**
 * What a SIPREC session adds to the parameters: the caller (first participant) as `ani`, the callee as `dnis`, the
 * SIPREC session id, the SRC's vendor extensions (Cisco callData, Avaya UCID, ...) by their dotted paths, and the
 * caller's and callee's own vendor data as `caller.<path>` / `callee.<path>` (each participant's stays its own).
 */
function siprecParams(x: SiprecInfo | undefined): Record<string, string> {
  if (!x) return {};
  const [caller, callee] = x.participants;
  const out: Record<string, string> = { ...x.extensions };
  for (const [who, p] of [['caller', caller], ['callee', callee]] as const) for (const [k, v] of Object.entries(p?.extensions ?? {})) out[`${who}.${k}`] = v;
  if (x.sessionId) out.siprecSessionId = x.sessionId;
  const ani = userOf(caller?.aor ?? null);
  const dnis = userOf(callee?.aor ?? null);
  if (ani) out.ani = ani;
  if (dnis) out.dnis = dnis;
  return out;
}

/** The SIPREC session and its participants, each with the channel it is heard on. */
function siprecPart(x: SiprecInfo, channels: 1 | 2): Record<string, unknown> {
  const channel = (slot: number | null): string | null => (slot === null ? null : channels === 1 ? 'mono' : slot === 0 ? 'left' : 'right');
  return {
    sessionId: x.sessionId,
    callId: x.callId,
    channelsBy: x.channelsBy,
    participants: x.participants.map((q) => ({ id: q.id, aor: q.aor, name: q.name, channel: channel(q.slot), extensions: q.extensions ?? {} })),
    streams: x.streams.map((q) => ({ label: q.label, participant: q.participant, channel: channel(q.slot) })),
  };
}
