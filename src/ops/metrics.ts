import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeliveryEvents, DeliveryQueue } from '../jobs/delivery-queue.js';
import type { RtpPortPool } from '../media/rtp-port-pool.js';
import type { MediaPlane } from '../plane/media-plane.js';
import type { FinalizedRecording } from '../recording/recording.js';
import type { SessionRegistry } from '../session/session-registry.js';
import type { LoadWatch } from './load-watch.js';
import type { SpoolState, SpoolWatch } from './spool-watch.js';
import { NO_MEDIA_AFTER_MS, type MediaTally, type StreamCounts } from './media-tally.js';
import { SAMPLE_RATE } from '../media/sample-clock.js';
import { SourceLabels } from './source-labels.js';
import { ownMemory, type ThreadMemory } from './thread-memory.js';

/** What the metrics read at scrape time. */
export interface MetricSources {
  registry: SessionRegistry;
  ports: RtpPortPool;
  /** The media hosts: RTP counts, encode queues and lag, as they last reported. */
  plane: MediaPlane;
  spool: SpoolWatch;
  delivery: DeliveryQueue | null;
  tally: MediaTally;
  draining: () => boolean;
  drachtioConnected: () => boolean;
  /** Admission by measured load (null: not checked). */
  load?: LoadWatch | null;
  /** The profiles file and its reloads. */
  profiles?: { reloads: number; reloadFailures: number };
  /** Whether the recorder is ready (/readyz). */
  ready?: () => boolean;
  /** The encryption certificates in use (global and per profile): where from, for which profile, valid until. */
  certificates?: () => { source: string; profile: string; validTo: string }[];
}

const PREFIX = 'msmlrec_';

/** Counter whose value is computed at scrape time from a monotonic total. */
function derivedCounter(registers: Registry[], name: string, help: string, total: () => number): Counter {
  let reported = 0;
  return new Counter({
    name: PREFIX + name,
    help,
    registers,
    collect() {
      const t = total();
      if (t > reported) {
        this.inc(t - reported);
        reported = t;
      }
    },
  });
}

/**
 * The recorder's Prometheus metrics. Event counters (INVITEs, MSML requests, recordings, uploads) are counted where
 * things happen; media counters and gauges are read from the live sessions and the tally of finished ones when
 * Prometheus scrapes, so the packet path does no metrics work.
 */
export class RecorderMetrics {
  readonly registry = new Registry();
  private readonly invites: Counter;
  private readonly refusedSources: Counter;
  private readonly sourceLabels = new SourceLabels();
  private readonly msml: Counter;
  private readonly recordings: Counter;
  private readonly recordedSeconds: Counter;
  private readonly uploadSeconds: Histogram;
  private readonly uploadFailures: Counter;
  private readonly deliveriesFailed: Counter;
  private readonly wireFaults: Counter;
  private readonly encryptedFiles: Counter;
  private readonly encryptSeconds: Histogram;
  private readonly dialogsLost: Counter;

