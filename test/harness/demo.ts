/**
 * `npm run demo`: one complete recorded call, SIPp -> drachtio simulator -> recorder, printing the MP3's path.
 * Needs the Debian packages sip-tester (SIPp) and ffmpeg.
 */
import { join } from 'node:path';
import { probe } from './audio.js';
import { writeRtpPcap } from './pcap.js';
import { runSipp, startApp, startSim, tempDir } from './recorder-harness.js';

const sim = await startSim();
const app = await startApp(sim, { MSMLREC_LOG_LEVEL: 'info' });
const pcap = join(tempDir('demo'), 'tone.pcap');
writeRtpPcap(pcap, { law: 'PCMU', tone: { freq: 440, amplitude: 8000 }, seconds: 11 });
process.stdout.write('demo: a 10 s call, recording paused from 4 s to 6 s ...\n');
const spooled = app.waitForLog(/recording spooled/, 60_000);
const r = await runSipp(sim, 'record-call.xml', { conf: 'demo0000000001', pcap, pause_at: 4000, paused_ms: 2000, rest_ms: 4000 });
if (r.code !== 0) {
  process.stderr.write(`SIPp failed (${r.code}): ${r.errors || r.stderr}\n`);
  process.exitCode = 1;
} else {
  const out = (await spooled) as { mp3: string; sidecar: string; durationMs: number };
  const p = probe(out.mp3);
  process.stdout.write(`recorded ${out.durationMs} ms, ${p.codec} ${p.channels} ch ${p.sampleRate} Hz ${p.bitRate / 1000} kbit/s\n`);
  process.stdout.write(`sidecar: ${out.sidecar}\n`);
  process.stdout.write(`${out.mp3}\n`);
}
await app.stop();
await sim.stop();
