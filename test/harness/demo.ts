/**
 * `npm run demo`: one complete recorded call, end to end, with nothing but `npm ci`: a JavaScript SIP UAC (SIP
 * Server's role) and two RTP senders (the caller at 440 Hz, the agent at 880 Hz) -> the embedded drachtio simulator
 * -> the recorder (its own process). Two legs of one conf-id relayed to each other, an MSML dialogstart, a pause from
 * 4 s to 6 s, a dialogend, BYEs. Spool only: no Redis, WebDAV or Recording Processor. Prints where the MP3 is and
 * what it holds (from its MPEG header and its sidecar).
 */
import { readFileSync } from 'node:fs';
import { startApp, startSim } from './recorder-harness.js';
import { RtpSender } from './rtp-sender.js';
import { SipUac, type UacDialog } from './sip-uac.js';
import { sleep } from './until.js';

const CONF = 'demo0000000001';
const sim = await startSim();
const app = await startApp(sim, { MSMLREC_LOG_LEVEL: 'info', MSMLREC_DELIVERY_ENABLED: 'false' });
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
const parties = [await RtpSender.open(), await RtpSender.open()];
const sdp = (port: number): string => `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
const msml = (dialog: UacDialog, body: string): Promise<unknown> => uac.request('INFO', '', { dialog, headers: { 'content-type': 'application/vnd.radisys.msml+xml' }, body: `<msml version="1.1">${body}</msml>` });

try {
  process.stdout.write('demo: a 10 s two-party call (caller 440 Hz left, agent 880 Hz right), recording paused from 4 s to 6 s ...\n');
  const dialogs: UacDialog[] = [];
  const ports: number[] = [];
  for (const [i, p] of parties.entries()) {
    const r = await uac.request('INVITE', `sip:msml=${CONF}@127.0.0.1:${sim.sipPort};dn=${7001 + i};record;tenant-dbid=1;media-service=record;gvp-tenant-id=Demo.Record`, { headers: { 'content-type': 'application/sdp' }, body: sdp(p.port) });
    if (r.status !== 200) throw new Error(`INVITE answered ${r.status}`);
    dialogs.push(uac.dialogOf(r));
    ports.push(Number(/m=audio (\d+)/.exec(String(r.content))?.[1]));
  }
  const spooled = app.waitForLog(/recording spooled/, 60_000);
  const talk = Promise.all(parties.map((p, i) => p.play(ports[i], { law: 'PCMU', freq: i === 0 ? 440 : 880, seconds: 10.5, ssrc: 100 + i })));
  await sleep(200);
  await msml(dialogs[0], `<dialogstart target="conf:${CONF}" name="rec"><record format="audio/mp3"/></dialogstart>`);
  await sleep(4000);
  await msml(dialogs[0], `<send target="conf:${CONF}/dialog:rec" event="pause"/>`);
  await sleep(2000);
  await msml(dialogs[0], `<send target="conf:${CONF}/dialog:rec" event="resume"/>`);
  await sleep(4000);
  await msml(dialogs[0], `<dialogend id="conf:${CONF}/dialog:rec"/>`);
  await talk;
  for (const d of dialogs) await uac.request('BYE', '', { dialog: d });
  const out = (await spooled) as { mp3: string; sidecar: string; durationMs: number };
  const side = JSON.parse(readFileSync(out.sidecar, 'utf8')) as { audio: { channels: number; kbps: number }; events: { type: string; offsetMs: number }[]; legs: { role: string; packets: number; lost: number }[] };
  const head = mpegHeader(readFileSync(out.mp3));
  process.stdout.write(`recorded ${out.durationMs} ms: ${head}; sidecar: ${side.audio.channels} channel(s), ${side.audio.kbps} kbit/s\n`);
  process.stdout.write(`events: ${side.events.map((e) => `${e.type} at ${(e.offsetMs / 1000).toFixed(2)} s`).join(', ')}\n`);
  process.stdout.write(`legs: ${side.legs.map((l) => `${l.role} ${l.packets} packets, ${l.lost} lost`).join('; ')}\n`);
  process.stdout.write(`sidecar: ${out.sidecar}\n${out.mp3}\n`);
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).message}\n${app.logs.slice(-10).join('\n')}\n`);
  process.exitCode = 1;
} finally {
  for (const p of parties) p.close();
  uac.stop();
  await app.stop();
  await sim.stop();
}

/** What the first MPEG audio frame header says: version, layer, bit rate, sample rate, channel mode. */
function mpegHeader(b: Buffer): string {
  for (let i = 0; i + 4 <= b.length; i++) {
    if (b[i] !== 0xff || (b[i + 1] & 0xe0) !== 0xe0) continue;
    const version = ['MPEG-2.5', '?', 'MPEG-2', 'MPEG-1'][(b[i + 1] >> 3) & 3];
    const layer = ['?', 'Layer III', 'Layer II', 'Layer I'][(b[i + 1] >> 1) & 3];
    const kbpsV2 = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    const rateV25 = [11025, 12000, 8000];
    const kbps = kbpsV2[b[i + 2] >> 4];
    const rate = version === 'MPEG-2.5' ? rateV25[(b[i + 2] >> 2) & 3] : NaN;
    const mode = ['stereo', 'joint stereo', 'dual channel', 'mono'][b[i + 3] >> 6];
    return `${version} ${layer}, ${kbps} kbit/s, ${rate} Hz, ${mode}`;
  }
  return 'no MPEG frame found';
}
