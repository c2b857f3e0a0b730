import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { speechMinerUrl, type Config } from './config.js';
import { ConfigError } from './errors.js';
import { loadCertificates, type Encryption } from './recording/cms-envelope.js';

const url = z.string().url().regex(/^https?:\/\//, 'must be http(s)');

/** What one IVR profile may set (each key optional: unset keys come from `default`, then from the main config). */
const ProfileSchema = z
  .object({
    webdavUrl: url,
    webdavUser: z.string(),
    webdavPassword: z.string(),
    metadataUrl: z.union([z.literal(''), url]),
    metadataUser: z.string(),
    metadataPassword: z.string(),
    format: z.enum(['mp3-8-mono', 'mp3-16-stereo', 'mp3-32-stereo']),
    wavCopy: z.enum(['off', 'PCMU', 'PCMA']),
    allowedDestHosts: z.array(z.string().min(1)),
    speechMinerUrl,
    speechMinerUser: z.string(),
    speechMinerPassword: z.string(),
    s3Region: z.string().min(1),
    s3Endpoint: z.union([z.literal(''), url]),
    s3ForcePathStyle: z.boolean(),
    s3AccessKeyId: z.string(),
    s3SecretAccessKey: z.string(),
    encrypt: z.boolean(),
    encryptionCertificates: z.array(z.string().min(1)),
    alertTone: z.string(),
    toneSilenceMs: z.number().int().min(1500),
    hearsTone: z.array(z.enum(['other', 'recordDN'])),
  })
  .partial()
  .strict();

const FileSchema = z.record(z.string().min(1), ProfileSchema);

/** A profile as a recording uses it: every key resolved. */
export interface RecordingProfile {
  /** `<Tenant>.<Profile>` as in `gvp-tenant-id`, or `default`. */
  name: string;
  /** First 12 hex digits of the SHA-256 of the profiles file the profile came from (`builtin`: no file). */
  version: string;
  webdavUrl: string;
  webdavUser: string;
  webdavPassword: string;
  metadataUrl: string;
  metadataUser: string;
  metadataPassword: string;
  format: Config['recording']['format'];
  wavCopy: Config['recording']['wavCopy'];
  allowedDestHosts: string[];
  /** SpeechMiner's WAV: '' (beside the MP3), a WebDAV URL, or S3:<bucket>[/<prefix>]; and how to reach it. */
  speechMinerUrl: string;
  speechMinerUser: string;
  speechMinerPassword: string;
  s3Region: string;
  s3Endpoint: string;
  s3ForcePathStyle: boolean;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
  /** Whether its recordings are encrypted, for which certificates (paths or PEM); cipher etc. from `encryption.*`. */
  encrypt: boolean;
  encryptionCertificates: string[];
  /** The certificates read and checked (null: not encrypted). */
  encryption: Encryption | null;
  /** The recording alert tone (path or URL; '' none), the silence between plays, who hears it. */
  alertTone: string;
  toneSilenceMs: number;
  hearsTone: ('other' | 'recordDN')[];
}

/** Where a recording of a profile is delivered (what deliver-recording needs of it). */
export type Destination = Omit<RecordingProfile, 'name' | 'version' | 'format' | 'wavCopy' | 'encrypt' | 'encryptionCertificates' | 'encryption' | 'alertTone' | 'toneSilenceMs' | 'hearsTone'>;

/**
 * GIR's IVR profiles (the `gvp-tenant-id=<Tenant>.<Profile>` of the Request-URI), each with its own destinations and
 * format. `default` is what the others inherit from, and itself inherits from the main config (`delivery.*`,
 * `recording.format`, `recording.wavCopy`). A call whose profile is not listed uses `default`, or is refused with
 * `profiles.requireKnown`.
 */
export class Profiles {
  constructor(
    private readonly entries: Map<string, RecordingProfile>,
    readonly requireKnown: boolean,
  ) {}

  /** The profile for a `<Tenant>.<Profile>` (or null from a URI without one); null when unknown and requireKnown. */
  resolve(name: string | null): RecordingProfile | null {
    const p = name === null ? undefined : this.entries.get(name);
    if (p) return p;
    return this.requireKnown ? null : (this.entries.get('default') as RecordingProfile);
  }

  /** The profile a delivered recording names (a profile gone since: `default`). */
  destinationOf(name: string | null | undefined): Destination {
    return this.entries.get(name ?? 'default') ?? (this.entries.get('default') as RecordingProfile);
  }

  get names(): string[] {
    return [...this.entries.keys()];
  }

  /** Every alert tone a profile names (to read them before a call needs them). */
  get alertTones(): string[] {
    return [...new Set([...this.entries.values()].map((p) => p.alertTone).filter((s) => s !== ''))];
  }
}

/** Checks what zod cannot: an https destination needs its credentials. */
function check(p: RecordingProfile): void {
  for (const [u, user, pw, what] of [
    [p.webdavUrl, p.webdavUser, p.webdavPassword, 'webdav'],
    [p.metadataUrl, p.metadataUser, p.metadataPassword, 'metadata'],
  ] as const) {
    if (u.startsWith('https://') && (user === '' || pw === '')) throw new ConfigError(`profile ${p.name}: ${what}Url is https but ${what}User or ${what}Password is empty`);
  }
  if (/^https:/.test(p.speechMinerUrl) && (p.speechMinerUser === '' || p.speechMinerPassword === '')) {
    throw new ConfigError(`profile ${p.name}: speechMinerUrl is https but speechMinerUser or speechMinerPassword is empty`);
  }
  if ((p.s3AccessKeyId === '') !== (p.s3SecretAccessKey === '')) throw new ConfigError(`profile ${p.name}: s3AccessKeyId and s3SecretAccessKey go together (both empty: the AWS default credential chain)`);
}

/** A profile's encryption: its certificates read and checked (the error names the profile), the rest from `encryption.*`. */
function encryptionOfProfile(p: RecordingProfile, e: Config['encryption']): Encryption | null {
  if (!p.encrypt) return null;
  if (p.encryptionCertificates.length === 0) throw new ConfigError(`profile ${p.name}: encrypt is true but no encryptionCertificates (and none in encryption.certificates)`);
  const recipients = loadCertificates(p.encryptionCertificates, { allowExpired: e.allowExpired }, `profile ${p.name}: encryption certificate`);
  return { recipients, cipher: e.cipher, keyTransport: e.keyTransport, extension: e.extension };
}

/** Builds the profiles from the main config and the YAML text of a profiles file (null: none). Throws ConfigError. */
export function buildProfiles(config: Config, fileText: string | null, where = 'profiles file'): Profiles {
  const d = config.delivery;
  const base: RecordingProfile = {
    name: 'default',
    version: 'builtin',
    webdavUrl: d.webdavUrl,
    webdavUser: d.webdavUser,
    webdavPassword: d.webdavPassword,
    metadataUrl: d.metadataUrl,
    metadataUser: d.metadataUser,
    metadataPassword: d.metadataPassword,
    format: config.recording.format,
    wavCopy: config.recording.wavCopy,
    allowedDestHosts: d.allowedDestHosts,
    speechMinerUrl: d.speechMinerUrl,
    speechMinerUser: d.speechMinerUser,
    speechMinerPassword: d.speechMinerPassword,
    s3Region: d.s3Region,
    s3Endpoint: d.s3Endpoint,
    s3ForcePathStyle: d.s3ForcePathStyle,
    s3AccessKeyId: d.s3AccessKeyId,
    s3SecretAccessKey: d.s3SecretAccessKey,
    encrypt: config.encryption.enabled,
    encryptionCertificates: config.encryption.certificates,
    encryption: null,
    alertTone: config.recording.alertTone,
    toneSilenceMs: config.recording.toneSilenceMs,
    hearsTone: config.recording.hearsTone,
  };
  let raw: unknown = {};
  if (fileText !== null) {
    try {
      raw = parseYaml(fileText) ?? {};
    } catch (err) {
      throw new ConfigError(`${where}: not YAML (${(err as Error).message.split('\n')[0]})`);
    }
  }
  const r = FileSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`${where}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const version = fileText === null ? 'builtin' : createHash('sha256').update(fileText).digest('hex').slice(0, 12);
  // listing certificates turns encryption on for the profile unless it says `encrypt: false`
  const withCerts = (p: z.infer<typeof ProfileSchema> | undefined) => (p?.encryptionCertificates?.length && p.encrypt === undefined ? { ...p, encrypt: true } : p);
  const def: RecordingProfile = { ...base, ...withCerts(r.data.default), name: 'default', version };
  const entries = new Map<string, RecordingProfile>([['default', def]]);
  for (const [name, p] of Object.entries(r.data)) {
    if (name === 'default') continue;
    if (!/^[^.]+\.[^.]+$/.test(name)) throw new ConfigError(`${where}: profile "${name}" is not <Tenant>.<Profile> (as in gvp-tenant-id)`);
    entries.set(name, { ...def, ...withCerts(p), name, version });
  }
  for (const p of entries.values()) {
    check(p);
    p.encryption = encryptionOfProfile(p, config.encryption);
  }
  return new Profiles(entries, config.profiles.requireKnown);
}

/** The text of `profiles.file` (null: none configured). Throws ConfigError naming the file. */
function readProfilesFile(config: Config): string | null {
  const file = config.profiles.file;
  if (!file) return null;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`profiles file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** How long a changed profiles file must stay the same before it is taken, ms. */
const SETTLE_MS = 200;
const fromText = (config: Config, text: string | null): Profiles => buildProfiles(config, text, `profiles file ${config.profiles.file}`);

/** The profiles `profiles.file` names (read now), or the main config alone. Throws ConfigError naming the file. */
export function loadProfiles(config: Config): Profiles {
  return fromText(config, readProfilesFile(config));
}

/**
 * The profiles file, re-read when it changes (a ConfigMap update): every `reloadMs` its content is compared with
 * what was loaded; a new content is validated as a whole and takes effect for calls that start after it (a call keeps
 * the profile it started with); a bad one is refused, logged and counted, and the running profiles stay.
 */
export class ProfileSource {
  private profiles: Profiles;
  /** The file's content in use, and the last content refused (counted once). */
  private text: string | null;
  private rejected: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  reloads = 0;
  reloadFailures = 0;
  /** Why the last change was refused (null: the file in use is the one on disk). */
  lastError: string | null = null;
  /** A changed file's text seen once, waiting to be read the same again. */
  private settling: string | null = null;
  /** Called with the profiles taken into use at start and at every reload. */
  onProfiles: (p: Profiles) => void = () => undefined;

  constructor(
    private readonly config: Config,
    private readonly log: { info(o: object, m: string): void; error(o: object, m: string): void },
  ) {
    this.text = readProfilesFile(config);
    this.profiles = fromText(config, this.text);
  }

  get current(): Profiles {
    return this.profiles;
  }

  resolve(name: string | null): RecordingProfile | null {
    return this.profiles.resolve(name);
  }

  destinationOf(name: string | null | undefined): Destination {
    return this.profiles.destinationOf(name);
  }

  start(): void {
    this.onProfiles(this.profiles);
    const file = this.config.profiles.file;
    const every = this.config.profiles.reloadSec * 1000;
    if (!file || every <= 0) return;
    this.timer = setInterval(() => this.check(), every);
    this.timer.unref();
  }

  /** Looks at the file once (the timer's work). */
  check(): void {
    const file = this.config.profiles.file;
    let text: string | null;
    try {
      text = readProfilesFile(this.config);
    } catch (err) {
      this.refuse((err as Error).message, null);
      return;
    }
    if (text === this.text) {
      // the file in use is the one on disk again (a refused change was taken back): nothing is refused any more
      if (this.lastError !== null) this.log.info({ file }, 'profiles file is the one in use again; the refused change is gone');
      this.lastError = null;
      this.rejected = null;
      return;
    }
    // a changed file is taken once it reads the same twice, SETTLE_MS apart: a writer that truncates and then writes
    // (cp, an editor saving in place) must not be caught half-way (an empty file is valid: the built-in defaults)
    if (text !== this.settling) {
      this.settling = text;
      setTimeout(() => this.check(), SETTLE_MS).unref();
      return;
    }
    this.settling = null;
    try {
      this.profiles = fromText(this.config, text);
      this.text = text;
      this.lastError = null;
      this.reloads++;
      this.onProfiles(this.profiles);
      this.log.info({ file, profiles: this.profiles.names, version: this.profiles.resolve('default')?.version }, 'recording profiles reloaded; new calls use them');
    } catch (err) {
      this.refuse((err as Error).message, text);
    }
  }

  private refuse(why: string, text: string | null): void {
    if (text !== null && text === this.rejected) return; // counted once per bad content
    this.rejected = text;
    this.reloadFailures++;
    this.lastError = why;
    this.log.error({ file: this.config.profiles.file, err: why }, 'profiles file change refused; the running profiles stay');
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
