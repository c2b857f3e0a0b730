import t from 'tap';
import { AdmissionGate } from '../../src/ops/load-watch.js';
import { readiness } from '../../src/ops/readiness.js';
import { lookAtSpool } from '../../src/ops/spool-watch.js';
import { MMAP_THRESHOLD_BYTES, mmapThresholdToFix } from '../../src/ops/mmap-threshold.js';
import { appendFileSync, mkdtempSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  const g = new AdmissionGate({ maxLoopDelayMs: 100, maxEncodeLagMs: 1000, maxThrottledPct: 10, maxCpuWaitPct: 60, windowMs: 1000, holdSec: 5 });
  t.equal(g.update({ loopDelayP99Ms: 40, encodeLagMs: 200 }, 0), false, 'within the limits');
  t.equal(g.refusal(0), null, 'taking calls');
  t.equal(g.update({ loopDelayP99Ms: 250, encodeLagMs: 0 }, 1000), true, 'a stalled loop is over');
  t.match(g.refusal(1000), /overloaded: event-loop delay p99 250 ms over 100 ms/, 'refused, saying why');
  g.update({ loopDelayP99Ms: 10, encodeLagMs: 0 }, 2000);
  t.ok(g.refusal(5999), 'still refused within holdSec of the last bad window');
  t.equal(g.refusal(6000), null, 'taken again after holdSec');
  g.update({ loopDelayP99Ms: 10, encodeLagMs: 1500 }, 7000);
  t.match(g.refusal(7000), /encode lag 1500 ms over 1000 ms/, 'an encoder behind is over too');
  g.update({ loopDelayP99Ms: 10, encodeLagMs: 0, throttledPct: 25, cpuWaitPct: 5 }, 20_000);
  t.match(g.refusal(20_000), /CPU quota throttled 25 % of the window, over 10 %/, 'a throttled container is over, with the loop still on time');
  g.update({ loopDelayP99Ms: 10, encodeLagMs: 0, throttledPct: 0, cpuWaitPct: 75 }, 30_000);
  t.match(g.refusal(30_000), /waited for a CPU 75 % of the window \(PSI\), over 60 %/, 'a starved node is over');
  t.match(g.lastReason, /PSI/, 'the last reason is kept for /status');
  g.update({ loopDelayP99Ms: 10, encodeLagMs: 0, throttledPct: null, cpuWaitPct: null }, 40_000);
  t.equal(g.refusal(40_000), null, 'signals this machine lacks (null) are not checked');
  const off = new AdmissionGate({ maxLoopDelayMs: 0, maxEncodeLagMs: 0, maxThrottledPct: 0, maxCpuWaitPct: 0, windowMs: 1000, holdSec: 5 });
  off.update({ loopDelayP99Ms: 10_000, encodeLagMs: 10_000, throttledPct: 90, cpuWaitPct: 90 }, 0);
  t.equal(off.refusal(0), null, '0 turns the checks off');
});

t.test('routeInvite: a new conf-id gets the failover order once; a pinned one only its recorder', async (t) => {
  const none = (): number => 0;
  const list = [entry('a', 10, 9), entry('b', 4, 1), entry('c', 10, 5), entry('d', 2, 2)];
  t.same(routeInvite(list, null, none, 3)?.candidates.map((e) => e.id), ['c', 'b', 'a'], 'most room first, full ones left out, at most 3');
  t.same(routeInvite(list, 'd', none, 3), { reason: 'pinned', candidates: [list[3]] }, 'pinned to a full one: only it');
  t.equal(routeInvite([entry('d', 2, 2)], null, none), null, 'no room anywhere: null (503)');
});

