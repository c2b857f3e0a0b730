import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { CpuPressure, type CpuStarvation } from './cpu-pressure.js';

export interface AdmissionLimits {
  /** p99 event-loop delay over one window above which new calls are refused, ms (0: not checked). */
  maxLoopDelayMs: number;
  /** Encode lag of the worst live recording above which new calls are refused, ms (0: not checked). */
  maxEncodeLagMs: number;
  /** Share of a window the container was throttled by its CPU quota above which new calls are refused, % (0: not checked). */
  maxThrottledPct: number;
  /** Share of a window in which runnable tasks waited for a CPU (PSI some) above which new calls are refused, % (0: not checked). */
  maxCpuWaitPct: number;
  /** Length of one measurement window, ms. */
  windowMs: number;
  /** Once overloaded, new calls stay refused until this many seconds of windows within the limits. */
  holdSec: number;
}

export interface LoadSample extends Partial<CpuStarvation> {
  loopDelayP99Ms: number;
  encodeLagMs: number;
}

/**
 * Admission by measured load (pure: time and samples are passed in). A window over a limit refuses new conf-ids
 * (503, so Resource Manager or the shim places the call on another recorder) until `holdSec` of windows within the
 * limits: refusing one call is better than damaging every recording on a recorder that cannot keep up.
 */
export class AdmissionGate {
  private overloadedUntil = Number.NEGATIVE_INFINITY;
  private why: string | null = null;
  last: LoadSample = { loopDelayP99Ms: 0, encodeLagMs: 0 };

  constructor(private readonly limits: AdmissionLimits) {}

  /** Takes one window's sample; returns whether it was over a limit. */
  update(s: LoadSample, nowMs: number): boolean {
    this.last = s;
    const l = this.limits;
    let over: string | null = null;
    if (l.maxLoopDelayMs > 0 && s.loopDelayP99Ms > l.maxLoopDelayMs) over = `event-loop delay p99 ${Math.round(s.loopDelayP99Ms)} ms over ${l.maxLoopDelayMs} ms`;
    else if (l.maxEncodeLagMs > 0 && s.encodeLagMs > l.maxEncodeLagMs) over = `encode lag ${Math.round(s.encodeLagMs)} ms over ${l.maxEncodeLagMs} ms`;
    else if (l.maxThrottledPct > 0 && (s.throttledPct ?? 0) > l.maxThrottledPct) over = `CPU quota throttled ${Math.round(s.throttledPct ?? 0)} % of the window, over ${l.maxThrottledPct} %`;
    else if (l.maxCpuWaitPct > 0 && (s.cpuWaitPct ?? 0) > l.maxCpuWaitPct) over = `tasks waited for a CPU ${Math.round(s.cpuWaitPct ?? 0)} % of the window (PSI), over ${l.maxCpuWaitPct} %`;
    if (over) {
      this.why = over;
      this.overloadedUntil = nowMs + l.holdSec * 1000;
    }
    return over !== null;
  }

  /** Why new calls were last refused (kept after the refusal ends), or null. */
  get lastReason(): string | null {
    return this.why;
  }

  /** Why new calls are refused now, or null. */
  refusal(nowMs: number): string | null {
    return nowMs < this.overloadedUntil ? `overloaded: ${this.why}` : null;
  }
}

/**
 * Samples the event loop, the encode lag and the CPU starvation the kernel reports (cgroup throttling, PSI) once per
 * window and feeds an AdmissionGate. The loop delay is the worse of this thread's and the media workers'
 * (`mediaLoopDelayMs`: their last window's p99): a media worker that late delays every packet it relays.
 */
export class LoadWatch {
  readonly gate: AdmissionGate;
  private readonly histogram: ELDHistogram;
  private timer: NodeJS.Timeout | null = null;
  private wasRefusing = false;
  /** Windows that went over a limit. */
  overloadWindows = 0;
  /** This thread's p99 event-loop delay in the last window, ms. */
  mainLoopDelayP99Ms = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly encodeLagMs: () => number,
    private readonly log: Logger,
    private readonly mediaLoopDelayMs: () => number = () => 0,
    private readonly cpu: CpuPressure = new CpuPressure(),
  ) {
    this.gate = new AdmissionGate(limits);
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
  }

  start(): void {
    this.histogram.enable();
    this.timer = setInterval(() => this.sample(), this.limits.windowMs);
    this.timer.unref();
  }

  private sample(): void {
    const now = performance.now();
    this.mainLoopDelayP99Ms = this.histogram.percentile(99) / 1e6;
    const s: LoadSample = { loopDelayP99Ms: Math.max(this.mainLoopDelayP99Ms, this.mediaLoopDelayMs()), encodeLagMs: this.encodeLagMs(), ...this.cpu.sample(now) };
    this.histogram.reset();
    if (this.gate.update(s, now)) this.overloadWindows++;
    const refusal = this.gate.refusal(now);
    if (refusal && !this.wasRefusing) this.log.warn({ ...s, holdSec: this.limits.holdSec }, `${refusal}: new calls get 503`);
    if (!refusal && this.wasRefusing) this.log.info(s, 'load back within the limits: taking new calls');
    this.wasRefusing = refusal !== null;
  }

  refusal(): string | null {
    return this.gate.refusal(performance.now());
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.histogram.disable();
  }
}
