import { createMp3Encoder } from 'wasm-media-encoders';
const rss0 = process.memoryUsage().rss;
const base = await createMp3Encoder();
const encs: any[] = [];
for (let i = 0; i < 150; i++) {
  const v = Object.create(Object.getPrototypeOf(base));
  Object.assign(v, { mimeType: base.mimeType, module: (base as any).module, parseParams: (base as any).parseParams, ref: 0, channelCount: 0 });
  v.configure({ sampleRate: 8000, channels: 2, bitrate: 16, outputSampleRate: 8000 });
  encs.push(v);
}
const L = new Float32Array(1600).map((_, i) => Math.sin(i / 3) * 0.2);
let bytes = 0;
for (let k = 0; k < 50; k++) for (const e of encs) bytes += e.encode([L, L]).length;
console.log('shared instance: 150 encoders, rss MB', ((process.memoryUsage().rss - rss0) / 1e6).toFixed(1), 'bytes', bytes, 'refs distinct', new Set(encs.map((e) => e.ref)).size);
const rss1 = process.memoryUsage().rss;
const own: any[] = [];
for (let i = 0; i < 50; i++) { const e = await createMp3Encoder(); e.configure({ sampleRate: 8000, channels: 2, bitrate: 16, outputSampleRate: 8000 }); e.encode([L, L]); own.push(e); }
console.log('own instance: 50 encoders, rss MB', ((process.memoryUsage().rss - rss1) / 1e6).toFixed(1));
