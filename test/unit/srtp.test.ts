import t from 'tap';
import { RtpPacket as WeriftRtp, SrtpSession, ProtectionProfileAes128CmHmacSha1_80 } from 'werift-rtp';
import { newMasterKey, sessionKeys, SrtpContext } from '../../src/media/srtp-context.js';
import { buildRtp } from '../../src/media/rtp-packet.js';
import { negotiate, renderAnswer } from '../../src/sip/sdp-answer.js';
import { thrown } from '../harness/thrown.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

t.test('key derivation: the RFC 3711 B.3 test vectors', async (t) => {
  const k = sessionKeys(hex('E1F97A0D3E018BE0D64FA32C06DE4139'), hex('0EC675AD498AFEEBB6960B3AABE6'));
  t.equal(k.key.toString('hex'), 'c61e7a93744f39ee10734afe3ff7a087', 'cipher key');
  t.equal(k.salt.toString('hex'), '30cbbc08863d8c85d49db34a9ae1', 'cipher salt');
  t.equal(k.auth.toString('hex'), 'cebe321f6ff7716b6fd4ab49af256a156d38baa4', 'auth key');
});

const packet = (seq: number, ssrc = 0xcafe0001, payload = Buffer.alloc(160, seq & 0xff)): Buffer =>
  buildRtp({ payloadType: 0, marker: false, sequence: seq, timestamp: seq * 160, ssrc, payload });

t.test('protect then unprotect, both suites; a changed byte, another key or a short packet is refused', async (t) => {
  for (const [suite, tag] of [['AES_CM_128_HMAC_SHA1_80', 10], ['AES_CM_128_HMAC_SHA1_32', 4]] as const) {
    const key = newMasterKey();
    const tx = new SrtpContext(suite, key);
    const rx = new SrtpContext(suite, key);
    const p = packet(1000);
    const s = tx.protect(p);
    t.equal(s.length, p.length + tag, `${suite}: tag of ${tag} bytes`);
    t.ok(s.subarray(0, 12).equals(p.subarray(0, 12)), 'header in the clear');
    t.notOk(s.subarray(12, p.length).equals(p.subarray(12)), 'payload encrypted');
    t.ok(rx.unprotect(s)?.equals(p), 'decrypted to the packet');
    const bad = Buffer.from(tx.protect(packet(1001)));
    bad[20] ^= 1;
    t.equal(rx.unprotect(bad), null, 'a flipped payload bit fails authentication');
    t.equal(new SrtpContext(suite, newMasterKey()).unprotect(tx.protect(packet(1002))), null, 'another key fails');
    t.equal(rx.unprotect(s.subarray(0, 12)), null, 'too short');
    t.ok(rx.unprotect(tx.protect(packet(1003)))?.equals(packet(1003)), 'the context goes on after refusals');
  }
  t.match(thrown(() => new SrtpContext('AES_CM_128_HMAC_SHA1_80', Buffer.alloc(16).toString('base64'))), /30 bytes/);
});

t.test('interoperates with werift-rtp (another implementation), both ways, across a sequence-number wrap', async (t) => {
  const key = Buffer.from(newMasterKey(), 'base64');
  const keys = { localMasterKey: key.subarray(0, 16), localMasterSalt: key.subarray(16), remoteMasterKey: key.subarray(0, 16), remoteMasterSalt: key.subarray(16) };
  const werift = new SrtpSession({ keys, profile: ProtectionProfileAes128CmHmacSha1_80 });
  const ours = new SrtpContext('AES_CM_128_HMAC_SHA1_80', key.toString('base64'));
  const oursRx = new SrtpContext('AES_CM_128_HMAC_SHA1_80', key.toString('base64'));
  const theirsRx = new SrtpSession({ keys, profile: ProtectionProfileAes128CmHmacSha1_80 });
  let fromWerift = 0;
  let toWerift = 0;
  for (let i = 0; i < 40; i++) {
    const seq = (65520 + i) & 0xffff; // wraps after 16 packets: rollover counter 1
    const p = packet(seq);
    const w = WeriftRtp.deSerialize(p);
    const enc = werift.encrypt(w.payload, w.header);
    if (oursRx.unprotect(enc)?.equals(p)) fromWerift++;
    const dec = theirsRx.decrypt(ours.protect(p));
    if (Buffer.from(dec).equals(p)) toWerift++;
  }
  t.equal(fromWerift, 40, 'every werift packet decrypts here');
  t.equal(toWerift, 40, 'every packet of ours decrypts in werift');
});

