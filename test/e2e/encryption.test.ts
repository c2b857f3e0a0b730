/**
 * Encrypted recordings end to end: a recorder with two tenant certificates records a call (real SIP and RTP
 * through the simulator) and delivers it to Apache mod_dav and a metadata receiver. What is stored is CMS
 * EnvelopedData that is not playable, each tenant key decrypts it (`openssl cms -decrypt`) to an MP3 with the call's
 * tone and length, an unrelated key does not, no plaintext is left in the spool, and the metadata names the
 * certificates. A recording left half-encrypted by a crash is finished at restart and decrypts whole. An IVR profile
 * with its own certificate encrypts for that tenant only; one with `encrypt: false` stores plain.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadRecipient } from '../../src/recording/cms-envelope.js';
import type { OpenRecord } from '../../src/recording/recording.js';
import { decode, medianToneShare } from '../harness/audio.js';
import { cmsDecrypt, makeCert, type TestCert } from '../harness/certs.js';
import { davServer, filesUnder, metadataReceiver, redisServer } from '../harness/delivery-servers.js';
import { startApp, startSim, tempDir, type AppProcess } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { SipUac } from '../harness/sip-uac.js';
import { until } from '../harness/until.js';

const dir = tempDir('enc');
const decrypt = (file: string, c: TestCert): Buffer | null => cmsDecrypt(dir, file, c).out;
const playable = (file: string): boolean => spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', file]).stdout.toString().trim() !== '';

const a = makeCert(dir, 'tenant-a');
const b = makeCert(dir, 'tenant-b');
const stranger = makeCert(dir, 'stranger');

const sim = await startSim();
const redis = await redisServer();
const dav = await davServer();
const meta = await metadataReceiver();
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
const apps: AppProcess[] = [];
t.teardown(async () => {
  uac.stop();
  for (const app of apps) await app.stop('SIGKILL');
  for (const server of [sim, dav, meta, redis]) await server.stop();
});
/** A recorder with delivery to the servers above, encrypting for tenant-a (by path) and tenant-b (inline PEM). */
async function recorder(spool: string, extra: Record<string, string> = {}): Promise<AppProcess> {
  const app = await startApp(sim, {
    MSMLREC_SPOOL_DIR: spool,
    MSMLREC_DELIVERY_ENABLED: 'true',
    MSMLREC_DELIVERY_REDIS_URL: redis.url,
    MSMLREC_DELIVERY_QUEUE: `enc-${apps.length}`,
    MSMLREC_DELIVERY_WEBDAV_URL: dav.url,
    MSMLREC_DELIVERY_WEBDAV_USER: dav.user,
    MSMLREC_DELIVERY_WEBDAV_PASSWORD: dav.password,
    MSMLREC_DELIVERY_METADATA_URL: meta.url,
    MSMLREC_DELIVERY_SWEEP_MS: '300',
    MSMLREC_RECORDING_WAV_COPY: 'PCMA',
    MSMLREC_ENCRYPTION_ENABLED: 'true',
    MSMLREC_ENCRYPTION_CERTIFICATES: `${a.cert},${readFileSync(b.cert, 'utf8')}`,
    MSMLREC_ENCRYPTION_EXTENSION: 'p7m',
    ...extra,
  });
  apps.push(app);
  return app;
}
const storedFiles = (): string[] => filesUnder(dav.root);

