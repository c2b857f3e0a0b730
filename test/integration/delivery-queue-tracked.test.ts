/**
 * The delivery queue remembers only what still waits: the media ids it enqueued are dropped once their sidecars have
 * left the spool, so a recorder that runs for weeks does not hold one entry per recording it ever made.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { DeliveryQueue } from '../../src/jobs/delivery-queue.js';
import { redisServer } from '../harness/delivery-servers.js';
import { tempDir } from '../harness/recorder-harness.js';

t.test('a sweep forgets the recordings that left the spool', async (t) => {
  const redis = await redisServer();
  t.teardown(() => redis.stop());
  const spool = tempDir('spool-tracked');
  // the worker never gets to deliver: 200 attempts, a long backoff; the sidecars stay until this test removes them
  const config = loadConfig({ MSMLREC_DELIVERY_ENABLED: 'true', MSMLREC_DELIVERY_REDIS_URL: redis.url, MSMLREC_DELIVERY_QUEUE: 'tracked', MSMLREC_DELIVERY_WEBDAV_URL: 'http://127.0.0.1:9/', MSMLREC_DELIVERY_BACKOFF_MS: '600000', MSMLREC_DELIVERY_SWEEP_MS: '3600000' });
  const ids = ['rec-a', 'rec-b', 'rec-c'];
  for (const id of ids) writeFileSync(join(spool, `${id}.json`), '{}');
  const q = new DeliveryQueue(config.delivery, spool, pino({ level: 'silent' }), 'test');
  t.teardown(() => q.close());
  const deadline = Date.now() + 10_000;
  while (q.tracked < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.equal(q.tracked, 3, 'three enqueued and waiting');
  rmSync(join(spool, 'rec-a.json'));
  rmSync(join(spool, 'rec-b.json'));
  await q.sweep();
  t.equal(q.tracked, 1, 'the two that left the spool are forgotten');
  rmSync(join(spool, 'rec-c.json'));
  await q.sweep();
  t.equal(q.tracked, 0, 'an empty spool: nothing held');
});
