import t from 'tap';
import { encodeG711, decodeG711 } from '../../src/media/g711.js';
import { MediaStream } from '../../src/media/media-stream.js';
import { RELAY_JS, type RtpEndpoint } from '../../src/media/rtp-endpoint.js';
import { parseRtp, type RtpPacket } from '../../src/media/rtp-packet.js';
import type { NegotiatedMedia } from '../../src/sip/sdp-answer.js';

/** An endpoint that records what is sent and lets the test deliver datagrams. */
function fakeEndpoint(): { ep: RtpEndpoint; sent: Buffer[]; deliver: (d: Buffer) => void } {
  const sent: Buffer[] = [];
  const ep = {
    onPacket: (() => undefined) as RtpEndpoint['onPacket'],
    stats: { datagrams: 0, malformed: 0, lastMalformed: null },
    send: (d: Uint8Array) => sent.push(Buffer.from(d)),
    routes: false,
    route: () => undefined,
    setRemote: () => undefined,
    close: () => undefined,
  } as unknown as RtpEndpoint;
  return { ep, sent, deliver: (d) => ep.onPacket(parseRtp(d) as RtpPacket, performance.now(), { address: '127.0.0.1', port: 4000 }, d, RELAY_JS) };
}

const media = (codec: 'PCMU' | 'PCMA', payloadType: number): NegotiatedMedia => ({
  mline: 0, payloadType, codec, telephoneEventPt: 101, remoteAddress: '127.0.0.1', remotePort: 5000,
  remoteDirection: 'sendrecv', localDirection: 'sendrecv', ptime: 20, label: null,
});

/** RTP with one CSRC and a one-word header extension, payload = `payload`. */
function datagram(pt: number, payload: Uint8Array): Buffer {
  const head = Buffer.from([0x91, 0x80 | pt, 0x12, 0x34, 0, 0, 0x0a, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
  return Buffer.concat([head, Buffer.from(payload)]);
}

function pair(a: NegotiatedMedia, b: NegotiatedMedia) {
  const ea = fakeEndpoint();
  const eb = fakeEndpoint();
  const opts = { jitterMs: 80, maxSkewMs: 400 };
  const sa = new MediaStream(ea.ep, a, 0, () => undefined, opts);
  const sb = new MediaStream(eb.ep, b, 1, () => undefined, opts);
  sa.peer = sb;
  sb.peer = sa;
  return { ea, eb, sa, sb };
}

const pcm = Int16Array.from({ length: 160 }, (_, i) => Math.round(5000 * Math.sin(i / 3)));

t.test('relay: same codec and payload type: the datagram goes on byte for byte (CSRC, extension, marker kept)', async (t) => {
  const { ea, eb, sb } = pair(media('PCMU', 0), media('PCMU', 0));
  const d = datagram(0, encodeG711('PCMU', pcm));
  ea.deliver(d);
  t.equal(eb.sent.length, 1, 'sent from the peer leg\'s socket');
  t.ok(eb.sent[0].equals(d), 'identical bytes');
  t.equal(sb.relay.transcoded, 0);
});

t.test('relay: μ-law to A-law with another payload type number: header kept, PT rewritten, payload converted', async (t) => {
  const { ea, eb, sb } = pair(media('PCMU', 0), media('PCMA', 98));
  const d = datagram(0, encodeG711('PCMU', pcm));
  const before = Buffer.from(d);
  ea.deliver(d);
  const out = eb.sent[0];
  t.ok(d.equals(before), 'the received datagram is not modified (the recording still reads it)');
  t.equal(out.length, d.length, 'same length');
  t.equal(out[1], 0x80 | 98, 'marker kept, payload type 98');
  t.ok(out.subarray(2, 24).equals(d.subarray(2, 24)), 'sequence, timestamp, SSRC, CSRC and extension unchanged');
  const back = new Int16Array(160);
  decodeG711('PCMA', out.subarray(24), back);
  const err = Math.max(...back.map((v, i) => Math.abs(v - pcm[i])));
  t.ok(err <= 384, `A-law payload decodes to the same audio (max error ${err}, within one and a half A-law steps at this level)`);
  t.equal(sb.relay.transcoded, 1);
});

t.test('relay: telephone-event goes out with the peer\'s event payload type, or not at all', async (t) => {
  const b = media('PCMU', 0);
  b.telephoneEventPt = 96;
  const { ea, eb } = pair(media('PCMU', 0), b);
  ea.deliver(datagram(101, new Uint8Array([1, 0x8a, 0, 160])));
  t.equal(eb.sent[0][1] & 0x7f, 96, 'PT 101 → 96');
  const c = media('PCMU', 0);
  c.telephoneEventPt = null;
  const p2 = pair(media('PCMU', 0), c);
  p2.ea.deliver(datagram(101, new Uint8Array([1, 0x8a, 0, 160])));
  t.equal(p2.eb.sent.length, 0, 'peer without telephone-event: not relayed');
  t.equal(p2.sb.relay.dropped, 1);
});
