import { bounded } from '../bounded.js';
import type { MediaStream } from '../media/media-stream.js';
import type { LegSummary } from '../recording/metadata.js';

/** Who a leg carries: the far end / customer ("other") or the recorded DN's party. */
export type PartyRole = 'other' | 'recordDN';

/** The part of a drachtio-srf Dialog a leg needs (kept small so the session can be driven in tests). */
export interface LegDialog {
  readonly id: string;
  readonly sip: { callId: string };
  request(opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<unknown>;
  destroy(opts?: { headers?: Record<string, string> }): Promise<unknown>;
}

/** How long a BYE may wait for its answer (drachtio-server gone, far end silent) before the leg is closed anyway. */
export const BYE_TIMEOUT_MS = 5000;

/**
 * One SIP dialog of a recording session and its media streams (one per usable m-line). `close()` is idempotent
 * and closes the streams (sockets, ports); asked to, it sends BYE unless the dialog already ended (a BYE came in).
 */
export class Leg {
  ended = false;
  private closed = false;

  constructor(
    readonly dialog: LegDialog,
    readonly callId: string,
    readonly role: PartyRole,
    readonly streams: MediaStream[],
  ) {}

  summaries(): LegSummary[] {
    return this.streams.map((s) => ({
      callId: this.callId,
      slot: s.slot,
      role: this.role,
      codec: s.media?.codec ?? null,
      remote: s.remote ? `${s.remote.address}:${s.remote.port}` : null,
      packets: s.stats.received,
      lost: s.stats.lost,
      late: s.stats.late,
      duplicates: s.stats.duplicates,
      ssrcChanges: s.stats.ssrcChanges,
    }));
  }

  async close(opts: { bye: boolean }): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams) s.close();
    if (opts.bye && !this.ended) {
      this.ended = true;
      await bounded(() => this.dialog.destroy(), BYE_TIMEOUT_MS);
    }
  }
}
