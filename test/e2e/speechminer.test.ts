/**
 * SpeechMiner's copy end to end: a profile sends the G.711 WAV to an S3 bucket (moto_server, a real S3 API server,
 * through the AWS SDK) while the MP3 goes to WebDAV (Apache mod_dav), and names both in the metadata POST. S3
 * answering 503 for a while: retried, delivered, the object read back byte-identical to what was spooled. Bad S3
 * credentials: the job fails for good and `jobs list` shows why. A profile with a WebDAV SpeechMiner destination
 * sends the WAV there with its own credentials.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import t from 'tap';
import { davServer, filesUnder, metadataReceiver, redisServer, s3Server } from '../harness/delivery-servers.js';
import { ROOT, startApp, startSim, tempDir } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { SipUac } from '../harness/sip-uac.js';
import { until } from '../harness/until.js';

const sim = await startSim();
const redis = await redisServer();
const dav = await davServer();
const rp = await metadataReceiver();
const s3 = await s3Server();
const s3strict = await s3Server({ auth: true });
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
const BUCKET = 'speechminer-test';
const s3client = new S3Client({ region: 'us-east-1', endpoint: s3.url, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
await s3client.send(new CreateBucketCommand({ Bucket: BUCKET }));

const s3Profile = (endpoint: string, key: string): string[] => [
  '  wavCopy: PCMU',
  `  speechMinerUrl: S3:${BUCKET}/analytics`,
  `  s3Endpoint: ${endpoint}`,
  '  s3ForcePathStyle: true',
  `  s3AccessKeyId: ${key}`,
  '  s3SecretAccessKey: not-a-secret',
];
const profilesFile = join(tempDir('sm'), 'profiles.yaml');
writeFileSync(
  profilesFile,
  [
    'default:',
    `  metadataUrl: ${rp.url}`,
    'Mine.S3:',
    ...s3Profile(s3.url, 'test'),
    'Mine.BadKey:',
    ...s3Profile(s3strict.url, 'AKIANOSUCHKEY0000000'),
    'Mine.Dav:',
    '  wavCopy: PCMA',
    `  speechMinerUrl: ${dav.url}/speechminer`,
    `  speechMinerUser: ${dav.user}`,
    `  speechMinerPassword: ${dav.password}`,
    '',
  ].join('\n'),
);
const spool = tempDir('spool-sm');
const env = {
  MSMLREC_SPOOL_DIR: spool,
  MSMLREC_DELIVERY_ENABLED: 'true',
  MSMLREC_DELIVERY_REDIS_URL: redis.url,
  MSMLREC_DELIVERY_QUEUE: `sm-${Math.random().toString(36).slice(2, 8)}`,
  MSMLREC_DELIVERY_WEBDAV_URL: dav.url,
  MSMLREC_DELIVERY_WEBDAV_USER: dav.user,
  MSMLREC_DELIVERY_WEBDAV_PASSWORD: dav.password,
  MSMLREC_DELIVERY_SWEEP_MS: '300',
  MSMLREC_DELIVERY_BACKOFF_MS: '300',
  MSMLREC_DELIVERY_ATTEMPTS: '100',
  MSMLREC_DELIVERY_TIMEOUT_MS: '3000',
  MSMLREC_PROFILES_FILE: profilesFile,
};
const app = await startApp(sim, env);
t.teardown(async () => {
  uac.stop();
  s3client.destroy();
  await app.stop('SIGKILL');
  for (const server of [sim, dav, rp, redis, s3, s3strict]) await server.stop();
});

const PCMU = (port: number): string => `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
async function call(conf: string, profile: string): Promise<void> {
  const rtp = await RtpSender.open();
  const inv = await uac.request('INVITE', `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=7001;record;tenant-dbid=1;gvp-tenant-id=${profile}`, {
    headers: { 'content-type': 'application/sdp', 'X-Genesys-CallUUID': `${conf}UUID` },
    body: PCMU(rtp.port),
  });
  if (inv.status !== 200) throw new Error(`INVITE ${inv.status}`);
  const dialog = uac.dialogOf(inv);
  await uac.request('INFO', '', { dialog, headers: { 'content-type': 'application/vnd.radisys.msml+xml' }, body: `<msml version="1.1"><dialogstart target="conf:${conf}" name="rec"><record/></dialogstart></msml>` });
  await rtp.play(Number(/m=audio (\d+)/.exec(String(inv.content))?.[1]), { law: 'PCMU', freq: 700, seconds: 1.5, ssrc: 9 });
  await uac.request('BYE', '', { dialog });
  rtp.close();
}
type Post = { body: { id: string; mediaFiles: { mediaUri: string; type: string }[] } };
const postOf = (conf: string): Post | undefined => rp.posts.find((p) => p.body.id === `${conf}UUID`) as Post | undefined;

t.test('the WAV goes to S3, the MP3 to WebDAV; S3 503 for a while: retried, delivered byte-identical', async (t) => {
  s3.fault = { status: 503 };
  await call('sm1', 'Mine.S3');
  await until('three S3 attempts failed', () => s3.log.filter((l) => l.startsWith('PUT') && l.endsWith(' 503')).length >= 3, 20_000, () => app.logs.slice(-5).join('\n'));
  const wavName = readdirSync(spool).find((f) => f.startsWith('sm1UUID') && f.endsWith('.wav')) as string;
  t.ok(wavName, `the WAV waits in the spool (${wavName})`);
  const spooled = readFileSync(join(spool, wavName));
  const day = (JSON.parse(readFileSync(join(spool, wavName.replace(/\.wav$/, '.json')), 'utf8')) as { startTime: string }).startTime.slice(0, 10);
  t.ok(filesUnder(dav.root).some((f) => f.includes('sm1UUID') && f.endsWith('.mp3')), 'the MP3 is stored meanwhile (its step is saved)');
  s3.fault = null;
  await until('delivered', () => postOf('sm1') !== undefined && !readdirSync(spool).some((f) => f.startsWith('sm1UUID')), 30_000, () => app.logs.slice(-5).join('\n'));
  const key = `analytics/${day}/${wavName}`;
  const obj = await s3client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const got = Buffer.from(await (obj.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  t.ok(got.equals(spooled), `s3://${BUCKET}/${key} is byte-identical to the spooled WAV (${got.length} bytes)`);
  t.equal(obj.ContentType, 'audio/wav', 'stored as audio/wav');
  t.notOk(filesUnder(dav.root).some((f) => f.includes('sm1UUID') && f.endsWith('.wav')), 'the WAV did not go to WebDAV');
  const uris = postOf('sm1')?.body.mediaFiles.map((f) => f.mediaUri) ?? [];
  t.ok(uris.some((u) => u === `s3://${BUCKET}/${key}`) && uris.some((u) => u.startsWith(dav.url) && u.endsWith('.mp3')), `the metadata POST names both files with their URIs (${uris.join(', ')})`);
  t.equal(rp.posts.filter((p) => p.body.id === 'sm1UUID').length, 1, 'one POST');
});

t.test('bad S3 credentials: the job fails for good and jobs list says why', async (t) => {
  await call('sm2', 'Mine.BadKey');
  await until('the delivery failed for good', () => app.logs.some((l) => l.includes('sm2UUID') && /delivery failed; the job waits/.test(l)), 30_000, () => app.logs.slice(-5).join('\n'));
  const jobs = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'jobs', 'list'], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } });
  const line = jobs.stdout.split('\n').find((l) => l.includes('sm2UUID')) ?? '';
  t.match(line, /^failed\tsm2UUID\S*\tattempts=1\t.*403/, `jobs list: ${line}`);
  t.ok(readdirSync(spool).some((f) => f.startsWith('sm2UUID')), 'the recording stays in the spool');
  t.equal(postOf('sm2'), undefined, 'no metadata POST before every file is stored');
});

t.test('a WebDAV SpeechMiner destination gets the WAV with its own credentials', async (t) => {
  await call('sm3', 'Mine.Dav');
  await until('delivered', () => postOf('sm3') !== undefined, 30_000, () => app.logs.slice(-5).join('\n'));
  const files = filesUnder(dav.root).filter((f) => f.includes('sm3UUID'));
  t.ok(files.some((f) => f.endsWith('.wav') && f.includes(join('recordings', 'speechminer'))), `the WAV in /recordings/speechminer/ (${files.map((f) => f.split('/recordings/')[1]).join(', ')})`);
  t.ok(files.some((f) => f.endsWith('.mp3') && !f.includes('speechminer')), 'the MP3 in the main collection');
});
