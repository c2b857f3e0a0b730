/**
 * CMS EnvelopedData as the Recording Crypto Server gets it, checked by OpenSSL: `openssl cms -decrypt` with each
 * recipient's key gives the byte-identical file, an unrelated key fails, every cipher / key transport variant
 * decrypts, the DER re-encodes to itself (pkijs), and bad certificates are refused with a message naming them.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import t from 'tap';
import { ConfigError } from '../../src/errors.js';
import { cbcLength, encryptFile, isEnveloped, loadRecipient, type EncryptionSpec } from '../../src/recording/cms-envelope.js';
import { cmsDecrypt, makeCert, type TestCert } from '../harness/certs.js';
import { tempDir } from '../harness/recorder-harness.js';

const dir = tempDir('cms');
const decrypt = (file: string, c: TestCert): { ok: boolean; out: Buffer; err: string } => {
  const r = cmsDecrypt(dir, file, c);
  return { ok: r.out !== null, out: r.out ?? Buffer.alloc(0), err: r.err };
};

const a = makeCert(dir, 'tenant-a');
const b = makeCert(dir, 'tenant-b');
const stranger = makeCert(dir, 'stranger');
const recipient = (c: { cert: string }) => loadRecipient(readFileSync(c.cert, 'utf8'), c.cert, { allowExpired: false });

t.test('two certificates: each key decrypts the byte-identical file on its own, an unrelated key fails', async (t) => {
  const plain = randomBytes(300_001); // not a multiple of the block size; the length needs a long-form DER header
  const src = join(dir, 'rec1.mp3');
  writeFileSync(src, plain);
  const spec: EncryptionSpec = { recipients: [recipient(a), recipient(b)], cipher: 'aes-256-cbc', keyTransport: 'rsa-oaep' };
  const res = await encryptFile(src, src, spec);
  t.equal(existsSync(`${src}.part`), false, 'no .part left');
  t.ok(await isEnveloped(src), 'the plaintext was replaced by the envelope');
  t.equal(res.fingerprints.length, 2);
  t.equal(readFileSync(src).length, res.bytes);
  for (const [name, c] of [['tenant-a', a], ['tenant-b', b]] as const) {
    const d = decrypt(src, c);
    t.ok(d.ok, `${name}'s key decrypts (${d.err.trim()})`);
    t.ok(d.out.equals(plain), `${name}: byte-identical`);
  }
  t.notOk(decrypt(src, stranger).ok, 'an unrelated key does not decrypt it');
  const asn1 = readFileSync(src);
  const info = pkijs.ContentInfo.fromBER(asn1);
  t.equal(info.contentType, '1.2.840.113549.1.7.3', 'ContentInfo of id-envelopedData');
  const env = new pkijs.EnvelopedData({ schema: info.content });
  t.equal(env.recipientInfos.length, 2, 'one KeyTransRecipientInfo per certificate');
  t.equal(env.encryptedContentInfo.encryptedContent?.valueBlock.valueHexView.length, cbcLength(plain.length), 'the content is the whole ciphertext');
  const reencoded = Buffer.from(new pkijs.ContentInfo({ contentType: info.contentType, content: env.toSchema() }).toSchema().toBER(false));
  if (!reencoded.equals(asn1)) t.comment(`${reencoded.length} vs ${asn1.length}; first difference at ${[...asn1].findIndex((x, i) => x !== reencoded[i])}: ${asn1.subarray(0, 40).toString('hex')} / ${reencoded.subarray(0, 40).toString('hex')}`);
  t.ok(reencoded.equals(asn1), 'DER: pkijs encodes the parsed envelope to the same bytes');
});

t.test('aes-128-cbc, rsa-pkcs1 and an empty file decrypt too', async (t) => {
  for (const [cipher, keyTransport, size] of [['aes-128-cbc', 'rsa-oaep', 5000], ['aes-256-cbc', 'rsa-pkcs1', 4096], ['aes-128-cbc', 'rsa-pkcs1', 0]] as const) {
    const plain = randomBytes(size);
    const src = join(dir, `v-${cipher}-${keyTransport}-${size}.mp3`);
    const dst = src.replace(/\.mp3$/, '.p7m');
    writeFileSync(src, plain);
    await encryptFile(src, dst, { recipients: [recipient(a)], cipher, keyTransport });
    const d = decrypt(dst, a);
    t.ok(d.ok && d.out.equals(plain), `${cipher} / ${keyTransport} / ${size} bytes: decrypts to the same bytes (${d.err.trim()})`);
  }
});

t.test('bad certificates are refused, naming them', async (t) => {
  const weak = makeCert(dir, 'weak', { bits: 1024 });
  const expired = join(dir, 'expired.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'expired.key'), '-out', expired, '-subj', '/CN=old', '-days', '1'], { stdio: 'ignore' });
  const later = new Date(Date.now() + 3 * 86_400_000);
  const throwsNamed = (f: () => unknown, re: RegExp, what: string): void => {
    try {
      f();
      t.fail(`${what}: accepted`);
    } catch (err) {
      t.ok(err instanceof ConfigError && re.test((err as Error).message), `${what}: ${(err as Error).message}`);
    }
  };
  throwsNamed(() => loadRecipient(readFileSync(weak.cert, 'utf8'), weak.cert, { allowExpired: false }), /weak\.crt: RSA key of 1024 bits/, '1024-bit key');
  throwsNamed(() => loadRecipient(readFileSync(expired, 'utf8'), expired, { allowExpired: false, now: later }), /expired\.crt: expired/, 'expired');
  t.ok(loadRecipient(readFileSync(expired, 'utf8'), expired, { allowExpired: true, now: later }).expired, 'expired, with allowExpired: taken, flagged');
  throwsNamed(() => loadRecipient('hello', 'inline #1', { allowExpired: false }), /inline #1: not a PEM certificate/, 'not PEM');
  const chain = readFileSync(a.cert, 'utf8') + readFileSync(b.cert, 'utf8');
  throwsNamed(() => loadRecipient(chain, 'chain.pem', { allowExpired: false }), /chain\.pem: 2 certificates \(a chain\)/, 'a chain');
});
