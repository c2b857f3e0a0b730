import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SAMPLES_PER_MS, type SampleClock } from '../media/sample-clock.js';
import { encodeG711, type G711Law } from '../media/g711.js';
import { ChannelMixer, mixDown } from './channel-mixer.js';
import { EncoderCrashError } from '../errors.js';
import type { EncoderPool } from './encoder-pool.js';
import { makeMediaId, type LegSummary, type RecordingContext, type RecordingEvent, type Sidecar } from './metadata.js';
import { frameBytes, framesIn, infoFrame } from './mp3-info-tag.js';
import type { Mp3Format } from './mp3-encoder.js';
import { certAlias, loadRecipient, type Encryption } from './cms-envelope.js';
import { finalizeFiles, type FinalizedFiles } from './finalize-files.js';
import { SpoolFile, writeJsonDurably } from './spool-file.js';
import { interleave, wavHeader, wavSizePatches, type WavHeader } from './wav-header.js';
import { spoolNames } from './spool-names.js';

export interface RecordingDeps {
  pool: EncoderPool;
  spoolDir: string;
  clock: SampleClock;
  log: Logger;
  format: Mp3Format;
  /** G.711 law of the WAV analytics copy, or null for none. */
  wav: G711Law | null;
  /** How long (samples) to wait for late packets before a position is encoded. */
  holdSamples: number;
  /**
   * Audio is encoded and written in batches of at least this many samples (the last one, at the stop or the length
   * limit, may be shorter); 0: whatever is final at each tick.
   */
  batchSamples?: number;
  /** Name of the party on the left channel, for the sidecar. */
  leftChannel: string | null;
  /** Encrypt the finished files for these certificates (CMS EnvelopedData), or null. */
  encryption?: Encryption | null;
}

/** `<mediaId>.open.json`: a recording in progress, for recovery after a crash. */
export interface OpenRecord {
  schema: 1;
  ctx: Omit<RecordingContext, 'mediaId'>;
  mediaId: string;
  startWallMs: number;
  format: Mp3Format;
  wav: G711Law | null;
  leftChannel: string | null;
  /** How to encrypt the files (the certificates as PEM: recovery encrypts for the same ones), or null. */
  encryption: (Omit<Encryption, 'recipients'> & { certificates: string[] }) | null;
}

export interface FinalizedRecording extends FinalizedFiles {
  id: string;
  /** Samples of each channel filled with silence because no audio was there (gaps, hold, a silent leg), summed. */
  silentSamples: number;
  /** Samples that came after their place was encoded and were dropped (the recorder fell behind), summed. */
  lateSamples: number;
}

/**
 * How long (samples) a recording waits at most before it encodes a position: the jitter buffer's wait plus the hold
 * horizon. A packet placed by its RTP time can reach the mixer that late — delayed by the network, by the wait for a
 * gap in front of it, or by a stall: of the recorder (a paused process, a CFS-throttled pod, a busy node), of one of
 * its threads, or of a sender that held its packets back and sent them in a burst — and is still recorded at its
 * place. A recording whose streams are all on time encodes close behind them (`tick`); only a stream that is behind
 * is waited for this long. Waiting costs memory (the session's mixer ring: 3 bytes per sample and input, 2 inputs,
 * the span rounded up to a power of two: 192 kB per call at the defaults, 80 + 2500 ms), never audio, and a stop does
 * not wait for it: the last frames are taken at the stop instant.
 */
export function holdSamples(jitterMs: number, horizonMs: number): number {
  return (jitterMs + horizonMs) * SAMPLES_PER_MS;
}

/** The ring size a mixer needs for a hold and a batch: both, a tick, and packets placed ahead of their arrival. */
export function mixerCapacity(hold: number, batch = 0): number {
  return hold + batch + SAMPLES_PER_MS * 600;
}

/** What the recovery record keeps of the encryption settings: the certificates themselves, so a restart with other
 * settings still encrypts a recording for the certificates it was started with. */
