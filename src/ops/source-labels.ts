/**
 * The metric label of a refused source: its address, for the first `maxLabels` distinct ones; "other" after that (a
 * scan from many addresses must not grow the metrics without bound).
 */
export class SourceLabels {
  private readonly seen = new Set<string>();
  constructor(private readonly maxLabels = 100) {}

  of(address: string | undefined): string {
    const a = address || 'unknown';
    if (this.seen.has(a)) return a;
    if (this.seen.size >= this.maxLabels) return 'other';
    this.seen.add(a);
    return a;
  }
}
