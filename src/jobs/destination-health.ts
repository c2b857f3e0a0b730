/** How one delivery destination (a WebDAV root, a Recording Processor URL) has been doing. */
export interface DestinationState {
  kind: 'webdav' | 'metadata' | 's3';
  /** The URL without credentials. */
  destination: string;
  /** Whether the last attempt succeeded. */
  up: boolean;
  /** Failed attempts since the last success. */
  failuresInARow: number;
  lastError: string | null;
  lastErrorAt: string | null;
  lastOkAt: string | null;
}

/** A URL as a label: no user or password, no query. */
export function destinationLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return url.slice(0, 200);
  }
}

/**
 * The outcome of the latest attempt per destination, for metrics (`msmlrec_destination_up`) and `/status`: a store
 * that keeps failing shows by name with its last error, not only as a count of failed uploads.
 */
export class DestinationHealth {
  private readonly states = new Map<string, DestinationState>();

  /** At most `maxDestinations` are kept (an MSML `dest` may name a collection per call): the longest unused goes. */
  constructor(private readonly maxDestinations = 100) {}

  private get(kind: DestinationState['kind'], url: string): DestinationState {
    const destination = destinationLabel(url);
    const key = `${kind} ${destination}`;
    const s = this.states.get(key) ?? { kind, destination, up: true, failuresInARow: 0, lastError: null, lastErrorAt: null, lastOkAt: null };
    // the Map's order is the order of use: the first is the longest unused
    this.states.delete(key);
    if (this.states.size >= this.maxDestinations) this.states.delete(this.states.keys().next().value as string);
    this.states.set(key, s);
    return s;
  }

  ok(kind: DestinationState['kind'], url: string): void {
    const s = this.get(kind, url);
    s.up = true;
    s.failuresInARow = 0;
    s.lastOkAt = new Date().toISOString();
  }

  failed(kind: DestinationState['kind'], url: string, error: string): void {
    const s = this.get(kind, url);
    s.up = false;
    s.failuresInARow++;
    s.lastError = error.slice(0, 300);
    s.lastErrorAt = new Date().toISOString();
  }

  all(): DestinationState[] {
    return [...this.states.values()];
  }
}
