/**
 * Worker thread: owns many MP3 encoders, keyed by recording id. Messages are handled in order, so each
 * recording's chunks come back in the order they were sent.
 */
import { parentPort } from 'node:worker_threads';
import { createLameJsEncoder, type Mp3Encoder, type Mp3Format } from './mp3-encoder.js';

export type WorkerRequest =
  | { op: 'open'; msgId: number; id: string; format: Mp3Format }
  | { op: 'encode'; msgId: number; id: string; channels: Int16Array[] }
  | { op: 'close'; msgId: number; id: string }
  | { op: 'crash'; msgId: number };

export type WorkerReply = { msgId: number; bytes?: Uint8Array; error?: string };

const encoders = new Map<string, Mp3Encoder>();
const port = parentPort;
if (!port) throw new Error('encoder-worker must run in a worker thread');

port.on('message', (m: WorkerRequest) => {
  try {
    switch (m.op) {
      case 'open':
        encoders.set(m.id, createLameJsEncoder(m.format));
        port.postMessage({ msgId: m.msgId } satisfies WorkerReply);
        return;
      case 'encode': {
        const enc = encoders.get(m.id);
        if (!enc) throw new Error(`no encoder for recording ${m.id}`);
        const bytes = enc.encode(m.channels);
        port.postMessage({ msgId: m.msgId, bytes } satisfies WorkerReply, [bytes.buffer as ArrayBuffer]);
        return;
      }
      case 'close': {
        const enc = encoders.get(m.id);
        encoders.delete(m.id);
        const bytes = enc ? enc.flush() : new Uint8Array(0);
        port.postMessage({ msgId: m.msgId, bytes } satisfies WorkerReply, [bytes.buffer as ArrayBuffer]);
        return;
      }
      case 'crash':
        // test hook: lets the pool's crash handling be exercised for real
        process.exit(70);
    }
  } catch (err) {
    port.postMessage({ msgId: m.msgId, error: (err as Error).message } satisfies WorkerReply);
  }
});
