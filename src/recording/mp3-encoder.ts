import { Mp3Encoder as LameJs } from '@breezystack/lamejs';
import { LAME_WASM_BASE64 } from './lame-wasm/lame-wasm-binary.js';

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

/** LAME quality when none is configured (conf/default.yaml `encoder.quality` says why 7). */
export const DEFAULT_LAME_QUALITY = 7;

/** Which LAME: our WebAssembly build (default; several times faster, see the benchmark) or the pure-JS port. */
export type EncoderEngine = 'wasm' | 'lamejs';

/** Makes encoders of one engine; `ready` resolves once it can (the WASM module compiles once per thread). */
export interface EncoderFactory {
  ready: Promise<void>;
  create(format: Mp3Format): Mp3Encoder;
  /** Bytes of encoder memory held outside the JS heap now (the WASM instance's memory; 0 without one). */
  memoryBytes(): number;
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
    memoryBytes: () => 0,
  };
}

interface LameExports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  rec_open(channels: number, kbps: number, quality: number): number;
  rec_encode(g: number, left: number, right: number, samples: number, out: number, outSize: number): number;
  rec_flush(g: number, out: number, outSize: number): number;
  rec_close(g: number): void;
  rec_alloc(bytes: number): number;
  rec_free(p: number): void;
}

/** LAME's worst case for `samples` of input (lame.h: 1.25 * samples + 7200). */
const outBound = (samples: number): number => Math.ceil(1.25 * samples) + 7200;

// The WASI calls libc links in; LAME never reaches them (its messages go to a no-op, nothing opens a file).
const wasiStubs = {
  fd_close: () => 52,
  fd_seek: () => 52,
  fd_write: () => 52,
  proc_exit: (code: number) => {
    throw new Error(`LAME WebAssembly exited (${code})`);
  },
};

/**
 * LAME 3.100 compiled to WebAssembly by `lame-wasm/build.sh` (our own build: the npm builds hard-wire quality 3,
 * joint stereo and the bit reservoir). CBR at 8 kHz, true stereo, no reservoir, the configured quality (0 best ..
 * 9; 7 keeps LAME's psychoacoustic model for block switching but skips noise shaping: ~3x faster than 3 and, on
 * speech at 16 kbit/s, no loss in waveform SNR — see the README's benchmark). The module compiles once per thread;
 * one instance serves every recording of that thread, each its own LAME context in the instance's memory. Memory can
 * grow during any call into the module, so views of it are taken after each call, never before. A WebAssembly memory
 * never shrinks: when the thread's last encoder is freed the instance is dropped (its memory, grown to the most
 * recordings the thread had at once, goes with it) and the next recording starts a fresh one.
 */
export function wasmLameFactory(quality = DEFAULT_LAME_QUALITY): EncoderFactory {
  let module: WebAssembly.Module | null = null;
  let lame: LameExports | null = null;
  let open = 0;
  const ready = WebAssembly.compile(Buffer.from(LAME_WASM_BASE64, 'base64')).then((m) => {
    module = m;
  });
  const instance = (): LameExports => {
    if (lame) return lame;
    if (!module) throw new Error('WASM LAME is not loaded yet');
    const x = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasiStubs }).exports as unknown as LameExports;
    x._initialize();
    lame = x;
    return x;
  };
  return {
    ready,
    create(format) {
      const x = instance();
      let g = x.rec_open(format.channels, format.kbps, quality);
      if (!g) throw new Error(`LAME rejected ${format.channels} channel(s) at ${format.kbps} kbit/s`);
      open++;
      // one allocation per recording: [left | right | mp3 out], grown when a larger batch comes
      let cap = 0;
      let buf = 0;
      const reserve = (samples: number): void => {
        if (samples <= cap) return;
        if (buf) x.rec_free(buf);
        const want = Math.max(samples, 4096);
        buf = x.rec_alloc(4 * want + outBound(want));
        cap = buf ? want : 0;
        if (!buf) throw new Error('LAME WebAssembly: out of memory');
      };
      const take = (at: number, n: number): Uint8Array => {
        if (n < 0) throw new Error(`LAME error ${n}`);
        return new Uint8Array(x.memory.buffer, at, n).slice();
      };
      return {
        encode(ch) {
          if (!g) throw new Error('encoder is closed');
          const n = ch[0].length;
          reserve(n);
          const left = buf;
          const right = buf + 2 * cap;
          const out = buf + 4 * cap;
          const heap = new Int16Array(x.memory.buffer);
          heap.set(ch[0], left >> 1);
          if (format.channels === 2) heap.set(ch[1], right >> 1);
          return take(out, x.rec_encode(g, left, right, n, out, outBound(cap)));
        },
        flush() {
          if (!g) return new Uint8Array(0);
          reserve(1);
          const out = buf + 4 * cap;
          return take(out, x.rec_flush(g, out, outBound(cap)));
        },
        free() {
          if (!g) return;
          x.rec_close(g);
          if (buf) x.rec_free(buf);
          g = 0;
          buf = 0;
          cap = 0;
          // the last one: the instance and its grown memory go (a fresh one for the next recording)
          if (--open === 0 && lame === x) lame = null;
        },
      };
    },
    memoryBytes: () => lame?.memory.buffer.byteLength ?? 0,
  };
}

/** `quality` is LAME's 0 (best) .. 9 for the WASM build; lamejs always runs at 3. */
export function encoderFactory(engine: EncoderEngine, quality = DEFAULT_LAME_QUALITY): EncoderFactory {
  return engine === 'wasm' ? wasmLameFactory(quality) : lameJsFactory();
}
