import t from 'tap';
import { DeliveryError } from '../../src/errors.js';
import { destCollection } from '../../src/jobs/deliver-recording.js';
import { DestinationHealth } from '../../src/jobs/destination-health.js';
import { buildRecordingResource, girTime } from '../../src/jobs/recording-resource.js';
import { parseS3Url } from '../../src/jobs/s3-store.js';
import type { Sidecar } from '../../src/recording/metadata.js';
import { thrown } from '../harness/thrown.js';

t.test('MSML dest: only http(s) URLs on allowed hosts', async (t) => {
  t.equal(destCollection(null, []), null, 'no dest: the configured WebDAV');
  t.equal(destCollection('https://dav.example.com/rec/', ['dav.example.com']), 'https://dav.example.com/rec');
  t.equal(destCollection('http://dav.example.com:8080/x', ['dav.example.com:8080']), 'http://dav.example.com:8080/x');
  t.match(thrown(() => destCollection('http://evil.example.net/x', ['dav.example.com'])), { constructor: DeliveryError, status: 403, retryable: false });
  t.match(thrown(() => destCollection('file:///etc/passwd', ['dav.example.com'])), { status: 400 });
  t.match(thrown(() => destCollection('sip:10.0.0.101', ['10.0.0.101'])), { status: 400 });
  t.match(thrown(() => destCollection('not a url', ['x'])), { status: 400 });
});

t.test('delivery errors: network, 5xx, 408, 429 retry; other 4xx do not', async (t) => {
  const r = (s: number | null) => new DeliveryError('x', 'put', s).retryable;
  t.same([r(null), r(500), r(503), r(408), r(429), r(400), r(401), r(403), r(404)], [true, true, true, true, true, false, false, false, false]);
});

t.test('the Recording Processor body has GIR\'s shape', async (t) => {
  const s = {
    schema: 1,
    id: 'rec1',
    mediaId: 'CALL1_2026-11-22_10-00-00-A-B-C.mp3',
    confId: 'conf1',
    callUUID: 'CALL1',
    dialogId: 'conf:conf1/dialog:rec',
    dn: '7001',
    tenant: 'Environment',
    ivrProfile: 'GIR',
    tenantDbid: '1',
    uriParams: { 'tenant-dbid': '1' },
    msml: { dest: null, format: 'audio/mp3', maxtimeMs: null, attrs: {}, params: { ani: '111', dnis: '222', agentId: 'a7' } },
    startTime: '2026-11-22T10:00:00.125Z',
    stopTime: '2026-11-22T10:00:12.648Z',
    durationMs: 12523,
    endReason: 'record.terminate',
    truncated: false,
    error: null,
    audio: { type: 'audio/mp3', channels: 2, kbps: 16, sampleRate: 8000, leftChannel: 'other' },
    files: { mp3: { name: 'CALL1_2026-11-22_10-00-00-A-B-C.mp3', size: 25056 }, wav: { name: 'CALL1_2026-11-22_10-00-00-A-B-C.wav', size: 200402, codec: 'PCMU', channels: 2 } },
    events: [{ type: 'pause', offsetMs: 3000, time: '2026-11-22T10:00:03.125Z' }],
    legs: [],
  } satisfies Sidecar;
  const body = buildRecordingResource(s, { mp3Uri: 'http://dav/r/a.mp3', wavUri: 'http://dav/r/a.wav' });
  t.equal(girTime('2026-11-22T10:00:00.125Z'), '2026-11-22T10:00:00.125+0000');
  t.match(body, {
    id: 'CALL1',
    callerPhoneNumber: '111',
    dialedPhoneNumber: '222',
    startTime: '2026-11-22T10:00:00.125+0000',
    stopTime: '2026-11-22T10:00:12.648+0000',
    eventHistory: [{ type: 'pause', time: '2026-11-22T10:00:03.125+0000', offsetMs: 3000 }],
  });
  const files = body.mediaFiles as Record<string, unknown>[];
  t.equal(files.length, 2, 'the MP3 and the WAV copy');
  t.match(files[0], { mediaUri: 'http://dav/r/a.mp3', mediaId: s.files.mp3.name, type: 'audio/mp3', duration: '12523', size: '25056', tenant: 'Environment', ivrprofile: 'GIR' });
  t.match(files[0].parameters, { ani: '111', dnis: '222', agentId: 'a7', recordDN: '7001', dateTime: '2026-11-22T10:00:00Z', 'tenant-dbid': '1' });
  t.match(files[1], { mediaUri: 'http://dav/r/a.wav', type: /wav/, size: '200402' });
});

t.test('S3 destinations: S3:<bucket>[/<prefix>]', async (t) => {
  t.same(parseS3Url('S3:analytics'), { bucket: 'analytics', prefix: '' });
  t.same(parseS3Url('s3:analytics/speech/miner/'), { bucket: 'analytics', prefix: 'speech/miner/' }, 'prefix kept, one trailing slash');
  t.equal(parseS3Url('https://dav.example/x'), null, 'a WebDAV URL is not S3');
});

t.test('destination health keeps the destinations last used, at most its bound', async (t) => {
  const h = new DestinationHealth(3);
  // a per-call MSML dest: one collection per recording
  for (let i = 0; i < 50; i++) h.ok('webdav', `http://dav.example/calls/${i}`);
  h.failed('metadata', 'http://rp.example/api', 'HTTP 503');
  t.same(h.all().map((d) => d.destination), ['http://dav.example/calls/48', 'http://dav.example/calls/49', 'http://rp.example/api']);
  // used again, a destination is kept with its state; the longest unused goes
  h.failed('webdav', 'http://dav.example/calls/48', 'HTTP 500');
  h.ok('webdav', 'http://dav.example/calls/50');
  t.same(
    h.all().map((d) => [d.destination, d.up, d.failuresInARow]),
    [
      ['http://rp.example/api', false, 1],
      ['http://dav.example/calls/48', false, 1],
      ['http://dav.example/calls/50', true, 0],
    ],
  );
});
