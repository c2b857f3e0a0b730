import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { loadCertificates, type Encryption } from './recording/cms-envelope.js';
import { usableCores } from './ops/cpu-pressure.js';
import { TrustedSources } from './sip/trusted-sources.js';

/** Where SpeechMiner's WAV goes: '' (beside the MP3), a WebDAV http(s) URL, or S3:<bucket>[/<prefix>] (also per profile). */
export const speechMinerUrl = z.union([
  z.literal(''),
  z.string().url().regex(/^https?:\/\//, 'must be http(s)'),
  z.string().regex(/^S3:[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/i, 'must be S3:<bucket>[/<prefix>] with a valid bucket name'),
]);

const port = z.number().int().min(1).max(65535);
/** A list of CIDRs or addresses (`TrustedSources` says which entry is not one). */
const sources = z.array(z.string()).superRefine((list, ctx) => {
  try {
    new TrustedSources(list);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});


const Schema = z
  .object({
    drachtio: z.object({ host: z.string().min(1), port, secret: z.string().min(1) }).strict(),
    rtp: z
      .object({
        bindAddress: z.string().min(1),
        advertisedAddress: z.string().min(1),
        portMin: port,
        portMax: port,
        codecs: z.array(z.enum(['PCMU', 'PCMA'])).min(1),
        jitterMs: z.number().int().min(0).max(2000),
        maxSkewMs: z.number().int().min(50).max(10_000),
        horizonMs: z.number().int().min(500).max(30_000),
        timeoutSec: z.number().min(0),
      })
      .strict()
      .refine((r) => r.portMin < r.portMax, { message: 'rtp.portMin must be below rtp.portMax' }),
    media: z
      .object({
        workers: z.union([z.literal('auto'), z.number().int().min(0).max(64), z.string().regex(/^\d+$/, 'must be auto or a number').transform(Number)]),
        udp: z.enum(['auto', 'native', 'js']),
      })
      .strict(),
    sip: z.object({ maxBodyBytes: z.number().int().min(1024).max(10_000_000), allowedSources: sources, answerTimeoutSec: z.number().min(1).max(300) }).strict(),
    siprec: z
      .object({
        enabled: z.boolean(),
        profileRule: z.string().regex(/^(default|uri-user|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+)$/, 'must be default, uri-user or header:<Name>'),
        leftChannel: z.enum(['caller', 'callee']),
      })
      .strict(),
    recording: z
      .object({
        format: z.enum(['mp3-8-mono', 'mp3-16-stereo', 'mp3-32-stereo']),
        leftChannel: z.enum(['other', 'recordDN']),
        maxDurationSec: z.number().int().min(1),
        wavCopy: z.enum(['off', 'PCMU', 'PCMA']),
        alertTone: z.string(),
        toneSilenceMs: z.number().int().min(1500),
        hearsTone: z.array(z.enum(['other', 'recordDN'])),
      })
      .strict(),
    admission: z
      .object({
        maxLoopDelayMs: z.number().int().min(0),
        maxEncodeLagMs: z.number().int().min(0),
        maxThrottledPct: z.number().min(0).max(100),
        maxCpuWaitPct: z.number().min(0).max(100),
        windowMs: z.number().int().min(100).max(60_000),
        holdSec: z.number().min(0),
      })
      .strict(),
    profiles: z.object({ file: z.string(), requireKnown: z.boolean(), reloadSec: z.number().min(0) }).strict(),
    spool: z.object({ dir: z.string().min(1), maxBytes: z.number().int().min(0), minFreeBytes: z.number().int().min(0) }).strict(),
    delivery: z
      .object({
        enabled: z.boolean(),
        redisUrl: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
        queue: z.string().min(1),
        webdavUrl: z.string().url().regex(/^https?:\/\//, 'must be http(s)'),
        webdavUser: z.string(),
        webdavPassword: z.string(),
        metadataUrl: z.union([z.literal(''), z.string().url().regex(/^https?:\/\//, 'must be http(s)')]),
        metadataUser: z.string(),
        metadataPassword: z.string(),
        speechMinerUrl: speechMinerUrl,
        speechMinerUser: z.string(),
        speechMinerPassword: z.string(),
        s3Region: z.string().min(1),
        s3Endpoint: z.union([z.literal(''), z.string().url().regex(/^https?:\/\//, 'must be http(s)')]),
        s3ForcePathStyle: z.boolean(),
        s3AccessKeyId: z.string(),
        s3SecretAccessKey: z.string(),
        attempts: z.number().int().min(1).max(1000),
        backoffMs: z.number().int().min(10),
        concurrency: z.number().int().min(1).max(64),
        timeoutMs: z.number().int().min(100),
        sweepMs: z.number().int().min(100),
        allowedDestHosts: z.array(z.string().min(1)),
      })
      .strict(),
    encryption: z
      .object({
        enabled: z.boolean(),
        certificates: z.array(z.string().min(1)),
        cipher: z.enum(['aes-256-cbc', 'aes-128-cbc']),
        keyTransport: z.enum(['rsa-oaep', 'rsa-pkcs1']),
        allowExpired: z.boolean(),
        extension: z.enum(['mp3', 'p7m']),
      })
      .strict()
      .refine((e) => !e.enabled || e.certificates.length > 0, { message: 'encryption.enabled needs at least one certificate' }),
    encoder: z
      .object({ workers: z.number().int().min(0).max(256), engine: z.enum(['wasm', 'lamejs']), quality: z.number().int().min(0).max(9), batchMs: z.number().int().min(20).max(2000), nice: z.number().int().min(0).max(19) })
      .strict(),
    ops: z.object({ bindAddress: z.string().min(1), port: z.number().int().min(0).max(65535), redisGraceMs: z.number().int().min(0), adminToken: z.string() }).strict(),
    drain: z.object({ callGraceSec: z.number().min(0), deliveryGraceSec: z.number().min(0) }).strict(),
    cluster: z
      .object({
        enabled: z.boolean(),
        redisUrl: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
        id: z.string(),
        sipUri: z.union([z.literal(''), z.string().regex(/^sips?:/, 'must be a sip: URI')]),
        maxCalls: z.number().int().min(1),
        heartbeatMs: z.number().int().min(100),
      })
      .strict(),
    rmShim: z
      .object({ confTtlSec: z.number().int().min(1), failoverTargets: z.number().int().min(1).max(10), provisionalTimeoutMs: z.number().int().min(100), allowedSources: sources })
      .strict(),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) }).strict(),
  })
  .strict();

export type Config = z.infer<typeof Schema>;
export type DeliveryConfig = Config['delivery'];

export const ENV_PREFIX = 'MSMLREC_';
/** conf/default.yaml, found from src/ (tsx) or dist/src/ (compiled). */
export const DEFAULT_CONFIG_PATH = fileURLToPath(
  new URL(import.meta.url.includes('/dist/') ? '../../conf/default.yaml' : '../conf/default.yaml', import.meta.url),
);

type Tree = { [k: string]: unknown };

const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

function envName(path: string[]): string {
  return ENV_PREFIX + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

function merge(base: Tree, over: Tree, where: string): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (!(k in base)) throw new ConfigError(`${where}: unknown option "${k}"`);
    out[k] = isTree(base[k]) && isTree(v) ? merge(base[k] as Tree, v, `${where}.${k}`) : v;
  }
  return out;
}

function coerce(raw: string, like: unknown, name: string): unknown {
  if (typeof like === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || Number.isNaN(n)) throw new ConfigError(`${name}: "${raw}" is not a number`);
    return n;
  }
  if (typeof like === 'boolean') {
    if (!/^(true|false|1|0)$/i.test(raw)) throw new ConfigError(`${name}: "${raw}" is not true/false`);
    return /^(true|1)$/i.test(raw);
  }
  if (Array.isArray(like)) return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return raw;
}

/** Collects env overrides for every leaf of `defaults`; rejects MSMLREC_ variables that name no option. */
function envOverrides(defaults: Tree, env: NodeJS.ProcessEnv): Tree {
  const known = new Set<string>([`${ENV_PREFIX}CONFIG`]);
  const walk = (node: Tree, path: string[]): Tree => {
    const out: Tree = {};
    for (const [k, v] of Object.entries(node)) {
      const p = [...path, k];
      if (isTree(v)) {
        const sub = walk(v, p);
        if (Object.keys(sub).length) out[k] = sub;
      } else {
        const name = envName(p);
        known.add(name);
        if (env[name] !== undefined) out[k] = coerce(env[name] as string, v, name);
      }
    }
    return out;
  };
  const over = walk(defaults, []);
  const unknown = Object.keys(env).filter((k) => k.startsWith(ENV_PREFIX) && !known.has(k));
  if (unknown.length) throw new ConfigError(`unknown environment variable(s): ${unknown.join(', ')}`);
  return over;
}

function readYaml(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isTree(doc)) throw new ConfigError(`config file ${path} must be a mapping`);
  return doc;
}

/**
 * Loads conf/default.yaml, lays MSMLREC_CONFIG's file over it, then the MSMLREC_ environment, and validates the
 * result once. Throws ConfigError naming every problem.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, defaultsPath = DEFAULT_CONFIG_PATH): Config {
  const defaults = readYaml(defaultsPath);
  let tree = defaults;
  const extra = env[`${ENV_PREFIX}CONFIG`];
  if (extra) tree = merge(tree, readYaml(extra), extra);
  tree = merge(tree, envOverrides(defaults, env), 'environment');
  const r = Schema.safeParse(tree);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${msgs.join('; ')}`);
  }
  encryptionOf(r.data); // the certificates are read and checked once, at start: a bad one stops it here
  return r.data;
}

/** What `encryption.*` asks for (certificates read and checked), or null when recordings are not encrypted. */
export function encryptionOf(c: Config): Encryption | null {
  const e = c.encryption;
  if (!e.enabled) return null;
  const recipients = loadCertificates(e.certificates, { allowExpired: e.allowExpired });
  return { recipients, cipher: e.cipher, keyTransport: e.keyTransport, extension: e.extension };
}

/**
 * This recorder's stable name: cluster.id, else the host name. It names the delivery queue (each recorder delivers
 * its own spool) and the registry entry, so it must survive restarts: a StatefulSet pod name, not a node name.
 */
export function instanceId(c: Config): string {
  return c.cluster.id || hostname();
}

/** Encoder workers to start, in all: the configured number, or one per core. */
export function encoderWorkers(c: Config): number {
  return c.encoder.workers > 0 ? c.encoder.workers : usableCores();
}

/**
 * Media worker threads to start: one per core the container may use for `auto` (its CPU quota, not the node's
 * cores); 0 runs the media in the main thread.
 */
export function mediaWorkers(c: Config): number {
  const w = c.media.workers;
  return w === 'auto' ? usableCores() : Number(w);
}

/** Renders the config for the start-up log with secrets hidden. */
export function redacted(c: Config): Config {
  const hide = (url: string): string => url.replace(/\/\/[^@/]*@/, '//***@');
  return {
    ...c,
    drachtio: { ...c.drachtio, secret: '***' },
    delivery: { ...c.delivery, webdavPassword: '***', metadataPassword: '***', speechMinerPassword: '***', s3SecretAccessKey: '***', redisUrl: hide(c.delivery.redisUrl) },
    cluster: { ...c.cluster, redisUrl: hide(c.cluster.redisUrl) },
    ops: { ...c.ops, adminToken: c.ops.adminToken ? '***' : '' },
  };
}

export function mp3Format(c: Config): { channels: 1 | 2; kbps: 8 | 16 | 32 } {
  return formatOf(c.recording.format);
}

/** The MP3 channels and bit rate a `recording.format` (or a profile's `format`) names. */
export function formatOf(format: Config['recording']['format']): { channels: 1 | 2; kbps: 8 | 16 | 32 } {
  switch (format) {
    case 'mp3-8-mono':
      return { channels: 1, kbps: 8 };
    case 'mp3-16-stereo':
      return { channels: 2, kbps: 16 };
    case 'mp3-32-stereo':
      return { channels: 2, kbps: 32 };
  }
}
