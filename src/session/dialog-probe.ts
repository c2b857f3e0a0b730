import type { Logger } from 'pino';
import { bounded } from '../bounded.js';
import type { CallSession } from './call-session.js';

/** How long a probe waits for its answer, ms. */
const PROBE_TIMEOUT_MS = 5000;

/**
 * A dialog that cannot be used any more: drachtio-srf's refusal to send on the connection the dialog was made on,
 * which is gone (drachtio-server routes a dialog's requests to the connection that made it: a new one never gets
 * them), or drachtio-server's answer for a dialog it does not know (it restarted).
 */
const LOST = /socket has been destroyed|socket connection closed|unable to find dialog|can't find dialog|cannot find dialog/i;

/**
 * After the connection to drachtio-server came back, tries every live dialog with an in-dialog OPTIONS: one made on
 * the lost connection (drachtio-srf will not send on it: its socket is destroyed), one drachtio-server no longer
 * knows (it restarted: "unable to find dialog for dialog id provided"), or one the far end answers 481, is lost — no
 * BYE or MSML can reach it again — and its session is told (`dialogLost`). A dialog that answers anything else, or
 * nothing within 5 s, is left as it is. Returns how many were lost.
 */
export async function probeDialogs(sessions: readonly CallSession[], log: Logger): Promise<number> {
  let lost = 0;
  await Promise.all(
    sessions.flatMap((s) =>
      s.legs
        .filter((l) => !l.ended && !l.lost)
        .map(async (leg) => {
          const r = await bounded(() => leg.dialog.request({ method: 'OPTIONS' }), PROBE_TIMEOUT_MS);
          const status = r.ok ? (r.value as { status?: number } | null)?.status : undefined;
          const code = r.ok ? undefined : (r.error as (Error & { code?: string }) | null)?.code;
          if ((!r.ok && r.error && (code === 'ESOCKETDESTROYED' || LOST.test(r.error.message))) || status === 481) {
            lost++;
            s.dialogLost(leg);
          }
        }),
    ),
  );
  if (lost > 0) log.warn({ lost }, 'drachtio-server no longer knows these dialogs: their calls go on while RTP flows');
  return lost;
}
