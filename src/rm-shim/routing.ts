import type { RecorderEntry } from '../ops/recorder-registry.js';

export interface Choice {
  entry: RecorderEntry;
  /** pinned: the conf-id already lives there; capacity: the recorder with the most free room. */
  reason: 'pinned' | 'capacity';
}

/** Free room of a recorder as the shim sees it: its last beat, less calls sent to it since that beat. */
export function freeRoom(e: RecorderEntry, sentSinceBeat: number): number {
  return e.maxCalls - e.activeCalls - sentSinceBeat;
}

/**
 * Where a new conf-id may go, best first: live, non-draining recorders with free room, most room first (ties: the
 * lowest id), at most `max`: the failover order.
 */
export function rankRecorders(entries: RecorderEntry[], sentSinceBeat: (e: RecorderEntry) => number, max = 3): RecorderEntry[] {
  return entries
    .filter((e) => !e.draining && freeRoom(e, sentSinceBeat(e)) > 0)
    .sort((a, b) => freeRoom(b, sentSinceBeat(b)) - freeRoom(a, sentSinceBeat(a)) || a.id.localeCompare(b.id))
    .slice(0, max);
}

/** Whether a SIP response came from the recorder at `sipUri` (same host and port; 5060 when none is given). */
export function answeredBy(sipUri: string, address: string, port: number): boolean {
  const m = /^sips?:(?:[^@;]*@)?([^;:?]+|\[[^\]]+\])(?::(\d+))?/.exec(sipUri);
  if (!m) return false;
  return m[1].replace(/^\[|\]$/g, '') === address && Number(m[2] ?? 5060) === port;
}

/**
 * Where a new INVITE goes, in order: every dialog of a conf-id goes to the recorder that has it (even a full or
 * draining one: it is the same call); a new conf-id to the live, non-draining recorders with free room, most room
 * first (ties: the lowest id), at most `max` (the failover order), or nowhere (null: 503) when none has room. Pure.
 */
export function routeInvite(entries: RecorderEntry[], pinnedId: string | null, sentSinceBeat: (e: RecorderEntry) => number, max = 3): { reason: Choice['reason']; candidates: RecorderEntry[] } | null {
  if (pinnedId) {
    const pinned = entries.find((e) => e.id === pinnedId);
    if (pinned) return { reason: 'pinned', candidates: [pinned] };
  }
  const ranked = rankRecorders(entries, sentSinceBeat, max);
  return ranked.length ? { reason: 'capacity', candidates: ranked } : null;
}

/** The first recorder `routeInvite` would send a new INVITE to. Pure. */
export function pickRecorder(entries: RecorderEntry[], pinnedId: string | null, sentSinceBeat: (e: RecorderEntry) => number): Choice | null {
  const r = routeInvite(entries, pinnedId, sentSinceBeat, 1);
  return r ? { entry: r.candidates[0], reason: r.reason } : null;
}

/**
 * The Request-URI to proxy to: the original one (its user part carries `msml=<conf-id>` and its parameters the
 * DN, tenant and profile, which the recorder needs) with the recorder's host, port and transport.
 */
export function retarget(requestUri: string, recorderUri: string): string {
  const target = /^sips?:(?:[^@;]*@)?([^;?]+)((?:;[^?]*)?)/.exec(recorderUri);
  if (!target) throw new Error(`not a SIP URI: ${recorderUri}`);
  const [, hostport, params] = target;
  const transport = /;transport=(\w+)/i.exec(params)?.[1];
  const m = /^(sips?:)(?:([^@]*)@)?([^;?]+)(.*)$/.exec(requestUri);
  if (!m) throw new Error(`not a SIP URI: ${requestUri}`);
  const [, scheme, user, , rest] = m;
  let tail = rest.replace(/;transport=\w+/i, '');
  if (transport) tail = `;transport=${transport}${tail}`;
  return `${scheme}${user !== undefined ? `${user}@` : ''}${hostport}${tail}`;
}