t.test('CPU pressure: quota, throttled time and PSI from cgroup v2 and v1 files, as shares of a window', async (t) => {
  const { CpuPressure, quotaCores, usableCores } = await import('../../src/ops/cpu-pressure.js');
  const paths = { v2: '/cg2', v1cpu: '/cg1', psi: '/psi' };
  const files = new Map<string, string>();
  const read = (p: string): string | null => files.get(p) ?? null;
  t.equal(quotaCores(read, paths), null, 'no files: no quota');
  files.set('/cg1/cpu.cfs_quota_us', '-1\n');
  files.set('/cg1/cpu.cfs_period_us', '100000\n');
  t.equal(quotaCores(read, paths), null, 'v1 -1: no quota');
  files.set('/cg1/cpu.cfs_quota_us', '150000\n');
  t.equal(quotaCores(read, paths), 1.5, 'v1 150000/100000: 1.5 cores');
  t.equal(usableCores(read, paths), Math.min(2, (await import('node:os')).availableParallelism()), 'workers: the quota rounded up, no more than the machine has');
  files.set('/cg2/cpu.max', 'max 100000\n');
  t.equal(quotaCores(read, paths), null, 'v2 max: no quota (v2 wins over v1)');
  files.set('/cg2/cpu.max', '50000 100000\n');
  t.equal(quotaCores(read, paths), 0.5);
  t.equal(usableCores(read, paths), 1, 'half a core: one worker');

  const cpu = new CpuPressure(read, paths);
  files.set('/cg1/cpu.stat', 'nr_periods 10\nnr_throttled 2\nthrottled_time 1000000000\n');
  files.set('/psi', 'some avg10=1.00 avg60=0.50 avg300=0.10 total=5000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n');
  t.same(cpu.sample(1000), { throttledPct: null, cpuWaitPct: null }, 'the first sample has no window yet');
  files.set('/cg1/cpu.stat', 'nr_periods 20\nnr_throttled 7\nthrottled_time 1300000000\n');
  files.set('/psi', 'some avg10=1.00 avg60=0.50 avg300=0.10 total=5700000\nfull total=0\n');
  t.same(cpu.sample(2000), { throttledPct: 30, cpuWaitPct: null }, "v1: 300 ms throttled in a 1 s window; the machine's PSI is not the cgroup's (not checked)");
  const { machineCpuWaitAvg10 } = await import('../../src/ops/cpu-pressure.js');
  t.equal(machineCpuWaitAvg10(read, paths), 1, "the machine's PSI is reported (for /status)");
  files.set('/cg2/cpu.stat', 'usage_usec 5\nthrottled_usec 100000\n');
  files.set('/cg2/cpu.pressure', 'some avg10=0 avg60=0 avg300=0 total=100\n');
  cpu.sample(3000);
  files.set('/cg2/cpu.stat', 'usage_usec 5\nthrottled_usec 150000\n');
  files.set('/cg2/cpu.pressure', 'some avg10=0 avg60=0 avg300=0 total=200100\n');
  t.same(cpu.sample(4000), { throttledPct: 5, cpuWaitPct: 20 }, "v2: the cgroup's own counters");
});

