/**
 * A shutdown always ends: SIGTERM with drachtio-server gone, and with Redis gone while recordings wait in the spool,
 * exits 0 within 30 s, with no uncaught exception.
 */
import t from 'tap';
import { redisServer } from '../harness/delivery-servers.js';
import { startApp, startSim } from '../harness/recorder-harness.js';
import { PCMU_OFFER, SipUac } from '../harness/sip-uac.js';
import { until } from '../harness/until.js';

async function timedStop(app: Awaited<ReturnType<typeof startApp>>): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  const code = await app.stop('SIGTERM');
  return { code, ms: Date.now() - t0 };
}

const crashed = (logs: string[]): boolean => logs.some((l) => /AssertionError|Uncaught|uncaughtException|^stderr: .*Error/.test(l));

t.test('SIGTERM with drachtio-server down: exit 0 in < 30 s', async (t) => {
  const sim = await startSim();
  const app = await startApp(sim);
  await sim.stop();
  await app.waitForLog(/drachtio-server connection closed/, 10_000);
  const { code, ms } = await timedStop(app);
  t.equal(code, 0, 'exit 0');
  t.ok(ms < 30_000, `stopped in ${ms} ms`);
  t.notOk(crashed(app.logs), 'no uncaught exception');
  t.ok(app.logs.some((l) => l.includes('"msg":"stopped"')), 'every close step ran');
});

t.test('SIGTERM with Redis down and a recording in the spool: exit 0 in < 30 s; it stays in the spool', async (t) => {
  const sim = await startSim();
  const redis = await redisServer();
  const app = await startApp(sim, {
    MSMLREC_DELIVERY_ENABLED: 'true',
    MSMLREC_DELIVERY_REDIS_URL: redis.url,
    MSMLREC_DELIVERY_QUEUE: 'shutdown-test',
    // nothing listens there: the recording cannot be delivered
    MSMLREC_DELIVERY_WEBDAV_URL: 'http://127.0.0.1:9/recordings',
    MSMLREC_DELIVERY_BACKOFF_MS: '100',
    MSMLREC_DRAIN_DELIVERY_GRACE_SEC: '60',
  });
  const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
  const inv = await uac.request('INVITE', `sip:msml=sd1@127.0.0.1:${sim.sipPort};dn=1;record`, { headers: { 'content-type': 'application/sdp' }, body: PCMU_OFFER });
  const dialog = uac.dialogOf(inv);
  const r = await uac.request('INFO', '', { dialog, headers: { 'content-type': 'application/vnd.radisys.msml+xml' }, body: '<msml version="1.1"><dialogstart target="conf:sd1" name="rec"><record/></dialogstart></msml>' });
  t.match(r.content, /response="200"/);
  await uac.request('BYE', '', { dialog });
  await app.waitForLog(/recording spooled/);
  await until('a delivery attempt failed', () => app.logs.some((l) => l.includes('delivery attempt failed')), 10_000);
  await redis.stop();
  await app.waitForLog(/redis connection lost/, 10_000);
  const { code, ms } = await timedStop(app);
  t.equal(code, 0, 'exit 0');
  t.ok(ms < 30_000, `stopped in ${ms} ms (drain.deliveryGraceSec is 60: not waited for while Redis is away)`);
  t.notOk(crashed(app.logs), 'no uncaught exception');
  t.ok(app.logs.some((l) => l.includes('recordings left in the spool')), 'the recording is left in the spool for the next start');
  uac.stop();
  await sim.stop();
});
