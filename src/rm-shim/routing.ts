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
 * Where a new INVITE goes. Pure. Every dialog of a conf-id goes to the recorder that has it (even a full or
 * draining one: it is the same call); a new conf-id goes to the live, non-draining recorder with the most free
 * room (ties: the lowest id), or nowhere (503) when none has room.
 */
export function pickRecorder(entries: RecorderEntry[], pinnedId: string | null, sentSinceBeat: (e: RecorderEntry) => number): Choice | null {
  if (pinnedId) {
    const pinned = entries.find((e) => e.id === pinnedId);
    if (pinned) return { entry: pinned, reason: 'pinned' };
  }
  let best: RecorderEntry | null = null;
  let bestRoom = 0;
  for (const e of [...entries].sort((a, b) => a.id.localeCompare(b.id))) {
    if (e.draining) continue;
    const room = freeRoom(e, sentSinceBeat(e));
    if (room > bestRoom) {
      best = e;
      bestRoom = room;
    }
  }
  return best ? { entry: best, reason: 'capacity' } : null;
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
