/**
 * Production runs the compiled JavaScript (the Docker image's `node dist/src/cli.js`), not the sources through tsx.
 * This builds with tsconfig.build.json into a directory laid out like the image (dist/, conf/, package.json,
 * node_modules), records a call through it (the encoder worker is loaded from its .js file there) and drains it with
 * the `drain` command the Kubernetes preStop hook runs.
 */
import { execFile } from 'node:child_process';
import { cpSync, copyFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { decode } from '../harness/audio.js';
import { ROOT, startApp, startSim, tempDir } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { SipUac } from '../harness/sip-uac.js';

const run = promisify(execFile);
const image = tempDir('image');
await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(image, 'dist')], { cwd: ROOT });
cpSync(join(ROOT, 'conf'), join(image, 'conf'), { recursive: true });
copyFileSync(join(ROOT, 'package.json'), join(image, 'package.json'));
symlinkSync(join(ROOT, 'node_modules'), join(image, 'node_modules'));
const cli = join(image, 'dist/src/cli.js');

const sim = await startSim();
const app = await startApp(sim, {}, [], [cli, 'run']);
t.teardown(async () => {
  await app.stop('SIGKILL');
  await sim.stop();
});

t.test('the compiled build records a call', async (t) => {
  const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
  const rtp = await RtpSender.open();
  t.teardown(() => {
    uac.stop();
    rtp.close();
  });
  const sdp = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${rtp.port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
  const inv = await uac.request('INVITE', `sip:msml=b129460000054b3@127.0.0.1:${sim.sipPort};dn=7001;record`, { headers: { 'content-type': 'application/sdp' }, body: sdp });
  t.equal(inv.status, 200, 'INVITE answered');
  const dialog = uac.dialogOf(inv);
  const info = await uac.request('INFO', '', { dialog, headers: { 'content-type': 'application/vnd.radisys.msml+xml' }, body: '<msml version="1.1"><dialogstart target="conf:b129460000054b3" name="rec"><record format="audio/mp3"/></dialogstart></msml>' });
  t.match(info.content, /response="200"/, 'dialogstart 200');
  await rtp.play(Number(/m=audio (\d+)/.exec(String(inv.content))?.[1]), { law: 'PCMU', freq: 500, seconds: 2, ssrc: 9 });
  await uac.request('BYE', '', { dialog });
  const fin = await app.waitForLog(/recording spooled/);
  const pcm = decode(String(fin.mp3));
  t.ok(Number(fin.durationMs) > 1800, 'about 2 s recorded');
  t.ok(Math.abs(pcm.seconds - Number(fin.durationMs) / 1000) < 0.01, `the MP3 decodes to its duration (${fin.durationMs} ms)`);
});

t.test('`msml-recorder drain` (the preStop hook) drains the compiled recorder', async (t) => {
  const r = await run(process.execPath, [cli, 'drain', '--timeout', '10'], { env: { PATH: process.env.PATH, MSMLREC_OPS_PORT: String(app.opsPort) } });
  t.match(r.stdout, /drain requested: 202[\s\S]*no live calls/, r.stdout);
  const ready = await app.ops('/readyz');
  t.equal(ready.status, 503, 'not ready after the drain');
});
