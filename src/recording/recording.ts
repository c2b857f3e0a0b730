import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SampleClock } from '../media/sample-clock.js';
import { ChannelMixer } from './channel-mixer.js';
import type { EncoderPool } from './encoder-pool.js';
import { buildSidecar, makeMediaId, type LegSummary, type RecordingContext, type RecordingEvent, type Sidecar } from './metadata.js';
import type { Mp3Format } from './mp3-encoder.js';
import { SpoolFile, writeJsonDurably } from './spool-file.js';

export interface RecordingDeps {
  pool: EncoderPool;
  spoolDir: string;
  clock: SampleClock;
  log: Logger;
  format: Mp3Format;
  /** How long (samples) to wait for late packets before a position is encoded. */
  holdSamples: number;
  /** Name of the party on the left channel, for the sidecar. */
  leftChannel: string | null;
}

export interface FinalizedRecording {
  id: string;
  mp3Path: string;
  sidecarPath: string;
  sidecar: Sidecar;
}

const rand8 = (): string => randomBytes(4).toString('hex').toUpperCase();

/**
 * One recording: mixes the legs' audio onto fixed channels, encodes it in the worker pool and appends it to
 * `<mediaId>.mp3.part` in the spool as it goes; `stop()` writes the tail, fsyncs, renames to `.mp3` and writes
 * the `.json` sidecar. The file covers exactly [start, stop) of the clock whatever the network did.
 */
export class Recording {
  readonly mediaId: string;
  readonly startAt: number;
  readonly startWallMs: number;
  private readonly mixer: ChannelMixer;
  private file: SpoolFile | null = null;
  private chain: Promise<void> = Promise.resolve();
  private error: Error | null = null;
  private readonly events: RecordingEvent[] = [];
  private stopping: Promise<FinalizedRecording> | null = null;
  private encodedSamples = 0;

  constructor(
    private readonly deps: RecordingDeps,
    readonly ctx: Omit<RecordingContext, 'mediaId'>,
    inputs: number,
  ) {
    this.startAt = deps.clock.now();
    this.startWallMs = deps.clock.wallMs(this.startAt);
    this.mediaId = makeMediaId(ctx.callUUID ?? ctx.confId ?? ctx.id, this.startWallMs, rand8);
    this.mixer = new ChannelMixer(Math.max(1, inputs), deps.format.channels, this.startAt);
  }

  get mp3Path(): string {
    return join(this.deps.spoolDir, `${this.mediaId}.mp3`);
  }

  get failed(): Error | null {
    return this.error;
  }

  get paused(): boolean {
    return this.mixer.paused;
  }

  /** Creates the spool file and the encoder. Throws SpoolError / RecorderError. */
  async open(): Promise<void> {
    this.file = await SpoolFile.create(this.mp3Path);
    await this.deps.pool.open(this.mediaId, this.deps.format);
  }

  write(slot: number, at: number, pcm: Int16Array): void {
    if (this.stopping) return;
    this.mixer.write(slot, at, pcm);
  }

  private note(type: string, at: number): void {
    this.events.push({ type, offsetMs: Math.round((at - this.startAt) / 8), time: new Date(this.deps.clock.wallMs(at)).toISOString() });
  }

  pause(): void {
    if (this.mixer.paused || this.stopping) return;
    const at = this.deps.clock.now();
    this.mixer.pause(at);
    this.note('pause', at);
  }

  resume(): void {
    if (!this.mixer.paused || this.stopping) return;
    const at = this.deps.clock.now();
    this.mixer.resume(at);
    this.note('resume', at);
  }

  /** Records a call event (hold, unhold, ...) in the sidecar's history. */
  event(type: string): void {
    this.note(type, this.deps.clock.now());
  }

  /** Encodes everything older than the hold time. Call periodically. */
  tick(): void {
    if (this.stopping) return;
    this.emit(this.deps.clock.now() - this.deps.holdSamples);
  }

  private emit(until: number): void {
    const frames = this.mixer.take(until);
    const n = frames.channels[0].length;
    if (n === 0 || this.error) return;
    this.encodedSamples += n;
    const encoded = this.deps.pool.encode(this.mediaId, frames.channels);
    this.chain = this.chain.then(async () => {
      if (this.error) return;
      try {
        await this.file?.append(await encoded);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    encoded.catch(() => undefined);
  }

  private fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    this.deps.log.error({ err, mediaId: this.mediaId }, 'recording failed; what was written so far is kept');
  }

  /**
   * Ends the recording at the current clock position: encodes up to it exactly, flushes the encoder, finalizes
   * the spool file and writes the sidecar. Idempotent: later calls return the same promise.
   */
  stop(reason: string, legs: LegSummary[]): Promise<FinalizedRecording> {
    if (!this.stopping) this.stopping = this.finish(reason, legs);
    return this.stopping;
  }

  private async finish(reason: string, legs: LegSummary[]): Promise<FinalizedRecording> {
    const stopAt = this.deps.clock.now();
    if (this.mixer.paused) this.mixer.resume(stopAt);
    this.emit(stopAt);
    await this.chain;
    if (!this.error) {
      try {
        await this.file?.append(await this.deps.pool.finish(this.mediaId));
      } catch (err) {
        this.fail(err as Error);
      }
    }
    await this.file?.finalize();
    const sidecar = buildSidecar(
      { ...this.ctx, mediaId: `${this.mediaId}.mp3` },
      {
        startWallMs: this.startWallMs,
        samples: this.encodedSamples,
        endReason: reason,
        truncated: this.error !== null,
        error: this.error?.message ?? null,
        channels: this.deps.format.channels,
        kbps: this.deps.format.kbps,
        leftChannel: this.deps.leftChannel,
        mp3Name: `${this.mediaId}.mp3`,
        mp3Size: this.file?.bytes ?? 0,
        events: this.events,
        legs,
      },
    );
    const sidecarPath = join(this.deps.spoolDir, `${this.mediaId}.json`);
    await writeJsonDurably(sidecarPath, sidecar);
    this.deps.log.info({ mediaId: this.mediaId, durationMs: sidecar.durationMs, bytes: sidecar.files.mp3.size, reason }, 'recording finalized');
    return { id: this.ctx.id, mp3Path: this.mp3Path, sidecarPath, sidecar };
  }
}
