import { Mp3Encoder as LameJs } from '@breezystack/lamejs';
import { createMp3Encoder, type WasmMediaEncoder } from 'wasm-media-encoders';

/** One MP3 stream. Input is planar 16-bit PCM at 8 kHz, one array per channel. */
export interface Mp3Encoder {
  encode(channels: Int16Array[]): Uint8Array;
  flush(): Uint8Array;
  /** Frees what the encoder holds (WASM memory). */
  free(): void;
}

export interface Mp3Format {
  channels: 1 | 2;
  kbps: 8 | 16 | 32;
}

/** Which LAME: the WebAssembly build (default, ~2-2.5x faster) or the pure-JS port. */
export type EncoderEngine = 'wasm' | 'lamejs';

/** Makes encoders of one engine; `ready` resolves once it can (the WASM module compiles once per thread). */
export interface EncoderFactory {
  ready: Promise<void>;
  create(format: Mp3Format): Mp3Encoder;
}

/** LAME in pure JS (`@breezystack/lamejs`): CBR, true stereo (not joint), no bit reservoir. */
export function lameJsFactory(): EncoderFactory {
  return {
    ready: Promise.resolve(),
    create(format) {
      const enc = new LameJs(format.channels, 8000, format.kbps);
      return {
        encode(ch) {
          const out = format.channels === 2 ? enc.encodeBuffer(ch[0], ch[1]) : enc.encodeBuffer(ch[0]);
          return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
        },
        flush() {
          const out = enc.flush();
          return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
        },
        free() {},
      };
    },
  };
}

type EncoderInternals = { mimeType: string; module: unknown; parseParams: unknown; ref: number; channelCount: number };

/**
 * LAME 3.100 compiled to WebAssembly (`wasm-media-encoders`): CBR at 8 kHz MPEG-2.5, LAME's own stereo mode (joint
 * where the channels allow; the parties still decode to separate channels). One WebAssembly instance per thread
 * serves every recording of that thread: each encoder is its own LAME context (`ref`) in the shared instance's
 * memory, ~0.5 MB each, instead of an instance (and a compile) per recording. This reaches into the 0.7.0 wrapper's
 * fields (`module`, `ref`); the version is pinned and the unit tests encode through it.
 */
export function wasmLameFactory(): EncoderFactory {
  let base: WasmMediaEncoder<'audio/mpeg'> | null = null;
  const ready = createMp3Encoder().then((b) => {
    base = b;
  });
  return {
    ready,
    create(format) {
      if (!base) throw new Error('WASM LAME is not loaded yet');
      const b = base as unknown as EncoderInternals;
      const enc = Object.create(Object.getPrototypeOf(base) as object) as WasmMediaEncoder<'audio/mpeg'>;
      const own = enc as unknown as EncoderInternals;
      Object.assign(own, { mimeType: b.mimeType, module: b.module, parseParams: b.parseParams, ref: 0, channelCount: 0 });
      enc.configure({ sampleRate: 8000, channels: format.channels, bitrate: format.kbps, outputSampleRate: 8000 });
      const f32 = format.channels === 2 ? [new Float32Array(0), new Float32Array(0)] : [new Float32Array(0)];
      return {
        encode(ch) {
          const n = ch[0].length;
          for (let c = 0; c < f32.length; c++) {
            if (f32[c].length < n) f32[c] = new Float32Array(Math.max(n, 2048));
            const src = ch[c];
            const dst = f32[c];
            for (let i = 0; i < n; i++) dst[i] = src[i] / 32768;
          }
          // the returned bytes live in WASM memory and are overwritten by the next call: copy
          return enc.encode(f32.map((a) => a.subarray(0, n))).slice();
        },
        flush() {
          return enc.finalize().slice();
        },
        free() {
          const m = own.module as { enc_free(ref: number): void };
          if (own.ref) m.enc_free(own.ref);
          own.ref = 0;
        },
      };
    },
  };
}

export function encoderFactory(engine: EncoderEngine): EncoderFactory {
  return engine === 'wasm' ? wasmLameFactory() : lameJsFactory();
}
