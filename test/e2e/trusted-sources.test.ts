/**
 * No one let in: an INVITE from a source outside sip.allowedSources gets 403 and allocates nothing (no session, no
 * port), counted by source; the mutating ops endpoints need the bearer token (ops.adminToken), and the
 * `msml-recorder drain` command sends it.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { parsePromText } from '../harness/prom-text.js';
import { ROOT, startApp, startSim } from '../harness/recorder-harness.js';
import { PCMU_OFFER, SipUac } from '../harness/sip-uac.js';

const sim = await startSim();
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
t.teardown(async () => {
  uac.stop();
  await sim.stop();
});
const invite = (conf: string) => uac.request('INVITE', `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=7001;record`, { headers: { 'content-type': 'application/sdp' }, body: PCMU_OFFER });

t.test('an INVITE from outside sip.allowedSources: 403 before anything is allocated, counted by source', async (t) => {
  // the simulator reports the UAC's real source, 127.0.0.1: not in 10.0.0.0/8
  const app = await startApp(sim, { MSMLREC_SIP_ALLOWED_SOURCES: '10.0.0.0/8,2001:db8::/32' });
  t.teardown(() => app.stop('SIGKILL'));
  const r = await invite('ts1');
  t.equal(r.status, 403, 'INVITE 403');
  t.match(String(r.headers.warning), /127\.0\.0\.1 is not in sip\.allowedSources/, 'the Warning says why');
  const m = parsePromText((await app.ops('/metrics')).body);
  t.equal(m.get('msmlrec_rtp_ports_in_use'), 0, 'no port taken');
  t.equal(m.get('msmlrec_calls_active'), 0, 'no session');
  t.equal(m.get('msmlrec_sip_refused_sources_total{source="127.0.0.1"}'), 1, 'counted by source');
  t.notOk(app.logs.some((l) => l.includes('leg answered')), 'nothing answered');
});

t.test('a trusted source is taken', async (t) => {
  const app = await startApp(sim, { MSMLREC_SIP_ALLOWED_SOURCES: '127.0.0.0/8' });
  t.teardown(() => app.stop('SIGKILL'));
  const r = await invite('ts2');
  t.equal(r.status, 200, 'INVITE 200');
  await uac.request('BYE', '', { dialog: uac.dialogOf(r) });
});

t.test('POST /drain needs the bearer token (ops.adminToken); the drain command sends it', async (t) => {
  const app = await startApp(sim, { MSMLREC_OPS_ADMIN_TOKEN: 'tok-e2e' });
  t.teardown(() => app.stop('SIGKILL'));
  const post = (headers: Record<string, string>) => fetch(`http://127.0.0.1:${app.opsPort}/drain`, { method: 'POST', headers });
  const none = await post({});
  t.equal(none.status, 401, 'no token: 401');
  t.match(none.headers.get('www-authenticate') ?? '', /^Bearer/, 'asking for a bearer token');
  t.equal((await post({ authorization: 'Bearer wrong' })).status, 401, 'a wrong token: 401');
  t.equal((await fetch(`http://127.0.0.1:${app.opsPort}/media-workers/0/restart`, { method: 'POST' })).status, 401, 'the worker restart too');
  t.equal((await app.ops('/readyz')).status, 200, 'nothing drained: still ready');
  t.equal((await invite('ts3')).status, 200, 'and still taking calls');
  t.equal((await app.ops('/status')).status, 200, '/status stays readable');
  t.equal((await uac.request('OPTIONS', `sip:srs@127.0.0.1:${sim.sipPort}`)).status, 200, 'OPTIONS 200 while taking calls');
  // the CLI, as the preStop hook runs it: the token from the environment
  const cli = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'drain', '--timeout', '0'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, MSMLREC_OPS_PORT: String(app.opsPort), MSMLREC_OPS_ADMIN_TOKEN: 'tok-e2e' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise((r) => cli.on('exit', r));
  t.equal(code, 0, 'drain command exit 0');
  t.match(out, /drain requested: 202/, 'the drain command was let in');
  t.equal((await app.ops('/readyz')).status, 503, 'draining');
  t.equal((await uac.request('OPTIONS', `sip:srs@127.0.0.1:${sim.sipPort}`)).status, 503, 'OPTIONS (an SBC health check) 503 while draining');
});
