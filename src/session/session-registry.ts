import type { CallSession } from './call-session.js';

/** Live sessions by key (MSML conf-id, or Call-ID for a bare `sip:msml@`). */
export class SessionRegistry {
  private sessions = new Map<string, CallSession>();
  private idleWaiters: (() => void)[] = [];
  /** Called after a session was added or removed (the cluster heartbeat publishes the new count at once). */
  onChange: () => void = () => undefined;

  get(key: string): CallSession | undefined {
    const s = this.sessions.get(key);
    return s && !s.closed ? s : undefined;
  }

  add(s: CallSession): void {
    this.sessions.set(s.key, s);
    s.onClosed = () => this.remove(s);
    this.onChange();
  }

  /** Removes a session if it has no legs (its first INVITE failed) or once it closed. */
  remove(s: CallSession): void {
    if (this.sessions.get(s.key) === s) {
      this.sessions.delete(s.key);
      this.onChange();
    }
    if (this.sessions.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  get size(): number {
    return this.sessions.size;
  }

  all(): CallSession[] {
    return [...this.sessions.values()];
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
