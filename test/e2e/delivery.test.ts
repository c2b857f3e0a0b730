/**
 * Durable delivery against real servers: redis-server, Apache mod_dav (behind a proxy that can fail it), and a
 * metadata receiver. Calls are real SIP (through the simulator) and real RTP; the recorder is its own process.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { decode, toneShare, span } from '../harness/audio.js';
import { davServer, metadataReceiver, redisServer } from '../harness/delivery-servers.js';
import { ROOT, startApp, startSim, tempDir, type AppProcess } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { SipUac } from '../harness/sip-uac.js';
import { until as waitUntil } from '../harness/until.js';

const sim = await startSim();
const redis = await redisServer();
const dav = await davServer();
const meta = await metadataReceiver();
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
const spoolDir = tempDir('spool-delivery');
const env: Record<string, string> = {
  MSMLREC_SPOOL_DIR: spoolDir,
  MSMLREC_DELIVERY_ENABLED: 'true',
  MSMLREC_DELIVERY_REDIS_URL: redis.url,
  MSMLREC_DELIVERY_QUEUE: 'delivery-test',
  MSMLREC_DELIVERY_WEBDAV_URL: dav.url,
  MSMLREC_DELIVERY_WEBDAV_USER: dav.user,
  MSMLREC_DELIVERY_WEBDAV_PASSWORD: dav.password,
  MSMLREC_DELIVERY_METADATA_URL: meta.url,
  MSMLREC_DELIVERY_METADATA_USER: 'rp',
  MSMLREC_DELIVERY_METADATA_PASSWORD: 'rp-pw',
  MSMLREC_DELIVERY_ATTEMPTS: '40',
  MSMLREC_DELIVERY_BACKOFF_MS: '200',
  MSMLREC_DELIVERY_SWEEP_MS: '300',
  MSMLREC_DELIVERY_TIMEOUT_MS: '3000',
};
let app: AppProcess = await startApp(sim, env);
t.teardown(async () => {
  uac.stop();
  await app.stop('SIGKILL');
  await sim.stop();
  await dav.stop();
  await meta.stop();
  await redis.stop();
});

const until = (what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> => waitUntil(what, check, timeoutMs, () => app.logs.slice(-10).join('\n'));

const PCMU = (port: number): string => `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;

/** One recorded call: INVITE, MSML dialogstart, `seconds` of a tone, then BYE unless `hangup` is false. */
async function call(conf: string, seconds: number, opts: { hangup?: boolean; onPlaying?: () => Promise<void> } = {}): Promise<void> {
  const rtp = await RtpSender.open();
  try {
    const inv = await uac.request('INVITE', `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=7001;record;tenant-dbid=1;media-service=record;gvp-tenant-id=Environment.GIR`, {
      headers: { 'content-type': 'application/sdp', 'X-Genesys-CallUUID': `${conf}UUID` },
      body: PCMU(rtp.port),
    });
    if (inv.status !== 200) throw new Error(`INVITE ${inv.status}`);
    const port = Number(/m=audio (\d+)/.exec(String(inv.content))?.[1]);
    const dialog = uac.dialogOf(inv);
    const body = `<msml version="1.1"><dialogstart target="conf:${conf}" name="rec"><record format="audio/mp3"><param name="ani">+14165550001</param><param name="dnis">+18005550100</param><param name="agentId">agent7</param><param name="connId">006a0269722cd93f</param></record></dialogstart></msml>`;
    const r = await uac.request('INFO', '', { dialog, headers: { 'content-type': 'application/vnd.radisys.msml+xml' }, body });
    if (!/response="200"/.test(String(r.content))) throw new Error(`dialogstart: ${r.content}`);
    const playing = rtp.play(port, { law: 'PCMU', freq: 700, seconds, ssrc: 0x77 });
    await opts.onPlaying?.();
    await playing;
    if (opts.hangup !== false) await uac.request('BYE', '', { dialog });
  } finally {
    rtp.close();
  }
}

const storedFiles = (): string[] => {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : out.push(join(d, e.name));
  };
  walk(join(dav.root, 'recordings'));
  return out;
};
const postsFor = (conf: string) => meta.posts.filter((p) => p.body.id === `${conf}UUID`);
const spoolFor = (conf: string): string[] => readdirSync(spoolDir).filter((f) => f.startsWith(`${conf}UUID`));
const sidecarIn = (conf: string): boolean => spoolFor(conf).some((f) => f.endsWith('.json') && !f.endsWith('.open.json'));