  constructor(private readonly src: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    this.refusedSources = new Counter({ name: `${PREFIX}sip_refused_sources_total`, help: 'INVITEs refused with 403: their source is not in sip.allowedSources, by source address (the first 100; then "other")', labelNames: ['source'], registers });
    this.invites = new Counter({ name: `${PREFIX}invites_total`, help: 'Initial INVITEs by final status', labelNames: ['status'], registers });
    this.msml = new Counter({ name: `${PREFIX}msml_requests_total`, help: 'MSML requests by verb and result code', labelNames: ['verb', 'result'], registers });
    this.recordings = new Counter({ name: `${PREFIX}recordings_total`, help: 'Recordings finished, by end reason', labelNames: ['reason'], registers });
    this.recordedSeconds = new Counter({ name: `${PREFIX}recorded_seconds_total`, help: 'Audio recorded into finished recordings, seconds', registers });
    this.uploadSeconds = new Histogram({
      name: `${PREFIX}upload_duration_seconds`,
      help: 'Time of a successful delivery step: put (WebDAV MKCOL+PUT) or metadata (POST)',
      labelNames: ['stage'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.uploadFailures = new Counter({ name: `${PREFIX}upload_failures_total`, help: 'Failed delivery attempts by stage and reason', labelNames: ['stage', 'reason'], registers });
    this.dialogsLost = new Counter({ name: `${PREFIX}sip_dialogs_lost_total`, help: 'Live SIP dialogs drachtio-server no longer knew after a reconnect (it restarted): their calls end by their media, as sip-dialog-lost', registers });
    this.encryptedFiles = new Counter({ name: `${PREFIX}encrypted_files_total`, help: 'Recording files encrypted as CMS EnvelopedData (MP3 and WAV copies)', registers });
    this.encryptSeconds = new Histogram({
      name: `${PREFIX}encrypt_duration_seconds`,
      help: "Time to encrypt a finished recording's files",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.deliveriesFailed = new Counter({ name: `${PREFIX}deliveries_failed_total`, help: 'Recordings whose delivery job failed for good (see `msml-recorder jobs list`)', registers });

    this.wireFaults = new Counter({
      name: `${PREFIX}drachtio_wire_faults_total`,
      help: 'Frames from drachtio-server that drachtio-srf could not handle and that were skipped (the connection stays up)',
      registers,
    });

    // the hosts' last reports (every media.statusMs), summed once per scrape for the RTP counters
    let mediaAt = -Infinity;
    let mediaSum: StreamCounts | null = null;
    const media = (): StreamCounts => {
      const now = performance.now();
      if (!mediaSum || now - mediaAt > 50) {
        mediaSum = src.plane.counts();
        mediaAt = now;
      }
      return mediaSum;
    };
    const rtp: [keyof StreamCounts, string, string][] = [
      ['received', 'rtp_packets_total', 'RTP packets received'],
      ['lost', 'rtp_lost_total', 'RTP packets never received (sequence gaps given up after the jitter wait)'],
      ['late', 'rtp_late_total', 'RTP packets that arrived after their place was already played out'],
      ['duplicates', 'rtp_duplicates_total', 'Duplicate RTP packets'],
      ['ssrcChanges', 'rtp_ssrc_changes_total', 'SSRC changes within a stream'],
      ['latePlaced', 'rtp_backlog_placed_total', 'RTP packets that arrived more than rtp.maxSkewMs late (a stall of the recorder or of the sender) and were still recorded at their place'],
      ['malformed', 'rtp_malformed_total', 'Datagrams on RTP ports that were not RTP'],
      ['srtpRejected', 'srtp_auth_failed_total', 'SRTP packets that failed authentication (forged, corrupted or under another key): dropped, neither relayed nor recorded'],
      ['relayed', 'rtp_relayed_total', 'RTP packets relayed to the other party'],
      ['transcoded', 'rtp_relay_transcoded_total', 'Relayed packets converted between PCMU and PCMA'],
      ['relayDropped', 'rtp_relay_dropped_total', 'RTP packets not relayed (no peer, peer on hold or without address)'],
      ['engineDropped', 'rtp_engine_dropped_total', 'Datagrams the native UDP engine dropped because a media thread left 256 MB of them unread (audio lost); should stay 0'],
      ['relaySendErrors', 'rtp_relay_send_errors_total', 'Relayed packets the kernel refused to send (native UDP engine)'],
    ];
    for (const [k, name, help] of rtp) derivedCounter(registers, name, help, () => media()[k]);
    // finished recordings' samples (the tally) plus those of the live ones, in channel-seconds
    const recordingSeconds = (field: 'silentSamples' | 'lateSamples') => (): number => {
      return (src.tally[field] + src.plane.liveSamples(field)) / SAMPLE_RATE;
    };
    derivedCounter(registers, 'silence_filled_seconds_total', 'Silence written in place of missing audio (gaps, hold, silent legs), channel-seconds', recordingSeconds('silentSamples'));
    derivedCounter(registers, 'audio_dropped_late_seconds_total', 'Audio that reached a recording after its place was already encoded (a stall of the recorder or of a sender longer than rtp.horizonMs), channel-seconds; should stay 0', recordingSeconds('lateSamples'));
    derivedCounter(registers, 'streams_without_media_total', 'Media streams that ended without receiving any RTP', () => src.plane.streamsWithoutMedia);

    const gauge = (name: string, help: string, value: () => number | Promise<number>): Gauge =>
      new Gauge({
        name: PREFIX + name,
        help,
        registers,
        async collect() {
          this.set(await value());
        },
      });
    gauge('calls_active', 'Live recording sessions (conf-ids)', () => src.registry.size);
    gauge('legs_active', 'Live SIP dialogs (call parties)', () => src.registry.all().reduce((n, s) => n + s.legs.filter((l) => !l.ended).length, 0));
    gauge('recordings_active', 'Recordings being written', () => src.registry.all().filter((s) => s.recording).length);
    gauge('streams_no_media', `Live media streams, not on hold, with no RTP for ${NO_MEDIA_AFTER_MS / 1000} s`, () => src.plane.streamsNoMedia);
    gauge('rtp_ports_in_use', 'RTP ports in use', () => src.ports.inUse);
    gauge('rtp_ports_free', 'RTP ports free', () => src.ports.available);
    gauge('encode_queue_depth', 'Encode requests waiting for a worker', () => src.plane.encodeQueueDepth);
    gauge('encode_oldest_pending_seconds', 'Age of the oldest unanswered encode request', () => src.plane.encodeOldestPendingMs / 1000);
    gauge('encode_lag_seconds', 'Largest encode lag of a live recording (how far encoding is behind the clock)', () => src.plane.maxEncodeLagMs / 1000);
    gauge('media_workers', 'Media worker threads running', () => src.plane.hosts().length);
    derivedCounter(registers, 'media_worker_exits_total', 'Media workers that died (their calls ended, their recordings were finished from the spool); each is replaced', () => src.plane.workerExits);
    new Gauge({
      name: `${PREFIX}event_loop_delay_p99_seconds`,
      help: "p99 event-loop delay over the admission check's last window, per thread: main (SIP, MSML, delivery) and each media worker",
      labelNames: ['thread'],
      registers,
      collect() {
        this.reset();
        this.set({ thread: 'main' }, (src.load?.mainLoopDelayP99Ms ?? 0) / 1000);
        for (const h of src.plane.hosts()) this.set({ thread: `media-${h.index}` }, h.loopDelayP99Ms / 1000);
      },
    });
    // each JavaScript thread is a V8 isolate of its own: the default nodejs_heap_* gauges see the main thread's only
    const threadMemory = (field: keyof ThreadMemory, name: string, help: string): void => {
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        labelNames: ['thread'],
        registers,
        collect() {
          this.reset();
          this.set({ thread: 'main' }, ownMemory()[field]);
          for (const h of src.plane.hosts()) {
            if (!h.memory) continue;
            this.set({ thread: `media-${h.index}` }, h.memory.host[field]);
            h.memory.encoders.forEach((m, k) => m && this.set({ thread: `encoder-${h.index}.${k}` }, m[field]));
          }
        },
      });
    };
    threadMemory('heapUsed', 'thread_heap_used_bytes', 'V8 heap in use, per JavaScript thread: main, each media worker, each of its encoder threads');
    threadMemory('heapTotal', 'thread_heap_total_bytes', 'V8 heap reserved, per JavaScript thread');
    threadMemory('external', 'thread_external_bytes', "Memory outside the V8 heap held by a thread's objects (ArrayBuffers, the encoders' WebAssembly memory), per thread");
    gauge('overloaded', '1 while new calls get 503 because the recorder is behind (admission.*)', () => (src.load?.refusal() ? 1 : 0));
    derivedCounter(registers, 'config_reloads_total', 'Changes of the profiles file taken into use', () => src.profiles?.reloads ?? 0);
    derivedCounter(registers, 'config_reload_failures_total', 'Changes of the profiles file refused (invalid; the running profiles stay)', () => src.profiles?.reloadFailures ?? 0);
    derivedCounter(registers, 'overload_windows_total', 'Admission windows whose load was over an admission.* limit', () => src.load?.overloadWindows ?? 0);
    gauge('draining', '1 while draining (no new calls)', () => (src.draining() ? 1 : 0));
    gauge('drachtio_connected', '1 while connected to drachtio-server', () => (src.drachtioConnected() ? 1 : 0));
    gauge('ready', '1 while ready (/readyz 200): taking new calls', () => (src.ready?.() ? 1 : 0));
    new Gauge({
      name: `${PREFIX}certificate_expiry_timestamp_seconds`,
      help: 'When an encryption certificate in use (encryption.certificates, a profile\'s encryptionCertificates) expires, Unix time',
      labelNames: ['profile', 'certificate'],
      registers,
      collect() {
        this.reset();
        for (const c of src.certificates?.() ?? []) this.set({ profile: c.profile, certificate: c.source }, Math.round(Date.parse(c.validTo) / 1000));
      },
    });
    gauge('redis_connected', '1 while the delivery queue is connected to Redis', () => (src.delivery?.redisConnected ? 1 : 0));

    let look: Promise<SpoolState> | null = null;
    const spool = (): Promise<SpoolState> => {
      // one look at the spool per scrape, shared by its gauges
      look ??= src.spool.refresh().finally(() => setTimeout(() => (look = null), 100));
      return look;
    };
    gauge('spool_bytes', 'Bytes in the spool (recordings in progress and waiting for delivery)', async () => (await spool()).bytes);
    gauge('spool_files', 'Files in the spool', async () => (await spool()).files);
    gauge('spool_pending_recordings', 'Finalized recordings in the spool not yet delivered', async () => (await spool()).pending);
    gauge('spool_oldest_pending_seconds', 'Age of the oldest recording in the spool not yet delivered (0: none)', async () => (await spool()).oldestPendingSec);
    gauge('spool_free_bytes', "Bytes free on the spool's disk", async () => Math.min((await spool()).freeBytes, Number.MAX_SAFE_INTEGER));
    gauge('spool_full', '1 while the spool is over spool.maxBytes or its disk under spool.minFreeBytes (new calls get 503)', async () => {
      await spool();
      return src.spool.full ? 1 : 0;
    });
    new Gauge({
      name: `${PREFIX}destination_up`,
      help: 'Whether the last delivery attempt to a destination (kind webdav or metadata) succeeded; its last error is in /status',
      labelNames: ['kind', 'destination'],
      registers,
      collect() {
        this.reset();
        for (const d of src.delivery?.health.all() ?? []) this.set({ kind: d.kind, destination: d.destination }, d.up ? 1 : 0);
      },
    });

    new Gauge({
      name: `${PREFIX}delivery_jobs`,
      help: 'Delivery jobs in Redis by state (absent while Redis is unreachable)',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        const counts = await src.delivery?.jobCounts();
        if (counts) for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }

  /** An INVITE refused (403) because its source is not in sip.allowedSources. */
  dialogLost(): void {
    this.dialogsLost.inc();
  }

  refusedSource(address: string | undefined): void {
    this.refusedSources.inc({ source: this.sourceLabels.of(address) });
  }

  invite(status: number): void {
    this.invites.inc({ status: String(status) });
  }

  msmlRequest(verb: string, result: number): void {
    this.msml.inc({ verb, result: String(result) });
  }

  /** A recording whose finalize failed (reason finalize-failed) or whose files could not be opened (open-failed). */
  recordingNotFinalized(reason: 'finalize-failed' | 'open-failed' = 'finalize-failed'): void {
    this.recordings.inc({ reason });
  }

  wireFault(): void {
    this.wireFaults.inc();
  }

  recordingFinalized(r: FinalizedRecording): void {
    this.recordings.inc({ reason: r.sidecar.endReason ?? 'unknown' });
    if (r.encryptMs !== null) {
      this.encryptedFiles.inc(r.sidecar.files.wav ? 2 : 1);
      this.encryptSeconds.observe(r.encryptMs / 1000);
    }
    this.recordedSeconds.inc(r.sidecar.durationMs / 1000);
    this.src.tally.silentSamples += r.silentSamples;
    this.src.tally.lateSamples += r.lateSamples;
  }

  /** Hooks for the delivery queue. */
  readonly deliveryEvents: DeliveryEvents = {
    stageDone: (stage, seconds) => this.uploadSeconds.observe({ stage }, seconds),
    attemptFailed: (stage, reason) => this.uploadFailures.inc({ stage, reason }),
    deliveryFailed: () => this.deliveriesFailed.inc(),
  };

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

