import { CapacityError } from '../errors.js';

/**
 * Hands out even RTP ports from a range (RFC 3550: RTP on even, RTCP on the next odd port). Ports are reused
 * least-recently-released first so a late packet of a finished call rarely reaches a new one. Pure.
 */
export class RtpPortPool {
  private free: number[] = [];
  private used = new Set<number>();

  constructor(min: number, max: number) {
    for (let p = min % 2 === 0 ? min : min + 1; p + 1 <= max; p += 2) this.free.push(p);
    if (this.free.length === 0) throw new CapacityError(`RTP port range ${min}-${max} holds no even port`);
  }

  /** Takes a port; throws CapacityError (SIP 503) when none is left. */
  take(): number {
    const p = this.free.shift();
    if (p === undefined) throw new CapacityError('no free RTP port');
    this.used.add(p);
    return p;
  }

  /** Returns a port. Releasing a port twice or one never taken is ignored. */
  release(port: number): void {
    if (!this.used.delete(port)) return;
    this.free.push(port);
  }

  get inUse(): number {
    return this.used.size;
  }

  get available(): number {
    return this.free.length;
  }
}
