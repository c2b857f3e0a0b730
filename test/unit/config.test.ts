import t from 'tap';
import { thrown } from '../harness/thrown.js';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { encryptionOf, loadConfig, mp3Format, redacted } from '../../src/config.js';
import { buildProfiles } from '../../src/profiles.js';

t.test('defaults load and validate', async (t) => {
  const c = loadConfig({});
  t.equal(c.drachtio.port, 9022);
  t.equal(c.recording.format, 'mp3-16-stereo');
  t.same(mp3Format(c), { channels: 2, kbps: 16 });
  t.equal(redacted(c).drachtio.secret, '***');
});

t.test('env overrides every leaf with one prefix, typed', async (t) => {
  const c = loadConfig({ MSMLREC_RTP_PORT_MIN: '25000', MSMLREC_RTP_CODECS: 'PCMA', MSMLREC_RECORDING_FORMAT: 'mp3-8-mono', MSMLREC_DRACHTIO_SECRET: 's3' });
  t.equal(c.rtp.portMin, 25000);
  t.same(c.rtp.codecs, ['PCMA']);
  t.same(mp3Format(c), { channels: 1, kbps: 8 });
  t.equal(c.drachtio.secret, 's3');
});

t.test('a config file laid over the defaults', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const f = join(dir, 'site.yaml');
  writeFileSync(f, 'rtp:\n  advertisedAddress: 203.0.113.7\n');
  t.equal(loadConfig({ MSMLREC_CONFIG: f }).rtp.advertisedAddress, '203.0.113.7');
  writeFileSync(f, 'rtp:\n  advertisedAdress: typo\n');
  t.match(thrown(() => loadConfig({ MSMLREC_CONFIG: f })), { name: 'ConfigError', message: /unknown option "advertisedAdress"/ });
});

t.test('bad config is refused with a clear message', async (t) => {
  t.match(thrown(() => loadConfig({ MSMLREC_RTP_PORT_MIN: 'lots' })), { name: 'ConfigError', message: /MSMLREC_RTP_PORT_MIN: "lots" is not a number/ });
  t.match(thrown(() => loadConfig({ MSMLREC_RTP_PORTMIN: '1' })), { name: 'ConfigError', message: /unknown environment variable\(s\): MSMLREC_RTP_PORTMIN/ });
  t.match(thrown(() => loadConfig({ MSMLREC_RECORDING_FORMAT: 'mp3-64-stereo' })), { name: 'ConfigError', message: /recording.format/ });
  t.match(thrown(() => loadConfig({ MSMLREC_RTP_PORT_MIN: '30000', MSMLREC_RTP_PORT_MAX: '20000' })), { name: 'ConfigError', message: /portMin must be below/ });
  t.match(thrown(() => loadConfig({ MSMLREC_RTP_CODECS: 'G729' })), { name: 'ConfigError', message: /rtp.codecs/ });
});

t.test('encryption: certificates are read and checked at load; a bad one is refused naming it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'conf-enc-'));
  const junk = join(dir, 'junk.crt');
  writeFileSync(junk, 'not a certificate');
  t.equal(encryptionOf(loadConfig({})), null, 'off by default');
  t.match(thrown(() => loadConfig({ MSMLREC_ENCRYPTION_ENABLED: 'true' })), { name: 'ConfigError', message: /needs at least one certificate/ });
  t.match(thrown(() => loadConfig({ MSMLREC_ENCRYPTION_ENABLED: 'true', MSMLREC_ENCRYPTION_CERTIFICATES: join(dir, 'missing.crt') })), { name: 'ConfigError', message: /missing\.crt: cannot be read \(ENOENT\)/ });
  t.match(thrown(() => loadConfig({ MSMLREC_ENCRYPTION_ENABLED: 'true', MSMLREC_ENCRYPTION_CERTIFICATES: junk })), { name: 'ConfigError', message: /junk\.crt: not a PEM certificate/ });
  t.match(thrown(() => loadConfig({ MSMLREC_ENCRYPTION_ENABLED: 'true', MSMLREC_ENCRYPTION_CERTIFICATES: junk, MSMLREC_ENCRYPTION_CIPHER: 'rc4' })), { name: 'ConfigError', message: /encryption.cipher/ });
});

