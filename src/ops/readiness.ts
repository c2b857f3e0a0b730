/** What readiness depends on. */
export interface ReadinessInput {
  draining: boolean;
  drachtioConnected: boolean;
  /** How long Redis has been unreachable, ms (0 when connected or not used). */
  redisDownMs: number;
  /** How long Redis may be unreachable before the recorder says it is not ready, ms. */
  redisGraceMs: number;
  freeRtpPorts: number;
  /** Why the spool takes no new recording (over spool.maxBytes, disk under spool.minFreeBytes), or null. */
  spoolFull?: string | null;
}

export interface Readiness {
  ready: boolean;
  /** Why not, one phrase per cause (empty when ready). */
  reasons: string[];
}

/**
 * Whether this recorder should be given new calls. Pure. Redis being away briefly is not a reason (recordings stay
 * in the spool and are queued when it is back); being away for longer than the grace is, so that an operator sees it.
 * A WebDAV or Recording Processor that is down is not a reason either (the spool is there for that; it shows in
 * msmlrec_destination_up and /status); a spool that is filling up is, and new conf-ids then get 503 as well.
 */
export function readiness(i: ReadinessInput): Readiness {
  const reasons: string[] = [];
  if (i.draining) reasons.push('draining');
  if (!i.drachtioConnected) reasons.push('not connected to drachtio-server');
  if (i.redisDownMs > i.redisGraceMs) reasons.push(`redis unreachable for ${Math.round(i.redisDownMs / 1000)} s`);
  if (i.freeRtpPorts < 1) reasons.push('no free RTP port');
  if (i.spoolFull) reasons.push(i.spoolFull);
  return { ready: reasons.length === 0, reasons };
}
