/**
 * Seeded, bounded fuzzing of every parser that takes outside input: MSML, SDP negotiation, the Request-URI, SIPREC
 * multipart bodies and recording metadata, RTP and
 * the jitter buffer, the config loader, and the drachtio wire guard's helpers. Inputs are mutations of real samples
 * plus the shapes that broke things before (oversized bodies, DOCTYPE/ENTITY, deep nesting, bare LF). Each input
 * must give a result or the module's named error — never another exception, never a hang.
 */
import t, { type Test } from 'tap';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../../src/config.js';
import { ConfigError, RecorderError } from '../../src/errors.js';
import { JitterBuffer } from '../../src/media/jitter-buffer.js';
import { buildRtp, parseRtp } from '../../src/media/rtp-packet.js';
import { parseMsml } from '../../src/msml/msml-parse.js';
import { crlfHeaders, nextFrameStart, normalizeFrame } from '../../src/sip/drachtio-wire-guard.js';
import { parseRecordingUri } from '../../src/sip/request-uri.js';
import { negotiate } from '../../src/sip/sdp-answer.js';
import { siprecChannels } from '../../src/siprec/siprec-channels.js';
import { isSiprecInvite, readSiprecBody } from '../../src/siprec/siprec-request.js';
import { siprecSeeds } from '../harness/siprec-body.js';
import { fuzzer, msmlSeeds, samples, sdpSeeds, SEED, uriSeeds } from '../harness/fuzz-input.js';

const { rand, int, pick, mutate } = fuzzer();
let total = 0;

/** Runs `f`; an exception that is not `allowed` fails the test with the input. */
function expectClean(t: Test, what: string, input: unknown, f: () => unknown, allowed: (e: unknown) => boolean): boolean {
  total++;
  try {
    f();
    return true;
  } catch (err) {
    if (allowed(err)) return true;
    t.fail(`${what}: ${(err as Error).message} for ${JSON.stringify(input).slice(0, 300)}`);
    return false;
  }
}

t.test('MSML parser: 3,000 mutated samples and hostile shapes', async (t) => {
  t.ok(msmlSeeds.length >= 5, `${msmlSeeds.length} MSML seeds`);
  const hostile = [
    `<msml version="1.1">${'<a>'.repeat(5000)}${'</a>'.repeat(5000)}</msml>`,
    `<msml version="1.1">${'<foo/>'.repeat(20_000)}</msml>`,
    '<!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><msml>&b;</msml>',
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><msml version="1.1"><send target="&e;" event="pause"/></msml>',
    `<msml version="1.1"><dialogstart target="${'x'.repeat(100_000)}"><record/></dialogstart></msml>`,
  ];
  let ok = 0;
  const t0 = Date.now();
  for (const h of hostile) if (expectClean(t, 'MSML', h, () => parseMsml(h), (e) => e instanceof RecorderError)) ok++;
  for (let i = 0; i < 3000; i++) {
    const input = mutate(pick(msmlSeeds));
    if (expectClean(t, 'MSML', input, () => parseMsml(input), (e) => e instanceof RecorderError)) ok++;
  }
  t.equal(ok, 3000 + hostile.length, 'every input parsed or got an MSML error');
  t.ok(Date.now() - t0 < 30_000, `in ${Date.now() - t0} ms`);
  let code = 0;
  try {
    parseMsml(hostile[3]);
  } catch (err) {
    code = (err as RecorderError).msmlCode;
  }
  t.equal(code, 400, 'DOCTYPE is MSML 400');
});

t.test('SDP negotiation: 2,500 mutated offers', async (t) => {
  let ok = 0;
  for (let i = 0; i < 2500; i++) {
    const input = mutate(pick(sdpSeeds));
    if (expectClean(t, 'SDP', input, () => negotiate(input, ['PCMU', 'PCMA']), (e) => e instanceof RecorderError)) ok++;
  }
  t.equal(ok, 2500, 'every offer negotiated or refused with a named error (400/488)');
});

t.test('Request-URI parser: 2,000 mutated URIs', async (t) => {
  let ok = 0;
  for (let i = 0; i < 2000; i++) {
    const input = mutate(pick(uriSeeds));
    if (expectClean(t, 'URI', input, () => parseRecordingUri(input), (e) => e instanceof RecorderError)) ok++;
  }
  t.equal(ok, 2000, 'every URI parsed or refused with a named error');
});