t.test('rollover counter: reordering across a wrap, a late packet from before it, the sender\'s count', async (t) => {
  const key = newMasterKey();
  const tx = new SrtpContext('AES_CM_128_HMAC_SHA1_32', key);
  const rx = new SrtpContext('AES_CM_128_HMAC_SHA1_32', key);
  const sent = new Map<number, Buffer>();
  for (const seq of [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3]) sent.set(seq, tx.protect(packet(seq)));
  // the relay gets them out of order: one from before the wrap after packets from after it
  for (const seq of [65530, 65531, 65533, 65532, 0, 65535, 1, 65534, 3, 2]) {
    t.ok(rx.unprotect(sent.get(seq) as Buffer)?.equals(packet(seq)), `seq ${seq}`);
  }
  // the sender counted the wrap once: the next packets still decrypt
  t.ok(rx.unprotect(tx.protect(packet(4)))?.equals(packet(4)), 'after the wrap');
  // a sender relayed out of order across its wrap: the late packet keeps the count it belongs to
  const tx2 = new SrtpContext('AES_CM_128_HMAC_SHA1_80', key);
  const rx2 = new SrtpContext('AES_CM_128_HMAC_SHA1_80', key);
  const order = [65534, 0, 65535, 1];
  const out = order.map((s) => tx2.protect(packet(s, 7)));
  t.same(out.map((o, i) => rx2.unprotect(o)?.equals(packet(order[i], 7))), [true, true, true, true], 'protect keeps the count of a packet from before the wrap');
});

t.test('SDP: an RTP/SAVP offer with SDES is answered RTP/SAVP with our own key; what we cannot serve is 488 with why', async (t) => {
  const key = newMasterKey();
  const offer = (crypto: string, proto = 'RTP/SAVP'): string =>
    `v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 ${proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n${crypto}`;
  const o = offer(`a=crypto:1 AES_CM_256_HMAC_SHA1_80 inline:${Buffer.alloc(46).toString('base64')}\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:${key}|2^31\r\n`);
  const [m] = negotiate(o, ['PCMU', 'PCMA']);
  t.match(m.srtp, { tag: 2, suite: 'AES_CM_128_HMAC_SHA1_32', remoteKey: key });
  t.equal(Buffer.from(m.srtp?.localKey ?? '', 'base64').length, 30, 'a key of our own');
  t.not(m.srtp?.localKey, key);
  const answer = renderAnswer(o, [m], { address: '192.0.2.9', ports: [30000], sessionId: 1, sessionVersion: 1 });
  t.match(answer, /m=audio 30000 RTP\/SAVP 0 101/);
  t.match(answer, new RegExp(`a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:${m.srtp?.localKey.replace(/[+/]/g, '\\$&')}\\r\\n`));
  t.notMatch(answer, /a=crypto:1/, 'one crypto line, the one taken');
  const refusal = (crypto: string, proto?: string): { message: string; sipStatus?: number } => thrown(() => negotiate(offer(crypto, proto), ['PCMU'])) as { message: string; sipStatus?: number };
  t.match(refusal(`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${key}|2^20|1:4\r\n`), { sipStatus: 488, message: /MKI/ });
  t.match(refusal(`a=crypto:1 F8_128_HMAC_SHA1_80 inline:${key}\r\n`), { sipStatus: 488, message: /F8_128_HMAC_SHA1_80 is not supported/ });
  t.match(refusal(''), { sipStatus: 488, message: /without a=crypto/ });
  t.match(refusal(`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${key} KDR=10\r\n`), { sipStatus: 488, message: /session parameters/ });
  t.match(refusal(`a=fingerprint:sha-256 AA:BB\r\n`, 'UDP/TLS/RTP/SAVP'), { sipStatus: 488 });
});
