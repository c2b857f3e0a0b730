/**
 * A media worker thread: one MediaHost, driven by plane commands from the main thread (see media-plane.ts). Its log
 * lines go to the main thread, which writes them with its own (one writer for stdout), tagged with its index.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../ops/logger.js';
import { MediaHost } from './media-host.js';
import type { HostConfig, PlaneMessage, PlaneRequest } from './plane-protocol.js';

export interface MediaWorkerData {
  config: HostConfig;
  index: number;
}

const port = parentPort;
if (!port) throw new Error('media-worker must run in a worker thread');
const data = workerData as MediaWorkerData;
const log = createLogger(data.config.logLevel, { write: (line: string) => port.postMessage({ kind: 'log', line } satisfies PlaneMessage) }).child({ mediaWorker: data.index });
const host = new MediaHost(data.config, log, (m) => port.postMessage(m));
port.on('message', (req: PlaneRequest) => host.receive(req));
