/**
 * Worker thread: owns many MP3 encoders, keyed by recording id, all made by one engine (one WebAssembly instance
 * per thread for the WASM LAME). Requests come in batches (one message per pool turn, whatever the number of
 * recordings) and are handled in order, so each recording's chunks come back in the order they were sent; the
 * replies of a batch go back in one message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../media/thread-priority.js';
import { collectGarbage } from '../ops/collect-garbage.js';
import { DEFAULT_LAME_QUALITY, encoderFactory, type EncoderEngine, type Mp3Encoder, type Mp3Format } from './mp3-encoder.js';

export type WorkerItem =
  | { op: 'open'; msgId: number; id: string; format: Mp3Format }
  | { op: 'encode'; msgId: number; id: string; channels: Int16Array[] }
  | { op: 'close'; msgId: number; id: string }
  /** The thread's idle garbage collection (see collectGarbage). */
  | { op: 'gc'; msgId: number };

export type WorkerRequest = { op: 'batch'; items: WorkerItem[] } | { op: 'crash' };

export type WorkerReply = { msgId: number; bytes?: Uint8Array; error?: string };

export interface EncoderWorkerData {
  engine: EncoderEngine;
  quality: number;
  /** The thread's nice value (encoder.nice); 0: as the process. */
  nice?: number;
}

const encoders = new Map<string, Mp3Encoder>();
const port = parentPort;
if (!port) throw new Error('encoder-worker must run in a worker thread');
const data = workerData as EncoderWorkerData | undefined;
const factory = encoderFactory(data?.engine ?? 'wasm', data?.quality ?? DEFAULT_LAME_QUALITY);
if (data?.nice) lowerThreadPriority(data.nice);

function handle(m: WorkerItem): WorkerReply {
  try {
    switch (m.op) {
      case 'open':
        encoders.get(m.id)?.free();
        encoders.set(m.id, factory.create(m.format));
        return { msgId: m.msgId };
      case 'encode': {
        const enc = encoders.get(m.id);
        if (!enc) throw new Error(`no encoder for recording ${m.id}`);
        return { msgId: m.msgId, bytes: enc.encode(m.channels) };
      }
      case 'close': {
        const enc = encoders.get(m.id);
        encoders.delete(m.id);
        const bytes = enc ? enc.flush() : new Uint8Array(0);
        enc?.free();
        return { msgId: m.msgId, bytes };
      }
      case 'gc':
        collectGarbage();
        return { msgId: m.msgId };
    }
  } catch (err) {
    return { msgId: m.msgId, error: (err as Error).message };
  }
}

// requests that arrive while the WASM module compiles wait for it, in order
let queue: Promise<void> = factory.ready;
port.on('message', (m: WorkerRequest) => {
  if (m.op === 'crash') process.exit(70); // test hook: lets the pool's crash handling be exercised for real
  queue = queue.then(() => {
    const replies = m.items.map(handle);
    const transfer = replies.flatMap((r) => (r.bytes ? [r.bytes.buffer as ArrayBuffer] : []));
    port.postMessage(replies, transfer);
  });
});
