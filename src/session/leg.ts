import { bounded } from '../bounded.js';
import type { PartyRole } from '../plane/plane-protocol.js';
import type { PlaneSession } from '../plane/media-plane.js';

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
 * One SIP dialog of a recording session; its media streams (one per usable m-line) live on the session's media host
 * under `legId`. `close()` is idempotent and closes the streams (sockets, ports); asked to, it sends BYE unless the
 * dialog already ended (a BYE came in).
 */
export class Leg {
  ended = false;
  /**
   * The dialog is lost with drachtio-server (the connection it was made on is gone, or drachtio-server restarted:
   * `dialog-probe.ts`): nothing can arrive on it, and no BYE can be sent. Its media go on while they flow.
   */
  lost = false;
  private closed = false;

  constructor(
    readonly dialog: LegDialog,
    readonly callId: string,
    readonly role: PartyRole,
    readonly legId: number,
    /** Its m-lines with media (RTP ports). */
    readonly streamCount: number,
    private readonly media: PlaneSession,
  ) {}

  async close(opts: { bye: boolean }): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const streams = this.media.closeLeg(this.legId);
    if (opts.bye && !this.ended && !this.lost) {
      this.ended = true;
      await bounded(() => this.dialog.destroy(), BYE_TIMEOUT_MS);
    }
    await streams;
  }
}