t.test('trusted sources: CIDRs and addresses, v4 and v6, matched on the source address; a bad entry is named', async (t) => {
  const { TrustedSources } = await import('../../src/sip/trusted-sources.js');
  const s = new TrustedSources(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']);
  t.ok(s.allows('10.1.2.3') && s.allows('192.0.2.7') && s.allows('2001:db8::5'), 'inside');
  t.ok(s.allows('::ffff:10.9.9.9'), 'an IPv4-mapped IPv6 source is matched as IPv4');
  t.notOk(s.allows('192.0.2.8') || s.allows('11.0.0.1') || s.allows('2001:db9::1'), 'outside');
  t.notOk(s.allows(undefined) || s.allows('not-an-address'), 'no or no usable source: refused');
  t.ok(new TrustedSources([]).allows('203.0.113.9'), 'empty: anyone');
  for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', '10.0.0.0/x'])
    t.throws(() => new TrustedSources([bad]), new RegExp(`"${bad.replace(/[./]/g, '\\$&')}" is not an IP address or CIDR`), `${bad} refused`);
  const { SourceLabels } = await import('../../src/ops/source-labels.js');
  const labels = new SourceLabels(2);
  t.same(['a', 'b', 'a', 'c', undefined].map((x) => labels.of(x)), ['a', 'b', 'a', 'other', 'other'], 'metric labels bounded');
});

t.test('ops admin: a bearer token compared in constant time; without one, loopback only', async (t) => {
  const { adminRefusal } = await import('../../src/ops/ops-server.js');
  t.equal(adminRefusal('s3cret', 'Bearer s3cret', '10.1.1.1'), null, 'the token, from anywhere');
  t.match(adminRefusal('s3cret', undefined, '127.0.0.1'), { status: 401 }, 'with a token set, loopback needs it too');
  t.match(adminRefusal('s3cret', 'Bearer s3cre', '10.1.1.1'), { status: 401 }, 'a wrong token');
  t.match(adminRefusal('s3cret', 'Basic czNjcmV0', '10.1.1.1'), { status: 401 }, 'another scheme');
  t.equal(adminRefusal('', undefined, '127.0.0.1'), null, 'no token: loopback');
  t.equal(adminRefusal('', undefined, '::ffff:127.0.0.1'), null, 'no token: loopback (v4-mapped)');
  t.match(adminRefusal('', 'Bearer x', '10.1.1.1'), { status: 403 }, 'no token: nobody else');
});

t.test('config: sip.allowedSources and rmShim.allowedSources are validated at start', async (t) => {
  const { loadConfig } = await import('../../src/config.js');
  t.same(loadConfig({ MSMLREC_SIP_ALLOWED_SOURCES: '10.0.0.0/8,192.0.2.1' }).sip.allowedSources, ['10.0.0.0/8', '192.0.2.1']);
  t.throws(() => loadConfig({ MSMLREC_RM_SHIM_ALLOWED_SOURCES: '10.0.0.0/40' }), /rmShim\.allowedSources.*10\.0\.0\.0\/40/s);
  t.match(JSON.stringify((await import('../../src/config.js')).redacted(loadConfig({ MSMLREC_OPS_ADMIN_TOKEN: 'tok' })).ops), /"adminToken":"\*\*\*"/, 'the token is not logged');
});

t.test('spool look: finished files are stat\'ed once, files being written every time, deleted ones forgotten', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spool-look-'));
  const seen = new Map<string, { size: number; mtimeMs: number }>();
  writeFileSync(join(dir, 'a.mp3'), Buffer.alloc(100));
  writeFileSync(join(dir, 'a.json'), '{}');
  writeFileSync(join(dir, 'b.mp3.part'), Buffer.alloc(10));
  let s = await lookAtSpool(dir, Date.now(), seen);
  t.same([s.files, s.pending, s.bytes], [3, 1, 112]);
  t.same([...seen.keys()].sort(), ['a.json', 'a.mp3'], 'the .part is not kept');
  appendFileSync(join(dir, 'b.mp3.part'), Buffer.alloc(40));
  s = await lookAtSpool(dir, Date.now(), seen);
  t.equal(s.bytes, 152, 'the growing .part is read again');
  unlinkSync(join(dir, 'a.mp3'));
  unlinkSync(join(dir, 'a.json'));
  s = await lookAtSpool(dir, Date.now(), seen);
  t.same([s.files, s.pending, s.bytes, seen.size], [1, 0, 50, 0], 'delivered files are gone from the look and the cache');
});

t.test('the mmap threshold is fixed unless the operator set glibc\'s own', async (t) => {
  t.equal(mmapThresholdToFix({}), MMAP_THRESHOLD_BYTES);
  t.equal(mmapThresholdToFix({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }), MMAP_THRESHOLD_BYTES);
  t.equal(mmapThresholdToFix({ MALLOC_MMAP_THRESHOLD_: '65536' }), null);
  t.equal(mmapThresholdToFix({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=262144' }), null);
});