t.test('profiles: default inherits from the main config, the others from default; bad entries are refused, named', async (t) => {
  const c = loadConfig({ MSMLREC_RECORDING_FORMAT: 'mp3-16-stereo', MSMLREC_DELIVERY_WEBDAV_URL: 'http://dav.example/rec' });
  const p = buildProfiles(c, 'default:\n  metadataUrl: http://rp.example/api\nA.B:\n  format: mp3-8-mono\n', 'test.yaml');
  t.match(p.resolve('A.B'), { name: 'A.B', format: 'mp3-8-mono', webdavUrl: 'http://dav.example/rec', metadataUrl: 'http://rp.example/api' }, 'A.B: its format, default\'s RP, the main WebDAV');
  t.equal(p.resolve('X.Y')?.name, 'default', 'unknown: default');
  t.equal(p.resolve(null)?.name, 'default', 'none in the URI: default');
  t.equal(buildProfiles({ ...c, profiles: { ...c.profiles, requireKnown: true } }, 'A.B: {}\n').resolve('X.Y'), null, 'requireKnown: unknown is refused');
  t.match(thrown(() => buildProfiles(c, 'A.B:\n  webdavUrl: https://dav.example/x\n', 'test.yaml')), { name: 'ConfigError', message: /profile A\.B: webdavUrl is https but webdavUser or webdavPassword is empty/ });
  t.match(thrown(() => buildProfiles(c, 'Tenant:\n  format: mp3-8-mono\n', 'test.yaml')), { message: /profile "Tenant" is not <Tenant>.<Profile>/ });
  t.match(thrown(() => buildProfiles(c, 'A.B:\n  format: mp3-64\n', 'test.yaml')), { message: /test\.yaml: A\.B\.format/ });
  t.match(thrown(() => buildProfiles(c, 'A.B: [\n', 'test.yaml')), { message: /test\.yaml: not YAML/ });
  // per-profile encryption: listing certificates turns it on; encrypt true without any is refused
  t.equal(p.resolve('A.B')?.encryption, null, 'not encrypted by default');
  t.match(thrown(() => buildProfiles(c, 'A.B:\n  encrypt: true\n', 'test.yaml')), { message: /profile A\.B: encrypt is true but no encryptionCertificates/ });
  t.match(thrown(() => buildProfiles(c, 'A.B:\n  encryptionCertificates: [/nonexistent.pem]\n', 'test.yaml')), { message: /profile A\.B: encryption certificate \/nonexistent\.pem: cannot be read \(ENOENT\)/ });
  // SpeechMiner destinations: a WebDAV URL, S3:<bucket>[/<prefix>], or '' (beside the MP3)
  const sm = buildProfiles(c, 'A.B:\n  speechMinerUrl: S3:analytics-eu/sm\n  s3AccessKeyId: AKIA1\n  s3SecretAccessKey: x\n', 'test.yaml').resolve('A.B');
  t.match(sm, { speechMinerUrl: 'S3:analytics-eu/sm', s3Region: 'us-east-1', s3ForcePathStyle: false }, 'an S3 SpeechMiner destination, the rest from the main config');
  t.match(thrown(() => buildProfiles(c, 'A.B:\n  speechMinerUrl: S3:Bad_Bucket!\n', 'test.yaml')), { message: /A\.B\.speechMinerUrl/ }, 'a bad bucket name is refused');
  t.match(thrown(() => buildProfiles(c, 'A.B:\n  speechMinerUrl: ftp://x\n', 'test.yaml')), { message: /A\.B\.speechMinerUrl/ }, 'neither WebDAV nor S3 is refused');
  t.match(thrown(() => buildProfiles(c, 'A.B:\n  speechMinerUrl: S3:bucket1\n  s3AccessKeyId: AKIA1\n', 'test.yaml')), { message: /profile A\.B: s3AccessKeyId and s3SecretAccessKey go together/ });
  t.match(thrown(() => buildProfiles(c, 'A.B:\n  speechMinerUrl: https://sm.example/dav\n', 'test.yaml')), { message: /profile A\.B: speechMinerUrl is https but speechMinerUser or speechMinerPassword is empty/ });
});