export function openEncryption(enc: Encryption | null): OpenRecord['encryption'] {
  return enc ? { certificates: enc.recipients.map((r) => r.pem), cipher: enc.cipher, keyTransport: enc.keyTransport, extension: enc.extension } : null;
}

/** The encryption settings back from what `openEncryption` kept (the certificates were checked when first loaded). */
export function encryptionFromOpen(o: OpenRecord['encryption'], name: string): Encryption | null {
  if (!o) return null;
  const recipients = o.certificates.map((pem, i) => loadRecipient(pem, `${name} certificate #${i + 1}`, { allowExpired: true }));
  return { recipients, cipher: o.cipher, keyTransport: o.keyTransport, extension: o.extension };
}

const rand8 = (): string => randomBytes(4).toString('hex').toUpperCase();

/** A new recording's media id (unique: wall time and 32 random bits). */
export function newMediaId(ctx: Omit<RecordingContext, 'mediaId'>, wallMs: number): string {
  return makeMediaId(ctx.callUUID ?? ctx.confId ?? ctx.id, wallMs, rand8);
}
/** Encoder restarts (after a worker crash) a recording may use before it is given up as failed. */
const MAX_ENCODER_RESTARTS = 3;

/**
 * One recording: mixes the legs' audio onto fixed channels, encodes it in the worker pool and appends it to
 * `<mediaId>.mp3.part` in the spool as it goes (and the G.711 WAV copy to `<mediaId>.wav.part`); `stop()` writes the
 * tail, patches the MP3 Info frame and the WAV header, fsyncs, renames and writes the `.json` sidecar. The file
 * covers exactly [start, stop) of the clock whatever the network did.
 *
 * Back-pressure: one encode request in flight per recording. While it is out, audio waits in the mixer and goes
 * in the next, larger batch; nothing is dropped, `lagMs` grows. A crashed encoder worker is replaced and the batch
 * it held is sent again, so a crash costs the recording a splice (< 0.15 s), not its rest.
 */
export class Recording {
  readonly mediaId: string;
  readonly startAt: number;
  readonly startWallMs: number;
  private readonly mixer: ChannelMixer;
  /** The mixer's counts when this recording started (a session's mixer outlives its recordings). */
  private readonly lateAtStart: number;
  /** The mixer's late count when the last frames were taken (what comes later is after the recording). */
  private lateAtEnd: number | null = null;
  private readonly silentAtStart: number[];
  /** The clock position the recording ends at, once it is stopping (no frame past it is taken). */
  private endAt = Number.POSITIVE_INFINITY;
  private mp3: SpoolFile | null = null;
  private wav: SpoolFile | null = null;
  private wavHead: WavHeader | null = null;
  private chain: Promise<void> = Promise.resolve();
  private inflight = false;
  private error: Error | null = null;
  private readonly events: RecordingEvent[] = [];
  private stopping: Promise<FinalizedRecording> | null = null;
  private opening: Promise<void> | null = null;
  /** The files and the encoder are open: encoding may start. */
  private ready = false;
  /** Why the files could not be opened (the recording then has nothing to finalize). */
  openError: Error | null = null;
  private encodedSamples = 0;
  private encoderRestarts = 0;
  /** Longest the recording may be, in samples (MSML maxtime): it ends exactly there however late it is stopped. */
  maxSamples = Number.POSITIVE_INFINITY;