t.test('WebDAV answers 503 for a while: the MP3 arrives once, byte-identical, then one metadata POST', async (t) => {
  dav.fault = { status: 503 };
  await call('d1', 3);
  await until('spooled', () => sidecarIn('d1'));
  const mp3Name = spoolFor('d1').find((f) => f.endsWith('.mp3')) as string;
  const spooled = readFileSync(join(spoolDir, mp3Name));
  await new Promise((r) => setTimeout(r, 1500)); // a few failed attempts
  t.ok(dav.log.filter((l) => l.startsWith('MKCOL') || l.startsWith('PUT')).length >= 2, 'delivery was tried while WebDAV failed');
  t.equal(postsFor('d1').length, 0, 'no metadata before the file is stored');
  dav.fault = null;
  await until('metadata POST', () => postsFor('d1').length > 0);
  await until('spool emptied', () => spoolFor('d1').length === 0);
  const stored = storedFiles().filter((f) => f.endsWith(mp3Name));
  t.equal(stored.length, 1, 'stored once');
  t.ok(readFileSync(stored[0]).equals(spooled), 'byte-identical to the spooled file');
  t.equal(dav.log.filter((l) => l.startsWith('PUT') && l.includes(mp3Name) && / 20[14]$/.test(l)).length, 1, 'one successful PUT');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(postsFor('d1').length, 1, 'one metadata POST');
  const post = postsFor('d1')[0];
  t.equal(post.auth, `Basic ${Buffer.from('rp:rp-pw').toString('base64')}`, 'Basic auth to the Recording Processor');
  t.match(post.body, {
    id: 'd1UUID',
    callerPhoneNumber: '+14165550001',
    dialedPhoneNumber: '+18005550100',
    startTime: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/,
    stopTime: /\+0000$/,
    eventHistory: Array,
    mediaFiles: [
      {
        mediaUri: `${dav.url}/${post.body.startTime?.toString().slice(0, 10)}/${mp3Name}`,
        mediaId: mp3Name,
        type: 'audio/mp3',
        duration: /^\d+$/,
        size: String(spooled.length),
        tenant: 'Environment',
        ivrprofile: 'GIR',
        parameters: { ani: '+14165550001', dnis: '+18005550100', agentId: 'agent7', connId: '006a0269722cd93f', recordDN: '7001' },
      },
    ],
  });
  const d = decode(stored[0]);
  // the call is 3 s of tone plus set-up and hang-up time, which grows when the machine is busy: its exact length is
  // the one the metadata states
  const durationMs = Number((post.body.mediaFiles as { duration: string }[])[0].duration);
  // 3 s of RTP goes out over 2.98 s (150 packets, the last at 2.98 s) and the BYE follows it: the recording is that long
  t.ok(durationMs >= 2950 && Math.abs(d.seconds - durationMs / 1000) < 0.01, `the stored file is the call's length (${d.seconds.toFixed(3)} s, metadata ${durationMs} ms)`);
  // per 100 ms window: a clock correction's phase step lowers a long window's Goertzel share, not the audio
  const shares = Array.from({ length: 20 }, (_, i) => toneShare(span(d.channels[0], 0.5 + i / 10, 0.6 + i / 10), 700)).sort((a, b) => a - b);
  t.ok(shares[10] > 0.8, `the stored file plays the call (median 100 ms tone share ${shares[10].toFixed(2)}, lowest ${shares[0].toFixed(2)})`);
});

t.test('Redis is down while a call ends: the recording waits in the spool and is delivered when Redis is back', async (t) => {
  await redis.stop();
  await call('d2', 2);
  await until('spooled', () => sidecarIn('d2'));
  await new Promise((r) => setTimeout(r, 1000));
  t.ok(spoolFor('d2').length >= 2, 'still in the spool');
  t.equal(postsFor('d2').length, 0);
  await redis.start();
  await until('delivered', () => postsFor('d2').length > 0 && spoolFor('d2').length === 0, 40_000);
  t.equal(postsFor('d2').length, 1, 'delivered once');
});

t.test('a 403 fails the job at once; jobs list shows it; jobs retry delivers it once the server is fixed', async (t) => {
  dav.fault = { status: 403 };
  await call('d3', 2);
  await app.waitForLog(/delivery failed/, 20_000);
  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'jobs', ...args], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } });
  const listed = await cli('list');
  const line = listed.stdout.split('\n').find((l) => l.includes('d3UUID'));
  t.match(line, /^failed\td3UUID\S*\tattempts=1\t.*403/, `jobs list: ${line}`);
  t.ok(spoolFor('d3').length >= 2, 'the recording is kept in the spool');
  dav.fault = null;
  const id = (line as string).split('\t')[1];
  t.match((await cli('retry', id)).stdout, /requeued/);
  await until('delivered after retry', () => postsFor('d3').length > 0 && spoolFor('d3').length === 0);
  t.notMatch((await cli('list')).stdout, /d3UUID/, 'no longer listed');
});

t.test('killed with SIGKILL mid-call: at restart the partial recording is finalized, playable, and delivered', async (t) => {
  await call('d4', 3, { hangup: false });
  t.ok(spoolFor('d4').some((f) => f.endsWith('.mp3.part')), 'recording in progress');
  await app.stop('SIGKILL');
  app = await startApp(sim, env);
  await until('delivered', () => postsFor('d4').length > 0 && spoolFor('d4').length === 0, 40_000);
  const post = postsFor('d4')[0].body as { mediaFiles: { mediaId: string; truncated: boolean; duration: string }[] };
  t.equal(post.mediaFiles[0].truncated, true, 'marked truncated');
  const stored = storedFiles().find((f) => f.endsWith(post.mediaFiles[0].mediaId)) as string;
  t.ok(stored && existsSync(stored), 'stored on WebDAV');
  const d = decode(stored);
  t.ok(d.seconds > 1.5, `decodes: ${d.seconds.toFixed(2)} s of the ~3 s before the kill`);
  const shares = Array.from({ length: 10 }, (_, i) => toneShare(span(d.channels[0], 0.3 + i / 10, 0.4 + i / 10), 700)).sort((a, b) => a - b);
  t.ok(shares[5] > 0.8, `with the call audio (median 100 ms tone share ${shares[5].toFixed(2)}, lowest ${shares[0].toFixed(2)})`);
  t.ok(Math.abs(Number(post.mediaFiles[0].duration) / 1000 - d.seconds) < 0.05, `duration in the metadata (${post.mediaFiles[0].duration} ms) matches the file (${d.seconds.toFixed(3)} s)`);
});
