/**
 * GIR's IVR profiles end to end: two profiles with their own WebDAV destination and credentials, Recording
 * Processor and format; two concurrent calls, each with its own `gvp-tenant-id`: each recording lands in its own
 * collection in its own format, its metadata goes to its own Recording Processor, and the sidecar and metadata name
 * the profile. A call of a profile not in the file uses `default`, or gets 404 with `profiles.requireKnown`; a
 * change of the file is used by the next call without a restart, a broken one is refused and counted; a bad
 * profiles file stops the start with exit 2 naming it.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { decode, medianToneShare, probe } from '../harness/audio.js';
import { davServer, filesUnder, metadataReceiver, redisServer } from '../harness/delivery-servers.js';
import { ROOT, startApp, startSim, tempDir } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { SipUac } from '../harness/sip-uac.js';
import { until } from '../harness/until.js';

const sim = await startSim();
const redis = await redisServer();
const dav = await davServer();
const rpA = await metadataReceiver();
const rpB = await metadataReceiver();
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
const dir = tempDir('profiles');
const profilesFile = join(dir, 'profiles.yaml');
const PROFILES = [
    'default:',
    `  metadataUrl: ${rpA.url}`,
    'Bank.Retail:',
    `  webdavUrl: ${dav.url}/bank`,
    `  metadataUrl: ${rpA.url}`,
    '  metadataUser: bank',
    '  metadataPassword: bank-pw',
    '  format: mp3-8-mono',
    'Shop.Sales:',
    `  webdavUrl: ${dav.url}/shop`,
    `  metadataUrl: ${rpB.url}`,
    '  format: mp3-32-stereo',
    '  wavCopy: PCMU',
    '',
  ].join('\n');
writeFileSync(profilesFile, PROFILES);
const spool = tempDir('spool-profiles');
const env = {
  MSMLREC_SPOOL_DIR: spool,
  MSMLREC_DELIVERY_ENABLED: 'true',
  MSMLREC_DELIVERY_REDIS_URL: redis.url,
  MSMLREC_DELIVERY_QUEUE: 'profiles-test',
  MSMLREC_DELIVERY_WEBDAV_URL: dav.url,
  MSMLREC_DELIVERY_WEBDAV_USER: dav.user,
  MSMLREC_DELIVERY_WEBDAV_PASSWORD: dav.password,
  MSMLREC_DELIVERY_SWEEP_MS: '300',
  MSMLREC_PROFILES_FILE: profilesFile,
  MSMLREC_PROFILES_RELOAD_SEC: '0.3',
};
const app = await startApp(sim, env);
t.teardown(async () => {
  uac.stop();
  await app.stop('SIGKILL');
  for (const server of [sim, dav, rpA, rpB, redis]) await server.stop();
});

const PCMU = (port: number): string => `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
async function call(conf: string, tenantProfile: string, freq: number): Promise<number> {
  const rtp = await RtpSender.open();
  const inv = await uac.request('INVITE', `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=7001;record;tenant-dbid=1;media-service=record;gvp-tenant-id=${tenantProfile}`, {
    headers: { 'content-type': 'application/sdp', 'X-Genesys-CallUUID': `${conf}UUID` },
    body: PCMU(rtp.port),
  });
  if (inv.status !== 200) {
    rtp.close();
    return inv.status as number;
  }
  const dialog = uac.dialogOf(inv);
  await uac.request('INFO', '', { dialog, headers: { 'content-type': 'application/vnd.radisys.msml+xml' }, body: `<msml version="1.1"><dialogstart target="conf:${conf}" name="rec"><record/></dialogstart></msml>` });
  await rtp.play(Number(/m=audio (\d+)/.exec(String(inv.content))?.[1]), { law: 'PCMU', freq, seconds: 2, ssrc: freq });
  await uac.request('BYE', '', { dialog });
  rtp.close();
  return 200;
}
const stored = (): string[] => filesUnder(dav.root);
type Post = { auth?: string; body: { id: string; mediaFiles: { mediaUri: string; type: string }[]; recorder: { profile: string; profileVersion: string } } };

t.test('two profiles, two concurrent calls: each in its own destination, format and Recording Processor', async (t) => {
  t.same(await Promise.all([call('pa1', 'Bank.Retail', 500), call('pb1', 'Shop.Sales', 900)]), [200, 200], 'both calls answered');
  await until('both delivered', () => rpA.posts.some((p) => p.body.id === 'pa1UUID') && rpB.posts.some((p) => p.body.id === 'pb1UUID') && !readdirSync(spool).some((f) => /^p[ab]1/.test(f)), 30_000, () => app.logs.slice(-6).join('\n'));
  const files = stored();
  const bank = files.filter((f) => f.includes('pa1UUID'));
  const shop = files.filter((f) => f.includes('pb1UUID'));
  t.ok(bank.length === 1 && bank[0].includes(join('recordings', 'bank')), `Bank.Retail's MP3 in /recordings/bank/ (${bank.map((f) => f.split('/recordings/')[1]).join(', ')})`);
  t.ok(shop.length === 2 && shop.every((f) => f.includes(join('recordings', 'shop'))), `Shop.Sales's MP3 and WAV in /recordings/shop/ (${shop.map((f) => f.split('/recordings/')[1]).join(', ')})`);
  t.match(probe(bank[0]), { channels: 1, bitRate: 8000 }, 'Bank.Retail: 8 kbit/s mono');
  const shopMp3 = shop.find((f) => f.endsWith('.mp3')) as string;
  t.match(probe(shopMp3), { channels: 2, bitRate: 32000 }, 'Shop.Sales: 32 kbit/s stereo');
  t.ok(medianToneShare(decode(bank[0]).channels[0], 500, 0.3, 1.7) > 0.9 && medianToneShare(decode(shopMp3).channels[0], 900, 0.3, 1.7) > 0.9, 'each file has its own call');
  const postA = rpA.posts.find((p) => p.body.id === 'pa1UUID') as unknown as Post;
  const postB = rpB.posts.find((p) => p.body.id === 'pb1UUID') as unknown as Post;
  t.notOk(rpB.posts.some((p) => p.body.id === 'pa1UUID') || rpA.posts.some((p) => p.body.id === 'pb1UUID'), 'each metadata POST went to its own Recording Processor only');
  t.equal(postA.auth, `Basic ${Buffer.from('bank:bank-pw').toString('base64')}`, "with its profile's credentials");
  t.match(postA.body.recorder, { profile: 'Bank.Retail', profileVersion: /^[0-9a-f]{12}$/ }, 'the metadata names the profile and its version');
  t.equal(postB.body.mediaFiles.length, 2, 'Shop.Sales: the MP3 and the WAV named with their URIs');
  t.ok(postB.body.mediaFiles.every((f) => f.mediaUri.includes('/recordings/shop/')), '... in its destination');
});

t.test('a profile not in the file records with default', async (t) => {
  t.equal(await call('pc1', 'Other.Thing', 700), 200);
  await until('delivered', () => rpA.posts.some((p) => p.body.id === 'pc1UUID'), 30_000);
  const post = rpA.posts.find((p) => p.body.id === 'pc1UUID') as unknown as Post;
  t.equal(post.body.recorder.profile, 'default', 'metadata: profile default');
  t.ok(stored().some((f) => f.includes('pc1UUID') && /recordings\/\d{4}-\d\d-\d\d\//.test(f)), 'stored under the main WebDAV root');
});

t.test('the profiles file changes: the next call uses the new one; a broken change is refused, counted, the old stays', async (t) => {
  const metric = async (name: string): Promise<number> => Number(new RegExp(`^${name} (\\d+)`, 'm').exec((await app.ops('/metrics')).body)?.[1] ?? 0);
  writeFileSync(profilesFile, `default:\n  metadataUrl: ${rpA.url}\nBank.Retail:\n  webdavUrl: ${dav.url}/bank-v2\n  metadataUrl: ${rpB.url}\n`);
  await app.waitForLog(/recording profiles reloaded/, 5000);
  t.equal(await metric('msmlrec_config_reloads_total'), 1, 'the change is counted');
  t.equal(await call('pr1', 'Bank.Retail', 600), 200);
  await until('delivered', () => rpB.posts.some((p) => p.body.id === 'pr1UUID'), 30_000);
  t.ok(stored().some((f) => f.includes('pr1UUID') && f.includes(join('recordings', 'bank-v2'))), 'the next call went to the new destination and Recording Processor, without a restart');
  writeFileSync(profilesFile, 'Bank.Retail:\n  webdavUrl: not a url\n');
  await app.waitForLog(/profiles file change refused/, 5000);
  t.equal(await metric('msmlrec_config_reload_failures_total'), 1, 'the refused change is counted');
  t.match(JSON.parse((await app.ops('/status')).body).profiles, { lastReloadError: /Bank\.Retail\.webdavUrl/ }, '/status says why');
  t.equal(await call('pr2', 'Bank.Retail', 600), 200);
  await until('delivered', () => rpB.posts.some((p) => p.body.id === 'pr2UUID'), 30_000);
  t.ok(stored().some((f) => f.includes('pr2UUID') && f.includes(join('recordings', 'bank-v2'))), 'the running profiles stayed');
  // the last good file put back: nothing is refused any more
  writeFileSync(profilesFile, `default:\n  metadataUrl: ${rpA.url}\nBank.Retail:\n  webdavUrl: ${dav.url}/bank-v2\n  metadataUrl: ${rpB.url}\n`);
  await app.waitForLog(/the one in use again/, 5000);
  t.equal(JSON.parse((await app.ops('/status')).body).profiles.lastReloadError, null, '/status lastReloadError is null once the file in use is back on disk');
  t.equal(await metric('msmlrec_config_reloads_total'), 1, 'and it is not a reload');
  writeFileSync(profilesFile, PROFILES);
});

t.test('profiles.requireKnown: an unknown profile gets 404; a bad profiles file stops the start, naming it', async (t) => {
  const strict = await startApp(sim, { ...env, MSMLREC_SPOOL_DIR: tempDir('spool-strict'), MSMLREC_DELIVERY_ENABLED: 'false', MSMLREC_PROFILES_REQUIRE_KNOWN: 'true' });
  await app.stop('SIGKILL'); // the simulator gives INVITEs to the first app connected
  t.equal(await call('pd1', 'Other.Thing', 700), 404, 'unknown profile: 404');
  t.equal(await call('pd2', 'Bank.Retail', 700), 200, 'a known one: 200');
  await strict.stop();
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'Bank.Retail:\n  webdavUrl: ftp://nowhere\n  colour: blue\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/main.ts')], { cwd: ROOT, env: { PATH: process.env.PATH, MSMLREC_PROFILES_FILE: bad }, timeout: 20_000 });
  t.equal(r.status, 2, 'exit 2');
  t.match(r.stderr.toString(), /profiles file .*bad\.yaml: .*Bank\.Retail\.webdavUrl.*must be http\(s\).*colour/s, 'the message names the file, the profile, the key and the unknown option');
});