  /**
   * `start.at`: the clock position it starts at (its request's arrival; default now), no earlier than what `mixer`
   * still holds. `start.mediaId`: its media id, when the caller made it (`newMediaId`). `mixer`: the session's,
   * which has held its legs' audio all along (default: a new one starting at `start.at`).
   */
  constructor(
    private readonly deps: RecordingDeps,
    readonly ctx: Omit<RecordingContext, 'mediaId'>,
    start: { at?: number; mediaId?: string } = {},
    mixer?: ChannelMixer,
  ) {
    const at = Math.floor(start.at ?? deps.clock.now());
    this.mixer = mixer ?? new ChannelMixer(2, 2, at, mixerCapacity(deps.holdSamples, deps.batchSamples));
    this.startAt = Math.max(at, this.mixer.position);
    this.mixer.startAt(this.startAt);
    this.lateAtStart = this.mixer.lateSamples;
    this.silentAtStart = [...this.mixer.silentSamples];
    this.startWallMs = deps.clock.wallMs(this.startAt);
    this.mediaId = start.mediaId ?? newMediaId(ctx, this.startWallMs);
  }

  get mp3Path(): string {
    return join(this.deps.spoolDir, spoolNames(this.mediaId).mp3);
  }

  /** What a crash recovery needs to finish this recording's files: written at open, removed at finalize. */
  get openPath(): string {
    return join(this.deps.spoolDir, spoolNames(this.mediaId).open);
  }

  get wavPath(): string | null {
    return this.deps.wav ? join(this.deps.spoolDir, spoolNames(this.mediaId).wav) : null;
  }

  get failed(): Error | null {
    return this.error;
  }

  get paused(): boolean {
    return this.mixer.paused;
  }

  /** Samples filled with silence so far (no audio from a leg), summed over both slots. */
  get silentSamples(): number {
    return this.mixer.silentSamples.reduce((a, b, i) => a + b - (this.silentAtStart[i] ?? 0), 0);
  }

  /** Samples that reached the mixer after their position was encoded (dropped), summed over both slots. */
  get lateSamples(): number {
    return (this.lateAtEnd ?? this.mixer.lateSamples) - this.lateAtStart;
  }

  /** How far encoding is behind the clock beyond the planned wait for late packets, ms. */
  get lagMs(): number {
    return Math.max(0, (this.deps.clock.now() - this.deps.holdSamples - this.mixer.position) / SAMPLES_PER_MS);
  }

  /**
   * Creates the spool files and the encoder. Audio written meanwhile waits in the mixer (the clock started at
   * construction), so nothing from the recording's first instant is lost to a slow disk or a busy encoder pool.
   * Rejects with SpoolError / RecorderError and leaves nothing behind if it fails; later calls return the same promise.
   */
  open(): Promise<void> {
    this.opening ??= this.openFiles().then(
      () => {
        this.ready = true;
      },
      (err: Error) => {
        this.openError = err;
        throw err;
      },
    );
    return this.opening;
  }

