/**
 * When a request reached drachtio-server: the time of day (`hh:mm:ss.µs`) it stamps on every message it passes to
 * the app, which drachtio-srf keeps as `req.stackTime`. The recorder starts and stops recordings at that instant, not
 * when its own busy thread got round to the request, so a queue in front of the SIP thread (a burst of set-ups, a
 * pause of the process) moves neither end of a file.
 *
 * The stamp has no date and no zone: it is taken as today's (or yesterday's, across midnight) time in UTC or in the
 * local zone, whichever puts it between `maxAgeMs` ago and now (a few ms of clock skew allowed). Anything else — no
 * stamp, a malformed one, a sidecar whose clock disagrees — gives `nowMs`.
 */
const STAMP = /^(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;
const DAY_MS = 86_400_000;
/** A stamp this far in the future still counts (clocks of the two containers read apart). */
const SKEW_MS = 50;

export function arrivalWallMs(stackTime: unknown, nowMs: number, maxAgeMs: number): number {
  if (typeof stackTime !== 'string') return nowMs;
  const m = STAMP.exec(stackTime.trim());
  if (!m) return nowMs;
  const ofDay = ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number((m[4] ?? '0').padEnd(6, '0')) / 1000;
  if (ofDay >= DAY_MS) return nowMs;
  const localOffsetMs = -new Date(nowMs).getTimezoneOffset() * 60_000;
  for (const zone of [0, localOffsetMs]) {
    const nowOfDay = (((nowMs + zone) % DAY_MS) + DAY_MS) % DAY_MS;
    let age = nowOfDay - ofDay;
    if (age < -DAY_MS / 2) age += DAY_MS;
    if (age >= -SKEW_MS && age <= maxAgeMs) return nowMs - Math.max(0, age);
  }
  return nowMs;
}
