import { constants, createCipheriv, publicEncrypt, randomBytes, X509Certificate } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { open, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { ConfigError } from '../errors.js';
import { syncDir } from './spool-file.js';

/** Content ciphers a recording may be encrypted with (what RCS-style decryptors and `openssl cms` read). */
export type ContentCipher = 'aes-256-cbc' | 'aes-128-cbc';
/** How the content key is encrypted for each certificate. */
export type KeyTransport = 'rsa-oaep' | 'rsa-pkcs1';

export interface EncryptionSpec {
  recipients: Recipient[];
  cipher: ContentCipher;
  keyTransport: KeyTransport;
}

/** How a recorder encrypts its recordings: the envelope and the name the encrypted file gets (`.mp3` or `.p7m`). */
export interface Encryption extends EncryptionSpec {
  extension: 'mp3' | 'p7m';
}

/** A certificate a recording is encrypted for. */
export interface Recipient {
  /** Where it came from (file path, or `inline #n`), for messages. */
  source: string;
  pem: string;
  /** SHA-256 fingerprint, hex with colons (as `openssl x509 -fingerprint -sha256` prints it). */
  fingerprint: string;
  subject: string;
  /** When it stops being valid. */
  validTo: string;
  expired: boolean;
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  envelopedData: '1.2.840.113549.1.7.3',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsaesOaep: '1.2.840.113549.1.1.7',
  'aes-128-cbc': '2.16.840.1.101.3.4.1.2',
  'aes-256-cbc': '2.16.840.1.101.3.4.1.42',
} as const;
const KEY_BYTES: Record<ContentCipher, number> = { 'aes-128-cbc': 16, 'aes-256-cbc': 32 };
const MIN_RSA_BITS = 2048;

/**
 * The recipients of configured certificate entries: each a file path or the PEM text itself, read and checked as
 * `loadRecipient` does. Throws ConfigError naming the entry (`what` says where it was configured).
 */
export function loadCertificates(entries: string[], opts: { allowExpired: boolean }, what = 'encryption certificate'): Recipient[] {
  return entries.map((entry, i) => {
    const inline = entry.includes('-----BEGIN');
    let pem = entry;
    if (!inline) {
      try {
        pem = readFileSync(entry, 'utf8');
      } catch (err) {
        throw new ConfigError(`${what} ${entry}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
    return loadRecipient(pem, inline ? `inline #${i + 1}` : entry, opts);
  });
}

/**
 * Reads and checks one recipient certificate: exactly one X.509 certificate in PEM (no chain), an RSA key of at
 * least 2048 bits, not expired unless `allowExpired`. Throws ConfigError naming `source`.
 */
export function loadRecipient(pem: string, source: string, opts: { allowExpired: boolean; now?: Date }): Recipient {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const first = blocks[0];
  if (first === undefined) throw new ConfigError(`encryption certificate ${source}: not a PEM certificate`);
  if (blocks.length > 1) throw new ConfigError(`encryption certificate ${source}: ${blocks.length} certificates (a chain); give one certificate per entry`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(first);
  } catch (err) {
    throw new ConfigError(`encryption certificate ${source}: cannot be read (${(err as Error).message})`);
  }
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== 'rsa') throw new ConfigError(`encryption certificate ${source}: the key is ${key.asymmetricKeyType}, not RSA`);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) throw new ConfigError(`encryption certificate ${source}: RSA key of ${bits} bits; at least ${MIN_RSA_BITS} are needed`);
  const expired = new Date(cert.validTo).getTime() < (opts.now ?? new Date()).getTime();
  if (expired && !opts.allowExpired) throw new ConfigError(`encryption certificate ${source}: expired ${cert.validTo} (set encryption.allowExpired to use it anyway)`);
  return { source, pem: first, fingerprint: cert.fingerprint256, subject: cert.subject.replace(/\n/g, ', '), validTo: cert.validTo, expired };
}

/** A DER tag and length (X.690 8.1.3: short form under 128, else the length's bytes, big-endian). */
function tlvHead(tag: number, length: number): Buffer {
  if (length < 0x80) return Buffer.from([tag, length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

const der = (b: asn1js.BaseBlock | { toSchema(): asn1js.BaseBlock }): Buffer =>
  Buffer.from(('toSchema' in b ? b.toSchema() : b).toBER(false));

/** The KeyTransRecipientInfo (issuer and serial number) carrying `contentKey` for one certificate. */
function recipientInfo(r: Recipient, transport: KeyTransport, contentKey: Buffer): asn1js.BaseBlock {
  const raw = new X509Certificate(r.pem).raw;
  const cert = pkijs.Certificate.fromBER(raw);
  const oaep = transport === 'rsa-oaep';
  // RSAES-OAEP with its default parameters (SHA-1, MGF1 with SHA-1): what decryptors read without negotiation
  const encryptedKey = publicEncrypt({ key: r.pem, padding: oaep ? constants.RSA_PKCS1_OAEP_PADDING : constants.RSA_PKCS1_PADDING, oaepHash: 'sha1' }, contentKey);
  const info = new pkijs.KeyTransRecipientInfo({
    version: 0,
    rid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
    keyEncryptionAlgorithm: new pkijs.AlgorithmIdentifier({
      algorithmId: oaep ? OID.rsaesOaep : OID.rsaEncryption,
      algorithmParams: oaep ? new asn1js.Sequence({ value: [] }) : new asn1js.Null(),
    }),
    encryptedKey: new asn1js.OctetString({ valueHex: encryptedKey }),
  });
  return new pkijs.RecipientInfo({ variant: 1, value: info }).toSchema();
}

/** Bytes of AES-CBC ciphertext (PKCS#7 padding: always 1..16 bytes added) for `plainBytes` of content. */
export const cbcLength = (plainBytes: number): number => (Math.floor(plainBytes / 16) + 1) * 16;

/**
 * Everything of a DER ContentInfo / EnvelopedData (RFC 5652 §6) up to its encrypted content, which follows it and
 * is `cipherBytes` long: version 0, one KeyTransRecipientInfo per certificate, EncryptedContentInfo of id-data
 * with the cipher and its IV. The inner structures are pkijs/asn1js encodings; the five enclosing headers carry
 * lengths that include the content, which is why they are written here (the content is streamed, never in memory).
 */
export function envelopeHeader(spec: EncryptionSpec, contentKey: Buffer, iv: Buffer, cipherBytes: number): Buffer {
  const version = der(new asn1js.Integer({ value: 0 }));
  const recipients = der(new asn1js.Set({ value: spec.recipients.map((r) => recipientInfo(r, spec.keyTransport, contentKey)) }));
  const dataType = der(new asn1js.ObjectIdentifier({ value: OID.data }));
  const algorithm = der(new pkijs.AlgorithmIdentifier({ algorithmId: OID[spec.cipher], algorithmParams: new asn1js.OctetString({ valueHex: iv }) }));
  const contentHead = tlvHead(0x80, cipherBytes); // [0] IMPLICIT OCTET STRING, primitive
  const eciBody = dataType.length + algorithm.length + contentHead.length + cipherBytes;
  const eciHead = tlvHead(0x30, eciBody);
  const edBody = version.length + recipients.length + eciHead.length + eciBody;
  const edHead = tlvHead(0x30, edBody);
  const explicit = tlvHead(0xa0, edHead.length + edBody);
  const envType = der(new asn1js.ObjectIdentifier({ value: OID.envelopedData }));
  const ciHead = tlvHead(0x30, envType.length + explicit.length + edHead.length + edBody);
  return Buffer.concat([ciHead, envType, explicit, edHead, version, recipients, eciHead, dataType, algorithm, contentHead]);
}

/** Whether a spool file already is CMS ciphertext (a DER SEQUENCE holding id-envelopedData), not an MP3 or WAV. */
export async function isEnveloped(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(32);
    const { bytesRead } = await fh.read(head, 0, 32, 0);
    const oid = der(new asn1js.ObjectIdentifier({ value: OID.envelopedData }));
    return bytesRead > 8 && head[0] === 0x30 && head.subarray(0, bytesRead).includes(oid);
  } finally {
    await fh.close();
  }
}

export interface Enveloped {
  /** Bytes of the encrypted file. */
  bytes: number;
  /** SHA-256 fingerprints of the certificates it is encrypted for. */
  fingerprints: string[];
}

/**
 * Encrypts `src` into `dst` as CMS EnvelopedData (DER) with a fresh content key and IV, streaming (the file is
 * never held in memory): writes `<dst>.part`, fsyncs it and renames it over `dst` (which may be `src` itself: the
 * rename replaces the plaintext in one step). A crash leaves the plaintext or the finished ciphertext, never a
 * partial file under `dst`.
 */
export async function encryptFile(src: string, dst: string, spec: EncryptionSpec): Promise<Enveloped> {
  const plainBytes = (await stat(src)).size;
  const key = randomBytes(KEY_BYTES[spec.cipher]);
  const iv = randomBytes(16);
  const cipherBytes = cbcLength(plainBytes);
  const header = envelopeHeader(spec, key, iv, cipherBytes);
  const part = `${dst}.part`;
  const out = await open(part, 'w');
  let written = 0;
  try {
    const write = async (b: Buffer): Promise<void> => {
      if (b.length === 0) return;
      await out.write(b, 0, b.length, written);
      written += b.length;
    };
    await write(header);
    const cipher = createCipheriv(spec.cipher, key, iv);
    for await (const chunk of createReadStream(src, { highWaterMark: 1 << 16 })) await write(cipher.update(chunk as Buffer));
    await write(cipher.final());
    if (written !== header.length + cipherBytes) throw new Error(`encrypted ${written} bytes, expected ${header.length + cipherBytes}: ${src} changed while it was encrypted`);
    await out.sync();
  } finally {
    await out.close();
    key.fill(0);
  }
  await rename(part, dst);
  await syncDir(dirname(dst));
  return { bytes: written, fingerprints: spec.recipients.map((r) => r.fingerprint) };
}

/** A short id for a certificate in logs: the first 8 bytes of its SHA-256 fingerprint. */
export const certAlias = (r: Recipient): string => r.fingerprint.split(':').slice(0, 8).join('');