t.test('a delivered recording: CMS EnvelopedData, not playable, each tenant key decrypts it, no plaintext left', async (t) => {
  const spool = tempDir('spool-enc');
  const app = await recorder(spool);
  t.ok(app.logs.filter((l) => l.includes('recordings are encrypted for this certificate')).length === 2, 'the start-up log names both certificates');

  const rtp = await RtpSender.open();
  const inv = await uac.request('INVITE', `sip:msml=enc1@127.0.0.1:${sim.sipPort};dn=7001;record;gvp-tenant-id=Environment.GIR`, {
    headers: { 'content-type': 'application/sdp', 'X-Genesys-CallUUID': 'enc1UUID' },
    body: `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${rtp.port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`,
  });
  t.equal(inv.status, 200);
  const dialog = uac.dialogOf(inv);
  const port = Number(/m=audio (\d+)/.exec(String(inv.content))?.[1]);
  await uac.request('INFO', '', { dialog, headers: { 'content-type': 'application/vnd.radisys.msml+xml' }, body: '<msml version="1.1"><dialogstart target="conf:enc1" name="rec"><record/></dialogstart></msml>' });
  await rtp.play(port, { law: 'PCMU', freq: 800, seconds: 3, ssrc: 5 });
  await uac.request('BYE', '', { dialog });
  rtp.close();

  await until('delivered', () => meta.posts.some((p) => p.body.id === 'enc1UUID') && !readdirSync(spool).some((f) => f.startsWith('enc1UUID')), 30_000, () => app.logs.slice(-6).join('\n'));
  const stored = storedFiles();
  const mp3 = stored.find((f) => f.includes('enc1UUID') && f.endsWith('.p7m') && !f.endsWith('.wav.p7m')) as string;
  const wav = stored.find((f) => f.includes('enc1UUID') && f.endsWith('.wav.p7m')) as string;
  t.ok(mp3 && wav, `stored as ${mp3?.split('/').pop()} and ${wav?.split('/').pop()}`);
  t.notOk(stored.some((f) => f.includes('enc1UUID') && (f.endsWith('.mp3') || f.endsWith('.wav'))), 'no plaintext file was stored');
  t.notOk(playable(mp3), 'the stored file is not a playable MP3 (ffprobe finds no stream)');
  for (const [name, c] of [['tenant-a', a], ['tenant-b', b]] as const) {
    const plain = decrypt(mp3, c);
    t.ok(plain, `${name}'s key decrypts the MP3`);
    const out = join(dir, `${name}.mp3`);
    writeFileSync(out, plain ?? Buffer.alloc(0));
    const d = decode(out);
    t.ok(Math.abs(d.seconds - 3) < 0.3, `${name}: an MP3 of ${d.seconds.toFixed(2)} s`);
    t.ok(medianToneShare(d.channels[0], 800, 0.3, 2.7) > 0.9, `${name}: with the call's tone`);
  }
  const wavPlain = decrypt(wav, a);
  t.ok(wavPlain && wavPlain.subarray(0, 4).toString() === 'RIFF', 'the WAV copy decrypts to a WAV');
  t.equal(decrypt(mp3, stranger), null, 'an unrelated key does not decrypt it');
  const post = meta.posts.find((p) => p.body.id === 'enc1UUID')?.body as { mediaFiles: { pkcs7?: boolean; certificates?: string[]; mediaUri: string }[] };
  t.ok(post.mediaFiles.every((f) => f.pkcs7 === true && f.certificates?.length === 2), 'the metadata marks both files pkcs7, with the two certificate fingerprints');
  t.ok(app.logs.some((l) => l.includes('"recording encrypted"')), 'a log line per recording names the certificates used');
  t.ok(/msmlrec_encrypted_files_total 2/.test((await app.ops('/metrics')).body), 'msmlrec_encrypted_files_total counts both files');
});

