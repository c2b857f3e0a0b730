#!/usr/bin/env node
import { mkdirSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { basename, resolve } from 'node:path';
import Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import { encoderWorkers, instanceId, loadConfig, mediaWorkers, mp3Format, redacted, type Config } from './config.js';
import { ConfigError } from './errors.js';
import { loadProfiles, ProfileSource } from './profiles.js';
import { AlertToneCache } from './media/alert-tone-file.js';
import { DeliveryQueue, pendingSidecars } from './jobs/delivery-queue.js';
import { RtpPortPool } from './media/rtp-port-pool.js';
import { udpEngineBinding } from './media/udp-engine.js';
import { collectGarbage } from './ops/collect-garbage.js';
import { closeSteps, exitOnSignals } from './ops/lifecycle.js';
import { createLogger } from './ops/logger.js';
import { IdleTrim } from './ops/idle-trim.js';
import { mmapThresholdToFix } from './ops/mmap-threshold.js';
import { LoadWatch } from './ops/load-watch.js';
import { MediaTally } from './ops/media-tally.js';
import { MediaPlane } from './plane/media-plane.js';
import { RecorderMetrics } from './ops/metrics.js';
import { OpsServer } from './ops/ops-server.js';
import { readiness } from './ops/readiness.js';
import { SpoolWatch } from './ops/spool-watch.js';
import { RecorderHeartbeat, sipUriFromHostports } from './ops/recorder-registry.js';
import { openEncryption } from './recording/recording.js';
import { recoverSpool } from './recording/spool-recovery.js';
import { probeDialogs } from './session/dialog-probe.js';
import { SessionRegistry } from './session/session-registry.js';
import { disconnectDrachtio, guardDrachtioWire, logWireFaults } from './sip/drachtio-wire-guard.js';
import { TrustedSources } from './sip/trusted-sources.js';
import { machineCpuWaitAvg10 } from './ops/cpu-pressure.js';
import { attachSipApp } from './sip/sip-app.js';
import { answerSiprecInvite } from './siprec/siprec-session.js';

export interface Recorder {
  srf: Srf;
  log: Logger;
  registry: SessionRegistry;
  delivery: DeliveryQueue | null;
  metrics: RecorderMetrics;
  /** The ops server's port, once listening. */
  opsPort: Promise<number>;
  /**
   * Graceful stop (SIGTERM): readiness false and new calls refused at once; live calls run to their end (up to
   * drain.callGraceSec); then every recording is finalized, the spool gets drain.deliveryGraceSec to be delivered,
   * and everything is closed. Idempotent: a second call returns the same promise.
   */
  drain(reason: string): Promise<void>;
  /** Stops waiting: finalizes every live recording now and skips the delivery wait (nothing is lost: it is spooled). */
  stop(reason: string): Promise<void>;
}

/** Wires the recorder from a validated config and connects to drachtio-server. */
export function startRecorder(config: Config): Recorder {
  const log = createLogger(config.log.level);
  log.info({ config: redacted(config) }, 'starting');
  // before the threads start: large blocks get mappings of their own (see mmap-threshold.ts)
  const binding = udpEngineBinding();
  const threshold = mmapThresholdToFix(process.env);
  if (threshold !== null && !(binding instanceof Error) && !binding.fixMmapThreshold(threshold)) log.warn({ bytes: threshold }, 'the C heap\'s mmap threshold could not be set');
  const spoolDir = resolve(config.spool.dir);
  const profiles = new ProfileSource(config, log.child({ part: 'profiles' }));
  // encryption.* as the default profile has it: its certificates were read and checked with the profiles
  const encryption = profiles.current.resolve('default')?.encryption ?? null;
  // the profiles' alert tones are read at start and at every reload, before a call needs them
  const tones = new AlertToneCache((src, why) => log.error({ tone: src, err: why }, 'alert tone cannot be read: recordings of its profiles run without it'));
  profiles.onProfiles = (p) => {
    for (const src of p.alertTones) tones.preload(src);
  };
  profiles.start();
  if (config.profiles.file) log.info({ file: config.profiles.file, profiles: profiles.current.names, requireKnown: config.profiles.requireKnown, reloadSec: config.profiles.reloadSec }, 'recording profiles loaded');
  for (const r of encryption?.recipients ?? []) {
    log.info({ certificate: r.source, subject: r.subject, fingerprint: r.fingerprint, validTo: r.validTo }, 'recordings are encrypted for this certificate');
    if (r.expired) log.warn({ certificate: r.source, validTo: r.validTo }, 'encryption certificate expired (encryption.allowExpired): replace it');
  }
  mkdirSync(spoolDir, { recursive: true });
  const registry = new SessionRegistry();
  const ports = new RtpPortPool(config.rtp.portMin, config.rtp.portMax);
  const hosts = mediaWorkers(config);
  const udp = udpMode(config, log);
  // the encoder threads are split among the media hosts, at least one each
  const encodersEach = Math.max(1, Math.ceil(encoderWorkers(config) / Math.max(1, hosts)));
  const plane = new MediaPlane({
    workers: hosts,
    ports,
    log: log.child({ part: 'media' }),
    config: {
      spoolDir,
      bindAddress: config.rtp.bindAddress,
      udp,
      jitterMs: config.rtp.jitterMs,
      maxSkewMs: config.rtp.maxSkewMs,
      horizonMs: config.rtp.horizonMs,
      encoder: { workers: encodersEach, engine: config.encoder.engine, quality: config.encoder.quality, batchMs: config.encoder.batchMs, nice: config.encoder.nice },
      logLevel: config.log.level,
      statusMs: 200,
      loadWindowMs: config.admission.windowMs,
    },
  });
  log.info({ mediaWorkers: hosts, encoderWorkersEach: encodersEach, udp }, hosts ? 'media workers started' : 'media runs in the main thread (media.workers 0)');
  const tally = new MediaTally();
  let draining = false;
  let drachtioConnected = false;
  let everConnected = false;
  let sipUri: string | null = config.cluster.sipUri || null;

  let metrics: RecorderMetrics | null = null;
  const delivery = config.delivery.enabled
    ? new DeliveryQueue(config.delivery, spoolDir, log.child({ part: 'delivery' }), instanceId(config), {
        stageDone: (stage, s) => metrics?.deliveryEvents.stageDone(stage, s),
        attemptFailed: (stage, reason) => metrics?.deliveryEvents.attemptFailed(stage, reason),
        deliveryFailed: () => metrics?.deliveryEvents.deliveryFailed(),
      }, (profile) => profiles.destinationOf(profile))
    : null;
  const spool = new SpoolWatch(spoolDir, config.spool, log.child({ part: 'spool' }));
  spool.start();
  const load = new LoadWatch(config.admission, () => plane.maxEncodeLagMs, log.child({ part: 'admission' }), () => plane.loopDelayP99Ms);
  load.start();
  metrics = new RecorderMetrics({
    registry,
    ports,
    plane,
    spool,
    delivery,
    tally,
    load,
    profiles,
    draining: () => draining,
    drachtioConnected: () => drachtioConnected,
    ready: () => ready().ready,
    certificates: () => [
      ...(encryption?.recipients ?? []).map((r) => ({ source: r.source, profile: '(encryption.*)', validTo: r.validTo })),
      ...profiles.current.names.flatMap((name) => (profiles.current.resolve(name)?.encryption?.recipients ?? []).map((r) => ({ source: r.source, profile: name, validTo: r.validTo }))),
    ],
  });
  const m = metrics;

  const id = instanceId(config);
  const heartbeat = config.cluster.enabled
    ? new RecorderHeartbeat(
        config.cluster.redisUrl,
        config.cluster.heartbeatMs,
        () => (sipUri && drachtioConnected ? { id, sipUri, maxCalls: config.cluster.maxCalls, activeCalls: registry.size, draining, at: Date.now() } : null),
        log.child({ part: 'heartbeat' }),
      )
    : null;

  // after a minute without calls every thread collects its garbage, and the C heap's free memory goes back to the
  // system (the trim needs the native engine's binding)
  const idleTrim = new IdleTrim(
    {
      collect: async () => {
        await plane.collectGarbage();
        collectGarbage();
      },
      trim: binding instanceof Error ? null : () => binding.trimMalloc(),
    },
    log.child({ part: 'memory' }),
  );
  idleTrim.calls(0);
  registry.onChange = () => {
    void heartbeat?.beat();
    idleTrim.calls(registry.size);
  };

  const ready = () =>
    readiness({
      draining,
      drachtioConnected,
      redisDownMs: delivery?.redisDownMs ?? 0,
      redisGraceMs: config.ops.redisGraceMs,
      freeRtpPorts: ports.available,
      spoolFull: spool.full,
    });

  let stopping: Promise<void> | null = null;
  let drainPromise: Promise<void> | null = null;
  let forceStop: () => void = () => undefined;
  const forced = new Promise<void>((r) => (forceStop = r));

  // drachtio-srf's wire parser would throw out of its socket handler (process exit) on a frame it cannot read
  const unguard = guardDrachtioWire(logWireFaults(log, () => m.wireFault()));
  const srf = new Srf();
  const trusted = new TrustedSources(config.sip.allowedSources);
  if (trusted.open) log.warn('sip.allowedSources is empty: any host that reaches drachtio-server may INVITE the recorder and start recordings');
  if (!config.ops.adminToken) log.info('ops.adminToken is empty: POST /drain and /media-workers/<n>/restart answer only on loopback');
  attachSipApp(srf, {
    trusted,
    // SIPREC recording sessions from SBCs (siprec.enabled), offered every initial INVITE first
    ...(config.siprec.enabled ? { siprec: answerSiprecInvite } : {}),
    config,
    log,
    registry,
    plane,
    draining: () => draining,
    refuseNew: () => spool.full ?? load.refusal(),
    maxCalls: config.cluster.maxCalls,
    observe: { invite: (status) => m.invite(status), msml: (verb, code) => m.msmlRequest(verb, code), refusedSource: (a) => m.refusedSource(a) },
    session: {
      recording: {
        format: mp3Format(config),
        wav: config.recording.wavCopy === 'off' ? null : config.recording.wavCopy,
        leftChannel: config.recording.leftChannel,
        encryption: openEncryption(encryption),
      },
      leftChannel: config.recording.leftChannel,
      maxDurationMs: config.recording.maxDurationSec * 1000,
      mediaTimeoutMs: config.rtp.timeoutSec * 1000,
      allowedDestHosts: config.delivery.allowedDestHosts,
      onFinalized: (r) => {
        log.info({ mp3: r.mp3Path, sidecar: r.sidecarPath, durationMs: r.sidecar.durationMs }, 'recording spooled');
        m.recordingFinalized(r);
        void delivery?.enqueue(basename(r.sidecarPath));
      },
      onFinalizeFailed: () => m.recordingNotFinalized(),
      onOpenFailed: () => m.recordingNotFinalized('open-failed'),
      onDialogLost: () => m.dialogLost(),
      tones,
    },
    profiles,
  });
  srf.on('connect', (err: Error, hostport: string) => {
    if (err) {
      log.error({ err }, 'drachtio connect failed');
      return;
    }
    drachtioConnected = true;
    sipUri = config.cluster.sipUri || sipUriFromHostports(hostport);
    log.info({ hostport, sipUri }, 'connected to drachtio-server');
    // back after a loss of the connection: drachtio-server may have restarted and forgotten the live dialogs
    if (everConnected) void probeDialogs(registry.all(), log.child({ part: 'sip' }));
    everConnected = true;
    void heartbeat?.beat();
  });
  // drachtio-srf re-emits its socket's close, though its typings list only SIP methods
  (srf as unknown as NodeJS.EventEmitter).on('close', () => {
    if (drachtioConnected) log.warn('drachtio-server connection closed; reconnecting');
    drachtioConnected = false;
  });
  srf.on('error', (err: Error) => log.warn({ err: err.message }, 'drachtio connection error; reconnecting'));

  const ops = new OpsServer(
    {
      metrics: async () => ({ contentType: m.contentType, body: await m.text() }),
      readiness: ready,
      status: async () => ({
        id,
        ...ready(),
        draining,
        calls: registry.size,
        mediaWorkers: plane.hosts(),
        udp,
        spool: await spool.refresh(),
        pendingRecordings: spool.state.pending,
        destinations: delivery?.health.all() ?? [],
        profiles: { version: profiles.current.resolve('default')?.version, names: profiles.current.names, lastReloadError: profiles.lastError },
        admission: { refusing: load.refusal(), lastReason: load.gate.lastReason, last: load.gate.last, machineCpuWaitAvg10Pct: machineCpuWaitAvg10() },
      }),
      drain: () => startDraining('POST /drain'),
      restartMediaWorker: (n) => plane.restartWorker(n),
    },
    log.child({ part: 'ops' }),
    config.ops.adminToken,
  );
  const opsPort = ops.listen(config.ops.port, config.ops.bindAddress);
  opsPort.catch((err: Error) => log.error({ err: err.message }, 'ops server could not listen'));

  // finish what a previous run left open before taking calls, then deliver everything in the spool
  void recoverSpool(spoolDir, log.child({ part: 'recovery' }))
    .catch((err: Error) => log.error({ err: err.message }, 'spool recovery failed'))
    .then(() => {
      delivery?.start();
      heartbeat?.start();
      if (!stopping) srf.connect({ host: config.drachtio.host, port: config.drachtio.port, secret: config.drachtio.secret });
    });

  const timeout = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

  const rec: Recorder = {
    srf,
    log,
    registry,
    delivery,
    metrics: m,
    opsPort,
    drain(reason) {
      if (!drainPromise) {
        drainPromise = (async () => {
          startDraining(reason);
          await Promise.race([registry.idle(), timeout(config.drain.callGraceSec * 1000), forced]);
          await finish(registry.size ? 'drain grace over' : reason);
        })();
      }
      return drainPromise;
    },
    stop(reason) {
      forceStop();
      return finish(reason);
    },
  };

  /** Stops taking new calls (readiness false, 503) without stopping anything: POST /drain, the preStop hook. */
  function startDraining(reason: string): void {
    if (draining) return;
    draining = true;
    void heartbeat?.beat();
    log.info({ reason, calls: registry.size, graceSec: config.drain.callGraceSec }, 'draining: refusing new calls, waiting for live ones to end');
  }

  /**
   * Finalizes every live recording, gives the spool drain.deliveryGraceSec to be delivered (not while Redis is away:
   * nothing could be), then closes everything. Each step is guarded and bounded (lifecycle.ts), so this ends
   * whatever is down: drachtio-server, Redis, WebDAV.
   */
  function finish(reason: string): Promise<void> {
    stopping ??= (async () => {
      draining = true;
      void heartbeat?.beat();
      log.info({ reason, calls: registry.size }, 'stopping: finalizing recordings');
      await closeSteps(
        [
          { name: 'recordings', timeoutMs: 60_000, run: () => registry.closeAll(reason) },
          { name: 'media workers', timeoutMs: 5000, run: () => plane.close() },
          { name: 'delivery wait', timeoutMs: config.drain.deliveryGraceSec * 1000 + 1000, run: () => waitForDelivery() },
          { name: 'delivery queue', timeoutMs: 10_000, run: () => delivery?.close() },
          { name: 'heartbeat', timeoutMs: 3000, run: () => heartbeat?.close() },
          { name: 'drachtio connection', timeoutMs: 1000, run: () => disconnectDrachtio(srf) },
          { name: 'ops server', timeoutMs: 3000, run: () => ops.close() },
          { name: 'spool watch', timeoutMs: 100, run: () => spool.close() },
          { name: 'load watch', timeoutMs: 100, run: () => load.close() },
          { name: 'idle trim', timeoutMs: 100, run: () => idleTrim.close() },
          { name: 'profiles watch', timeoutMs: 100, run: () => profiles.close() },
        ],
        log,
      );
      unguard();
      log.info('stopped');
    })();
    return stopping;
  }

  async function waitForDelivery(): Promise<void> {
    if (!delivery) return;
    const left = delivery.redisConnected
      ? await Promise.race([delivery.drained(config.drain.deliveryGraceSec * 1000), forced.then(() => false)])
      : false;
    if (left) return;
    const n = (await pendingSidecars(spoolDir)).length;
    if (n) log.warn({ recordings: n, redisConnected: delivery.redisConnected }, 'recordings left in the spool; the next start delivers them');
  }
  return rec;
}

export async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
    loadProfiles(config); // the profiles file is read and checked at start too: a bad one stops it here
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`msml-recorder: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const rec = startRecorder(config);
  // first signal: drain; second: finalize everything now (it is all spooled) and exit
  exitOnSignals(rec, rec.log);
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) void main();

/** media.udp resolved: native if asked for or, with auto, if it is built; js otherwise (warned with auto). */
function udpMode(config: Config, log: Logger): 'native' | 'js' {
  if (config.media.udp === 'js') return 'js';
  const binding = udpEngineBinding();
  if (!(binding instanceof Error)) return 'native';
  if (config.media.udp === 'native') throw new ConfigError(`media.udp is native but the native UDP engine cannot be loaded: ${binding.message}`);
  log.warn({ err: binding.message }, 'the native UDP engine is not built: RTP is read and relayed on the media threads (media.udp js: more CPU per call, a relay that waits behind recording work)');
  return 'js';
}
