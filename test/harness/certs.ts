/** Test certificates made by openssl, and `openssl cms -decrypt`: what the Recording Crypto Server would do. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCert {
  cert: string;
  key: string;
}

/** A self-signed RSA certificate and its key in `dir`. */
export function makeCert(dir: string, name: string, opts: { bits?: number; days?: number } = {}): TestCert {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', `rsa:${opts.bits ?? 2048}`, '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${name}/O=msml-recorder test`, '-days', String(opts.days ?? 30)], { stdio: 'ignore' });
  return { cert, key };
}

/** Decrypts a DER CMS file with one recipient's key: the plaintext, or null with OpenSSL's complaint. */
export function cmsDecrypt(dir: string, file: string, c: TestCert): { out: Buffer | null; err: string } {
  const out = join(dir, `dec-${Math.random().toString(36).slice(2)}`);
  const r = spawnSync('openssl', ['cms', '-decrypt', '-inform', 'DER', '-in', file, '-inkey', c.key, '-recip', c.cert, '-out', out]);
  return { out: r.status === 0 && existsSync(out) ? readFileSync(out) : null, err: r.stderr.toString().trim() };
}
