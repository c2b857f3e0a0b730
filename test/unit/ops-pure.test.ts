import t from 'tap';
import { AdmissionGate } from '../../src/ops/load-watch.js';
import { readiness } from '../../src/ops/readiness.js';
import { sipUriFromHostports, type RecorderEntry } from '../../src/ops/recorder-registry.js';
import { pickRecorder, retarget, routeInvite } from '../../src/rm-shim/routing.js';

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

t.test('admission: a window over a limit refuses new calls for holdSec, then they are taken again', async (t) => {
  const g = new AdmissionGate({ maxLoopDelayMs: 100, maxEncodeLagMs: 1000, windowMs: 1000, holdSec: 5 });
  t.equal(g.update({ loopDelayP99Ms: 40, encodeLagMs: 200 }, 0), false, 'within the limits');
  t.equal(g.refusal(0), null, 'taking calls');
  t.equal(g.update({ loopDelayP99Ms: 250, encodeLagMs: 0 }, 1000), true, 'a stalled loop is over');
  t.match(g.refusal(1000), /overloaded: event-loop delay p99 250 ms over 100 ms/, 'refused, saying why');
  g.update({ loopDelayP99Ms: 10, encodeLagMs: 0 }, 2000);
  t.ok(g.refusal(5999), 'still refused within holdSec of the last bad window');
  t.equal(g.refusal(6000), null, 'taken again after holdSec');
  g.update({ loopDelayP99Ms: 10, encodeLagMs: 1500 }, 7000);
  t.match(g.refusal(7000), /encode lag 1500 ms over 1000 ms/, 'an encoder behind is over too');
  const off = new AdmissionGate({ maxLoopDelayMs: 0, maxEncodeLagMs: 0, windowMs: 1000, holdSec: 5 });
  off.update({ loopDelayP99Ms: 10_000, encodeLagMs: 10_000 }, 0);
  t.equal(off.refusal(0), null, '0 turns the checks off');
});

t.test('routeInvite: a new conf-id gets the failover order once; a pinned one only its recorder', async (t) => {
  const none = (): number => 0;
  const list = [entry('a', 10, 9), entry('b', 4, 1), entry('c', 10, 5), entry('d', 2, 2)];
  t.same(routeInvite(list, null, none, 3)?.candidates.map((e) => e.id), ['c', 'b', 'a'], 'most room first, full ones left out, at most 3');
  t.same(routeInvite(list, 'd', none, 3), { reason: 'pinned', candidates: [list[3]] }, 'pinned to a full one: only it');
  t.equal(routeInvite([entry('d', 2, 2)], null, none), null, 'no room anywhere: null (503)');
});