t.test('RTP parser and jitter buffer: 2,000 random and mutated datagrams', async (t) => {
  const jb = new JitterBuffer<{ sequence: number }>(80);
  let ok = 0;
  let now = 0;
  for (let i = 0; i < 2000; i++) {
    const good = Buffer.from(buildRtp({ payloadType: pick([0, 8, 101, 13]), marker: rand() < 0.1, sequence: int(65536), timestamp: int(2 ** 32), ssrc: int(4), payload: new Uint8Array(int(200)) }));
    const input = rand() < 0.5 ? good : Buffer.from(Array.from({ length: int(64) }, () => int(256)));
    if (rand() < 0.5 && input.length) input[int(input.length)] = int(256);
    now += int(40);
    const ran = expectClean(t, 'RTP', [...input], () => {
      const p = parseRtp(input);
      if (typeof p !== 'string') jb.push({ sequence: p.sequence }, now);
      jb.poll(now);
    }, () => false);
    if (ran) ok++;
  }
  t.equal(ok, 2000, 'no datagram threw');
});

t.test('config loader: 600 random environments', async (t) => {
  const keys = ['MSMLREC_RTP_PORT_MIN', 'MSMLREC_RTP_PORT_MAX', 'MSMLREC_RTP_CODECS', 'MSMLREC_DELIVERY_WEBDAV_URL', 'MSMLREC_SIP_MAX_BODY_BYTES', 'MSMLREC_RTP_TIMEOUT_SEC', 'MSMLREC_SPOOL_MAX_BYTES', 'MSMLREC_LOG_LEVEL', 'MSMLREC_NOPE', 'MSMLREC_CONFIG'];
  const values = ['', '0', '-1', '65536', 'abc', 'PCMU,G729', 'http://x', 'ftp://x', '1e99', 'true', '/nonexistent.yaml', DEFAULT_CONFIG_PATH, '\u0000'];
  let ok = 0;
  for (let i = 0; i < 600; i++) {
    const env: Record<string, string> = {};
    for (let k = 0; k < 1 + int(3); k++) env[pick(keys)] = pick(values);
    if (expectClean(t, 'config', env, () => loadConfig(env), (e) => e instanceof ConfigError)) ok++;
  }
  t.equal(ok, 600, 'every environment loaded or was refused with a ConfigError');
});

t.test('wire guard helpers: 1,000 random frames', async (t) => {
  let ok = 0;
  for (let i = 0; i < 1000; i++) {
    const text = mutate(`${int(999)}#6f1c7d0a-1b2c-4d3e-8f40-123456789abc|sip|network|0|udp|1.2.3.4|5060|x|y||\r\n${pick(samples)}`);
    if (
      expectClean(t, 'guard', text, () => {
        const start = nextFrameStart(Buffer.from(text));
        const len = Buffer.byteLength(text);
        if (start > len || (len > 0 && start < 1)) throw new Error(`frame start ${start} out of range`);
        normalizeFrame(text);
        crlfHeaders(text);
      }, () => false)
    )
      ok++;
  }
  t.equal(ok, 1000, 'no frame threw');
  t.equal(crlfHeaders('A: 1\nB: 2\n\nbody\nline'), 'A: 1\r\nB: 2\r\n\r\nbody\nline', 'LF header lines get CRLF; the body is kept');
});

t.test('SIPREC bodies: 2,000 mutated vendor INVITE bodies, read as the SIP app reads them', async (t) => {
  const seeds = siprecSeeds;
  t.ok(seeds.length >= 5, `${seeds.length} vendor bodies`);
  let ok = 0;
  let read = 0;
  for (let i = 0; i < 2000; i++) {
    const seed = pick(seeds);
    const input = { contentType: int(10) === 0 ? mutate(seed.contentType) : seed.contentType, body: mutate(seed.body) };
    const readIt = (): void => {
      isSiprecInvite({ contentType: input.contentType, require: '', contact: '' }, input.body, false);
      const b = readSiprecBody(input.contentType, input.body);
      const streams = b.sdp === null ? [] : negotiate(b.sdp, ['PCMU', 'PCMA']).map((n) => ({ mline: n.mline, label: n.label }));
      siprecChannels(b.metadata, b.metadataXml, streams, 'caller', 'c');
      read++;
    };
    if (expectClean(t, 'SIPREC', input, readIt, (e) => e instanceof RecorderError)) ok++;
  }
  t.equal(ok, 2000, 'every body read or refused with a named error (400/488)');
  t.ok(read > 200, `${read} still read whole after mutation`);
});

t.test('fuzz total', async (t) => {
  t.ok(total >= 10_000, `${total} inputs (seed ${SEED})`);
});

