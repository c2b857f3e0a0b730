import { createMp3Encoder } from 'wasm-media-encoders';
import { Mp3Encoder } from '@breezystack/lamejs';
import { writeFileSync } from 'node:fs';
const secs = 600, n = 8000 * secs;
const L = new Float32Array(n), R = new Float32Array(n), Li = new Int16Array(n), Ri = new Int16Array(n);
for (let i = 0; i < n; i++) { const a = Math.sin(i * 2 * Math.PI * 440 / 8000) * 0.3 * (Math.floor(i / 40000) % 2); const b = Math.sin(i * 2 * Math.PI * 700 / 8000) * 0.3 * (1 - Math.floor(i / 40000) % 2); L[i] = a + (Math.random() - 0.5) * 0.001; R[i] = b + (Math.random() - 0.5) * 0.001; Li[i] = L[i] * 32767; Ri[i] = R[i] * 32767; }
const enc = await createMp3Encoder();
enc.configure({ sampleRate: 8000, channels: 2, bitrate: 16, outputSampleRate: 8000 });
let t0 = process.cpuUsage(); const out: Uint8Array[] = [];
for (let i = 0; i < n; i += 1152 * 4) { out.push(enc.encode([L.subarray(i, i + 1152 * 4), R.subarray(i, i + 1152 * 4)]).slice()); }
out.push(enc.finalize().slice());
let c = process.cpuUsage(t0); const wasmS = (c.user + c.system) / 1e6;
const buf = Buffer.concat(out); writeFileSync('/tmp/wme.mp3', buf);
console.log('wasm', (secs / wasmS).toFixed(1), 'x realtime, bytes', buf.length, 'first bytes', buf.subarray(0, 4).toString('hex'), 'has Info/Xing', buf.indexOf('Info') , buf.indexOf('Xing'));
const lj = new Mp3Encoder(2, 8000, 16);
t0 = process.cpuUsage(); const o2: Uint8Array[] = [];
for (let i = 0; i < n; i += 1152 * 4) o2.push(lj.encodeBuffer(Li.subarray(i, i + 1152 * 4), Ri.subarray(i, i + 1152 * 4)));
o2.push(lj.flush()); c = process.cpuUsage(t0);
console.log('lamejs', (secs / ((c.user + c.system) / 1e6)).toFixed(1), 'x realtime, bytes', Buffer.concat(o2).length);
