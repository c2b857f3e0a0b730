import type { CallSession } from './call-session.js';

/**
 * Live sessions by key (MSML conf-id, or Call-ID for a bare `sip:msml@`), and the one timer that drives them all
 * (releasing due packets, encoding): one interval for every call instead of one per call.
 */
export class SessionRegistry {
  private sessions = new Map<string, CallSession>();
  private timer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];
  /** Called after a session was added or removed (the cluster heartbeat publishes the new count at once). */
  onChange: () => void = () => undefined;

  constructor(private readonly tickMs = 100) {}

  get(key: string): CallSession | undefined {
    const s = this.sessions.get(key);
    return s && !s.closed ? s : undefined;
  }

  add(s: CallSession): void {
    this.sessions.set(s.key, s);
    s.onClosed = () => this.remove(s);
    this.onChange();
    if (!this.timer) {
      this.timer = setInterval(() => {
        for (const x of this.sessions.values()) x.tick();
      }, this.tickMs);
    }
  }

  /** Removes a session if it has no legs (its first INVITE failed) or once it closed. */
  remove(s: CallSession): void {
    if (this.sessions.get(s.key) === s) {
      this.sessions.delete(s.key);
      this.onChange();
    }
    if (this.sessions.size === 0) {
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  get size(): number {
    return this.sessions.size;
  }

  all(): CallSession[] {
    return [...this.sessions.values()];
  }

  /** The largest encode lag of a live recording, ms (0: none live). */
  maxEncodeLagMs(): number {
    let worst = 0;
    for (const x of this.sessions.values()) worst = Math.max(worst, x.recording?.lagMs ?? 0);
    return worst;
  }

  /** Resolves when no session is left. */
  idle(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Closes every session (finalizing their recordings). */
  async closeAll(reason: string): Promise<void> {
    await Promise.all(this.all().map((s) => s.close(reason)));
  }
}
