import t from 'tap';
import { readiness } from '../../src/ops/readiness.js';
import { sipUriFromHostports, type RecorderEntry } from '../../src/ops/recorder-registry.js';
import { pickRecorder, retarget } from '../../src/rm-shim/routing.js';

const entry = (id: string, maxCalls: number, activeCalls: number, draining = false): RecorderEntry => ({ id, sipUri: `sip:${id}:5060`, maxCalls, activeCalls, draining, at: 1 });

t.test('readiness names every reason', async (t) => {
  const ok = { draining: false, drachtioConnected: true, redisDownMs: 0, redisGraceMs: 30_000, freeRtpPorts: 10 };
  t.same(readiness(ok), { ready: true, reasons: [] });
  t.same(readiness({ ...ok, redisDownMs: 29_000 }).ready, true, 'redis away within the grace: still ready');
  const bad = readiness({ draining: true, drachtioConnected: false, redisDownMs: 31_000, redisGraceMs: 30_000, freeRtpPorts: 0 });
  t.equal(bad.ready, false);
  t.same(bad.reasons, ['draining', 'not connected to drachtio-server', 'redis unreachable for 31 s', 'no free RTP port']);
});

t.test('pickRecorder: most free room, pinned conf-ids stay, draining and full ones get nothing new', async (t) => {
  const none = (): number => 0;
  t.equal(pickRecorder([entry('a', 10, 9), entry('b', 4, 1)], null, none)?.entry.id, 'b', 'b has 3 free, a 1');
  t.equal(pickRecorder([entry('a', 10, 8), entry('b', 4, 2)], null, none)?.entry.id, 'a', 'tie: lowest id');
  t.equal(pickRecorder([entry('a', 10, 0, true), entry('b', 4, 3)], null, none)?.entry.id, 'b', 'a draining');
  t.equal(pickRecorder([entry('a', 10, 8), entry('b', 4, 1)], null, (e) => (e.id === 'b' ? 2 : 0))?.entry.id, 'a', 'calls sent since the last beat count');
  t.equal(pickRecorder([entry('a', 1, 1), entry('b', 2, 2)], null, none), null, 'all full: none');
  t.equal(pickRecorder([], null, none), null, 'no recorder: none');
  t.same(pickRecorder([entry('a', 1, 1, true), entry('b', 9, 0)], 'a', none)?.reason, 'pinned', 'pinned to a full, draining recorder: still there');
  t.equal(pickRecorder([entry('b', 9, 0)], 'a', none)?.entry.id, 'b', 'pinned recorder gone: placed anew');
});

t.test('retarget keeps the user part and parameters, takes host, port and transport', async (t) => {
  const ruri = 'sip:msml=55c29460000054b3@rm.example.com:5060;dn=8463376;record;tenant-dbid=1;media-service=record;gvp-tenant-id=Env.Prof';
  t.equal(retarget(ruri, 'sip:10.1.2.3:5070'), 'sip:msml=55c29460000054b3@10.1.2.3:5070;dn=8463376;record;tenant-dbid=1;media-service=record;gvp-tenant-id=Env.Prof');
  t.equal(retarget('sip:msml@rm;transport=udp;dn=1', 'sip:rec-0.rec:5060;transport=tcp'), 'sip:msml@rec-0.rec:5060;transport=tcp;dn=1');
  t.equal(retarget('sip:rm.example.com', 'sip:10.0.0.1'), 'sip:10.0.0.1');
});

t.test('the SIP address a recorder registers comes from drachtio\'s hostports', async (t) => {
  t.equal(sipUriFromHostports('tcp/10.0.0.5:5060,udp/10.0.0.5:5060'), 'sip:10.0.0.5:5060');
  t.equal(sipUriFromHostports('tcp/10.0.0.5:5080'), 'sip:10.0.0.5:5080;transport=tcp');
  t.equal(sipUriFromHostports(''), null);
});
