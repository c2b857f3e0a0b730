#!/usr/bin/env node
import { mkdirSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { basename, resolve } from 'node:path';
import Srf from 'drachtio-srf';
import { encoderWorkers, loadConfig, mp3Format, redacted, type Config } from './config.js';
import { ConfigError } from './errors.js';
import { DeliveryQueue } from './jobs/delivery-queue.js';
import { RtpPortPool } from './media/rtp-port-pool.js';
import { systemClock } from './media/sample-clock.js';
import { createLogger } from './ops/logger.js';
import { EncoderPool } from './recording/encoder-pool.js';
import { recoverSpool } from './recording/spool-recovery.js';
import { SessionRegistry } from './session/session-registry.js';
import { attachSipApp } from './sip/sip-app.js';

export interface Recorder {
  srf: Srf;
  registry: SessionRegistry;
  delivery: DeliveryQueue | null;
  /** Finalizes every recording, closes the pool and disconnects. Idempotent. */
  stop(reason: string): Promise<void>;
}

/** Wires the recorder from a validated config and connects to drachtio-server. */
export function startRecorder(config: Config): Recorder {
  const log = createLogger(config.log.level);
  log.info({ config: redacted(config) }, 'starting');
  const spoolDir = resolve(config.spool.dir);
  mkdirSync(spoolDir, { recursive: true });
  const pool = new EncoderPool(encoderWorkers(config), log.child({ part: 'encoder' }));
  const registry = new SessionRegistry();
  const ports = new RtpPortPool(config.rtp.portMin, config.rtp.portMax);
  let draining = false;
  const delivery = config.delivery.enabled ? new DeliveryQueue(config.delivery, spoolDir, log.child({ part: 'delivery' })) : null;

  let stopping: Promise<void> | null = null;
  const srf = new Srf();
  attachSipApp(srf, {
    config,
    log,
    registry,
    ports,
    draining: () => draining,
    session: {
      recording: {
        pool,
        spoolDir,
        clock: systemClock,
        format: mp3Format(config),
        wav: config.recording.wavCopy === 'off' ? null : config.recording.wavCopy,
        holdSamples: ((config.rtp.jitterMs + 60) * 8000) / 1000,
        leftChannel: config.recording.leftChannel,
      },
      leftChannel: config.recording.leftChannel,
      maxDurationMs: config.recording.maxDurationSec * 1000,
      allowedDestHosts: config.delivery.allowedDestHosts,
      onFinalized: (r) => {
        log.info({ mp3: r.mp3Path, sidecar: r.sidecarPath, durationMs: r.sidecar.durationMs }, 'recording spooled');
        void delivery?.enqueue(basename(r.sidecarPath));
      },
    },
  });
  srf.on('connect', (err: Error, hostport: string) => {
    if (err) log.error({ err }, 'drachtio connect failed');
    else log.info({ hostport }, 'connected to drachtio-server');
  });
  srf.on('error', (err: Error) => log.warn({ err: err.message }, 'drachtio connection error; reconnecting'));
  // finish what a previous run left open before taking calls, then deliver everything in the spool
  void recoverSpool(spoolDir, log.child({ part: 'recovery' }))
    .catch((err: Error) => log.error({ err: err.message }, 'spool recovery failed'))
    .then(() => {
      delivery?.start();
      if (!stopping) srf.connect({ host: config.drachtio.host, port: config.drachtio.port, secret: config.drachtio.secret });
    });

  return {
    srf,
    registry,
    delivery,
    stop(reason) {
      if (!stopping) {
        stopping = (async () => {
          draining = true;
          log.info({ reason, calls: registry.size }, 'stopping: finalizing recordings');
          await registry.closeAll(reason);
          await pool.close();
          await delivery?.close();
          srf.disconnect();
          log.info('stopped');
        })();
      }
      return stopping;
    },
  };
}

export async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`msml-recorder: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const rec = startRecorder(config);
  const onSignal = (sig: string): void => {
    void rec.stop(sig).then(() => process.exit(0));
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) void main();