  private async openFiles(): Promise<void> {
    try {
      // the recovery record first: any .part a crash leaves behind then has what it takes to finish it
      await writeJsonDurably(this.openPath, {
        schema: 1,
        ctx: this.ctx,
        mediaId: this.mediaId,
        startWallMs: this.startWallMs,
        format: this.deps.format,
        wav: this.deps.wav,
        leftChannel: this.deps.leftChannel,
        encryption: openEncryption(this.deps.encryption ?? null),
      } satisfies OpenRecord);
      this.mp3 = await SpoolFile.create(this.mp3Path);
      await this.mp3.append(infoFrame(this.deps.format, { frames: 0, samples: 0, fileBytes: 0 }));
      if (this.deps.wav && this.wavPath) {
        this.wavHead = wavHeader(this.deps.wav, 2);
        this.wav = await SpoolFile.create(this.wavPath);
        await this.wav.append(this.wavHead.bytes);
      }
      await this.deps.pool.open(this.mediaId, this.deps.format);
    } catch (err) {
      await this.mp3?.discard();
      await this.wav?.discard();
      await unlink(this.openPath).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Audio of input `slot` at clock position `at`, for a recording with a mixer of its own (a session writes into its
   * mixer itself). What lies before the recording's start (the packet playing when it started) is not part of it,
   * and not late either: only the part from the start on is kept.
   */
  write(slot: number, at: number, pcm: Int16Array): void {
    if (at >= this.startAt) {
      this.mixer.write(slot, at, pcm);
      return;
    }
    const skip = Math.ceil(this.startAt - at);
    if (skip < pcm.length) this.mixer.write(slot, at + skip, pcm.subarray(skip));
  }

  private note(type: string, at: number, detail?: Record<string, unknown>): void {
    this.events.push({ type, offsetMs: Math.round((at - this.startAt) / SAMPLES_PER_MS), time: new Date(this.deps.clock.wallMs(at)).toISOString(), ...(detail ? { detail } : {}) });
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

  /** Records a call event (hold, unhold, a SIPREC metadata update, ...) in the sidecar's history. */
  event(type: string, detail?: Record<string, unknown>): void {
    this.note(type, this.deps.clock.now(), detail);
  }

  /** The longest it may run, as a clock position. */
  private get limit(): number {
    return Math.min(this.endAt, this.startAt + this.maxSamples);
  }

  /**
   * The recording will end at clock position `at` (its stop instant): nothing past it is encoded, what arrives for
   * the span before it still goes in (`stop` takes it).
   */
  endsAt(at: number): void {
    this.endAt = Math.max(this.startAt, Math.min(this.endAt, Math.floor(at)));
  }

  /**
   * Encodes what is final, unless the previous batch is still being encoded: everything up to `reached` (the position
   * every live stream has delivered its audio up to: nothing more can arrive for the span before it), and in any case
   * everything older than the hold (a stream that is behind — silent, stalled, its sender holding packets back — is
   * waited for that long). Encoding close behind the streams keeps what a crash of the process can lose small; it
   * goes in whole batches (`batchSamples`), one message to the encoder and one write per batch.
   */
  tick(reached = Number.NEGATIVE_INFINITY): void {
    if (this.stopping || this.inflight || !this.ready) return;
    const now = this.deps.clock.now();
    const until = Math.min(Math.max(now - this.deps.holdSamples, Math.min(reached, now)), this.limit);
    // a whole batch, or the last of a recording at its length limit
    if (until - this.mixer.position < (this.deps.batchSamples ?? 0) && until < this.limit) return;
    this.emit(until);
  }

  /** Takes the mixer's frames up to `until` now, and queues their encoding and writing behind what is queued. */
  private emit(until: number): void {
    if (until <= this.mixer.position) return;
    const frames = this.mixer.take(until);
    const n = frames.channels[0].length;
    if (n === 0) return;
    this.encodedSamples += n;
    const wavBytes = this.wav && this.deps.wav ? interleave(frames.channels.map((c) => encodeG711(this.deps.wav as G711Law, c))) : null;
    const input = this.deps.format.channels === 1 ? [mixDown(frames.channels)] : frames.channels;
    this.inflight = true;
    this.chain = this.chain.then(async () => {
      try {
        // a batch taken before the files were open (a stop right after the start) waits for them; if they never
        // open there is nothing to write to (the stop reports why)
        if (!this.ready) await this.open().catch(() => undefined);
        if (this.openError) return;
        if (wavBytes) await this.wav?.append(wavBytes);
        if (!this.error) await this.mp3?.append(await this.encode(input));
      } catch (err) {
        this.fail(err as Error);
      } finally {
        this.inflight = false;
      }
    });
  }

  /** Encodes one batch; if the worker died under it, opens a fresh encoder and sends the batch again. */
  private async encode(input: Int16Array[]): Promise<Uint8Array> {
    for (;;) {
      try {
        return await this.deps.pool.encode(this.mediaId, input.map((c) => c.slice()));
      } catch (err) {
        if (!(err instanceof EncoderCrashError) || this.encoderRestarts >= MAX_ENCODER_RESTARTS) throw err;
        this.encoderRestarts++;
        this.deps.log.warn({ mediaId: this.mediaId, err: err.message, restarts: this.encoderRestarts }, 'encoder crashed; continuing on a new one');
        this.event('encoder.restart');
        await this.deps.pool.open(this.mediaId, this.deps.format);
        // the dead encoder's output may end inside a frame (a write torn by the crash): cut back to whole frames (CBR
        // at 8 kHz has no padding, every frame is the same size) so the new encoder's frames start on a boundary
        const fb = frameBytes(this.deps.format);
        if (this.mp3) await this.mp3.truncate(Math.floor(this.mp3.bytes / fb) * fb);
      }
    }
  }

  private fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    this.deps.log.error({ err, mediaId: this.mediaId }, 'recording failed; what was written so far is kept');
  }

  /**
   * Ends the recording at clock position `at` (default now; no later than its longest duration): takes the frames up
   * to it from the mixer at once — so a next recording of the session may start right there — then encodes them,
   * flushes the encoder, finalizes the spool files and writes the sidecar. Idempotent: later calls return the same
   * promise.
   */
  stop(reason: string, legs: LegSummary[], at = this.deps.clock.now()): Promise<FinalizedRecording> {
    if (!this.stopping) {
      this.endsAt(at);
      const stopAt = this.limit;
      if (this.mixer.paused) this.mixer.resume(stopAt);
      this.emit(stopAt);
      this.lateAtEnd = this.mixer.lateSamples;
      this.stopping = this.finish(reason, legs);
    }
    return this.stopping;
  }

  private async finish(reason: string, legs: LegSummary[]): Promise<FinalizedRecording> {
    // never opened: nothing to finalize (rejects with the open error)
    await this.open();
    await this.chain;
    if (!this.error) {
      try {
        await this.mp3?.append(await this.deps.pool.finish(this.mediaId));
      } catch (err) {
        this.fail(err as Error);
      }
    } else {
      await this.deps.pool.finish(this.mediaId).catch(() => undefined);
    }
    const mp3 = this.mp3 as SpoolFile;
    const fmt = this.deps.format;
    await mp3.writeAt(infoFrame(fmt, { frames: framesIn(fmt, mp3.bytes), samples: this.encodedSamples, fileBytes: mp3.bytes }), 0);
    await mp3.finalize();
    const names = spoolNames(this.mediaId);
    const files: Sidecar['files'] = { mp3: { name: names.mp3, size: mp3.bytes } };
    if (this.wav && this.wavHead && this.deps.wav) {
      for (const [at, bytes] of wavSizePatches(this.wavHead, this.wav.bytes - this.wavHead.bytes.length)) await this.wav.writeAt(bytes, at);
      await this.wav.finalize();
      files.wav = { name: names.wav, size: this.wav.bytes, codec: this.deps.wav, channels: 2 };
    }
    const enc = this.deps.encryption ?? null;
    const fin = await finalizeFiles(this.deps.spoolDir, this.ctx, this.mediaId, files, enc, {
      startWallMs: this.startWallMs,
      samples: this.encodedSamples,
      endReason: reason,
      truncated: this.error !== null,
      error: this.error?.message ?? null,
      channels: fmt.channels,
      kbps: fmt.kbps,
      leftChannel: this.deps.leftChannel,
      lateSamples: this.lateSamples,
      events: this.events,
      legs,
    });
    if (enc && fin.encryptMs !== null) this.deps.log.info({ mediaId: this.mediaId, certificates: enc.recipients.map((r) => `${certAlias(r)} ${r.subject}`), cipher: enc.cipher, ms: Math.round(fin.encryptMs) }, 'recording encrypted');
    this.deps.log.info({ mediaId: this.mediaId, durationMs: fin.sidecar.durationMs, bytes: mp3.bytes, reason }, 'recording finalized');
    if (this.lateSamples > 0) this.deps.log.warn({ mediaId: this.mediaId, lateMs: this.lateSamples / SAMPLES_PER_MS }, 'audio arrived after its place in the recording was encoded and was dropped');
    return { ...fin, id: this.ctx.id, silentSamples: this.silentSamples, lateSamples: this.lateSamples };
  }
}
