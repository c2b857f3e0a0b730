import t from 'tap';
import { RtpPacket as WeriftRtp } from 'werift-rtp';
import { buildRtp, parseRtp } from '../../src/media/rtp-packet.js';

t.test('parses what it builds, and agrees with werift', async (t) => {
  const payload = Uint8Array.from({ length: 160 }, (_, i) => i);
  const buf = buildRtp({ payloadType: 8, marker: true, sequence: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef, payload });
  const p = parseRtp(buf);
  if (typeof p === 'string') throw new Error(p);
  t.equal(p.payloadType, 8);
  t.equal(p.marker, true);
  t.equal(p.sequence, 65535);
  t.equal(p.timestamp, 0xfffffff0);
  t.equal(p.ssrc, 0xdeadbeef);
  t.same(Array.from(p.payload), Array.from(payload));
  const w = WeriftRtp.deSerialize(buf);
  t.equal(w.header.sequenceNumber, p.sequence);
  t.equal(w.header.timestamp, p.timestamp);
  t.equal(w.header.ssrc, p.ssrc);
  t.equal(w.header.payloadType, p.payloadType);
  t.equal(w.payload.length, p.payload.length);
});

t.test('skips CSRCs, header extension and padding like werift', async (t) => {
  const ext = Buffer.from([
    0xb2, 0x00, 0x00, 0x07, 0, 0, 0, 0x10, 0, 0, 0, 1, // V=2 P=1 X=1 CC=2, PT 0
    0, 0, 0, 2, 0, 0, 0, 3, // two CSRCs
    0xbe, 0xde, 0x00, 0x01, 0x10, 0xaa, 0, 0, // one-byte extension, 1 word
    1, 2, 3, 4, // payload
    0, 0, 3, // padding (3 bytes, last says 3)
  ]);
  const p = parseRtp(ext);
  if (typeof p === 'string') throw new Error(p);
  t.same(Array.from(p.payload), [1, 2, 3, 4]);
  const w = WeriftRtp.deSerialize(ext);
  t.same(Array.from(w.payload), [1, 2, 3, 4]);
});

t.test('malformed datagrams are refused with a reason', async (t) => {
  t.match(parseRtp(new Uint8Array(5)), /shorter/);
  t.match(parseRtp(Uint8Array.from([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), /version/);
  t.match(parseRtp(Uint8Array.from([0x80, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), /RTCP/);
  t.match(parseRtp(Uint8Array.from([0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), /longer/);
  t.match(parseRtp(Uint8Array.from([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9])), /padding/);
});