t.test('killed while encrypting: at restart the recording is encrypted whole and delivered, no plaintext left', async (t) => {
  const spool = tempDir('spool-enc-crash');
  const plain = randomBytes(72 * 2 * 50); // 50 whole 16 kbit/s frames of "audio"
  plain[0] = 0xff;
  const id = 'crash1UUID_2026-12-01_10-00-00-AAAAAAAA-BBBBBBBB-CCCCCCCC';
  // the plaintext was finalized, its .p7m.part half written, the sidecar not yet: what kill -9 leaves
  writeFileSync(join(spool, `${id}.mp3`), plain);
  writeFileSync(join(spool, `${id}.p7m.part`), randomBytes(1000));
  const open: OpenRecord = {
    schema: 1,
    ctx: { id: 'crash1', confId: 'c', callUUID: 'crash1UUID', dialogId: 'd', dn: null, tenant: null, ivrProfile: null, tenantDbid: null, uriParams: {}, msml: { dest: null, format: null, maxtimeMs: null, attrs: {}, params: {} } },
    mediaId: id,
    startWallMs: Date.now(),
    format: { channels: 2, kbps: 16 },
    wav: null,
    leftChannel: 'other',
    encryption: { certificates: [readFileSync(a.cert, 'utf8')], cipher: 'aes-256-cbc', keyTransport: 'rsa-oaep', extension: 'p7m' },
  };
  writeFileSync(join(spool, `${id}.open.json`), JSON.stringify(open));
  // restart: the recorder finishes it before taking calls, and delivers it
  const app = await recorder(spool);
  await until('delivered', () => meta.posts.some((p) => p.body.id === 'crash1UUID'), 30_000, () => app.logs.slice(-6).join('\n'));
  t.ok(app.logs.some((l) => l.includes('recovered a recording left open')), 'recovered at start');
  const file = storedFiles().find((f) => f.includes(id)) as string;
  t.equal(file.split('/').pop(), `${id}.p7m`, 'stored as its .p7m (no plaintext stored)');
  const out = decrypt(file, a);
  t.ok(out?.equals(plain), 'the delivered file decrypts to the whole plaintext, byte for byte');
  await until('spool emptied', () => readdirSync(spool).length === 0, 10_000);
  t.same(readdirSync(spool), [], 'nothing left in the spool: no plaintext, no .part');
  const post = meta.posts.find((p) => p.body.id === 'crash1UUID')?.body as { mediaFiles: { certificates?: string[] }[] };
  t.same(post.mediaFiles[0].certificates, [loadRecipient(readFileSync(a.cert, 'utf8'), 'a', { allowExpired: false }).fingerprint], 'encrypted for the certificate it was started with (the open record), not the new configuration\'s two');
});

t.test('per-profile certificates: a profile encrypts for its own tenant only; a profile with encrypt: false stores plain', async (t) => {
  for (const app of apps.splice(0)) await app.stop('SIGKILL'); // the simulator gives INVITEs to the first app connected
  const bank = makeCert(dir, 'bank');
  const profiles = join(dir, 'profiles.yaml');
  writeFileSync(profiles, ['Bank.Secure:', `  encryptionCertificates: [${bank.cert}]`, 'Open.Plain:', '  encrypt: false', ''].join('\n'));
  const spool = tempDir('spool-enc-profiles');
  const app = await recorder(spool, { MSMLREC_PROFILES_FILE: profiles });
  const record = async (conf: string, profile: string): Promise<void> => {
    const rtp = await RtpSender.open();
    const inv = await uac.request('INVITE', `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=7001;record;gvp-tenant-id=${profile}`, {
      headers: { 'content-type': 'application/sdp', 'X-Genesys-CallUUID': `${conf}UUID` },
      body: `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${rtp.port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`,
    });
    const dialog = uac.dialogOf(inv);
    await uac.request('INFO', '', { dialog, headers: { 'content-type': 'application/vnd.radisys.msml+xml' }, body: `<msml version="1.1"><dialogstart target="conf:${conf}" name="rec"><record/></dialogstart></msml>` });
    await rtp.play(Number(/m=audio (\d+)/.exec(String(inv.content))?.[1]), { law: 'PCMU', freq: 800, seconds: 1.5, ssrc: 6 });
    await uac.request('BYE', '', { dialog });
    rtp.close();
    await until(`${conf} delivered`, () => meta.posts.some((p) => p.body.id === `${conf}UUID`), 30_000, () => app.logs.slice(-6).join('\n'));
  };
  await record('encp1', 'Bank.Secure');
  await record('encp2', 'Open.Plain');
  await record('encp3', 'Other.Default');
  const mp3Of = (conf: string): string => storedFiles().find((f) => f.includes(`${conf}UUID`) && !f.includes('.wav')) as string;
  const secure = mp3Of('encp1');
  t.ok(decrypt(secure, bank), "Bank.Secure: the bank's key decrypts it");
  t.equal(decrypt(secure, a), null, "... tenant-a's (the recorder's global certificate) does not");
  t.ok(mp3Of('encp2').endsWith('.mp3') && playable(mp3Of('encp2')), 'Open.Plain: stored as a playable MP3 (encrypt: false)');
  t.ok(decrypt(mp3Of('encp3'), a) && decrypt(mp3Of('encp3'), b), 'a profile not in the file: default, the global certificates');
});
