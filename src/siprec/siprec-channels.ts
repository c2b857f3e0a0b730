import type { SiprecInfo, SiprecParticipant } from '../recording/metadata.js';
import { channelsByOrder, channelsOf, type RecordingMetadata } from './recording-metadata.js';

/** Which participant is the left channel: the caller (the first participant the metadata lists) or the callee. */
export type SiprecLeft = 'caller' | 'callee';

/** A recorded m-line: its index in the SDP and its `a=label`. */
export interface SiprecStream {
  mline: number;
  label: string | null;
}

/**
 * The channel of each recorded m-line of a SIPREC session and what the sidecar keeps of it. By metadata when it says
 * who sends each labelled stream (the caller — the first participant listed: RFC 7865 has no caller flag and the SRCs
 * we know list the caller first — on the left unless `left` is 'callee'; every other participant on the other
 * channel, mixed there when there are several: a conference fork); otherwise by m-line order (the first m-line one
 * side, all the others the other). Never by which RTP arrives first. The sides are never empty: if the metadata would
 * put every stream on one channel, m-line order decides. Pure.
 */
export function siprecChannels(meta: RecordingMetadata | null, metadataXml: string | null, streams: SiprecStream[], left: SiprecLeft, callId: string): { slots: number[]; info: SiprecInfo } {
  const labels = streams.map((s) => s.label);
  const byOrder = channelsByOrder(labels.length);
  let byMetadata = meta !== null && sendersKnown(meta, labels);
  let slots = byMetadata ? channelsOf(meta, labels) : byOrder;
  if (streams.length > 1 && new Set(slots).size === 1) {
    slots = byOrder;
    byMetadata = false;
  }
  if (left === 'callee' && streams.length > 1) slots = slots.map((s) => 1 - s);
  const recorded = recordedStreams(meta, streams, slots);
  return {
    slots,
    info: {
      sessionId: meta?.sessionId ?? null,
      callId,
      channelsBy: byMetadata ? 'metadata' : 'm-line order',
      streams: recorded,
      participants: participantsOf(meta, recorded),
      extensions: meta?.extensions ?? {},
      metadata: metadataXml,
    },
  };
}

/** Whether the metadata names a sender for every labelled stream. */
function sendersKnown(meta: RecordingMetadata, labels: (string | null)[]): boolean {
  return labels.length > 0 && labels.every((l) => l !== null && meta.streams.some((s) => s.label === l && meta.participants.some((p) => p.send.includes(s.id))));
}

/** The recorded m-lines with their channels and who sends each, as the metadata says it now. */
function recordedStreams(meta: RecordingMetadata | null, streams: SiprecStream[], slots: number[]): SiprecInfo['streams'] {
  const senderOf = (label: string | null): string | null => {
    if (!meta || label === null) return null;
    const stream = meta.streams.find((s) => s.label === label);
    return (stream && meta.participants.find((p) => p.send.includes(stream.id))?.id) ?? null;
  };
  return streams.map((s, i) => ({ mline: s.mline, label: s.label, slot: slots[i], participant: senderOf(s.label) }));
}

/** The participants with the channel of the stream each sends (null: it sends none of the recorded ones). */
function participantsOf(meta: RecordingMetadata | null, recorded: SiprecInfo['streams']): SiprecParticipant[] {
  return (meta?.participants ?? []).map((p) => ({ id: p.id, aor: p.aor, name: p.name, slot: recorded.find((s) => s.participant === p.id)?.slot ?? null, extensions: p.extensions }));
}

/**
 * The sidecar event of a metadata update (re-INVITE or UPDATE): who takes part now and which channel each is heard
 * on (the channels stay those of the m-lines), and the document. Pure.
 */
export function metadataUpdate(meta: RecordingMetadata, metadataXml: string, recorded: SiprecInfo['streams']): Record<string, unknown> {
  const now = recordedStreams(meta, recorded, recorded.map((s) => s.slot));
  return { sessionId: meta.sessionId, streams: now, participants: participantsOf(meta, now), extensions: meta.extensions, metadata: metadataXml };
}
