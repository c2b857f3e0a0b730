import t from 'tap';
import { thrown } from '../harness/thrown.js';
import { readFileSync } from 'node:fs';
import * as sdpTransform from 'sdp-transform';
import { negotiate, renderAnswer, renderOffer } from '../../src/sip/sdp-answer.js';

const body = (file: string): string => {
  const text = readFileSync(new URL(`../fixtures/msml-samples/${file}`, import.meta.url), 'utf8');
  return text.slice(text.indexOf('\r\n\r\n') + 4);
};
const local = { address: '10.10.0.30', ports: [20000], sessionId: 5001, sessionVersion: 1 };

t.test('answers the customer offer of sample 01 with PCMU and telephone-event', async (t) => {
  const offer = body('01_INVITE_legA_customer.sip');
  const n = negotiate(offer, ['PCMU', 'PCMA']);
  t.equal(n.length, 1);
  t.match(n[0], { codec: 'PCMU', payloadType: 0, telephoneEventPt: 101, remoteAddress: '192.0.2.10', remotePort: 40000, localDirection: 'sendrecv' });
  const answer = sdpTransform.parse(renderAnswer(offer, n, local));
  t.equal(answer.connection?.ip, '10.10.0.30');
  t.equal(answer.media[0].port, 20000);
  t.equal(answer.media[0].payloads, '0 101');
  t.equal(answer.media[0].direction, 'sendrecv');
  t.same(answer.media[0].rtp.map((r) => r.codec), ['PCMU', 'telephone-event']);
});

t.test("the offerer's codec order wins among the codecs we allow", async (t) => {
  const offer = 'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18 8 0\r\na=rtpmap:18 G729/8000\r\n';
  t.equal(negotiate(offer, ['PCMU', 'PCMA'])[0].codec, 'PCMA');
  t.equal(negotiate(offer, ['PCMU'])[0].codec, 'PCMU');
});

t.test('hold: sendonly is answered recvonly, c=0.0.0.0 has no remote address', async (t) => {
  const offer = 'v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n';
  const n = negotiate(offer, ['PCMU']);
  t.equal(n[0].remoteAddress, null);
  t.equal(n[0].localDirection, 'recvonly');
  t.match(renderAnswer(offer, n, local), /a=recvonly/);
});

t.test('two audio m-lines (one dialog, both parties) plus video: video rejected with port 0', async (t) => {
  const offer =
    'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n' +
    'm=audio 4000 RTP/AVP 0\r\na=sendonly\r\na=label:1\r\nm=audio 4002 RTP/AVP 8\r\na=sendonly\r\na=label:2\r\nm=video 4004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n';
  const n = negotiate(offer, ['PCMU', 'PCMA']);
  t.same(n.map((x) => [x.mline, x.codec, x.label]), [[0, 'PCMU', '1'], [1, 'PCMA', '2']]);
  const a = sdpTransform.parse(renderAnswer(offer, n, { ...local, ports: [20000, 20002] }));
  t.same(a.media.map((m) => [m.type, m.port, m.direction]), [['audio', 20000, 'recvonly'], ['audio', 20002, 'recvonly'], ['video', 0, undefined]]);
});

t.test('no usable codec is 488, garbage is 400', async (t) => {
  const g729 = 'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n';
  t.match(thrown(() => negotiate(g729, ['PCMU', 'PCMA'])), { sipStatus: 488 });
  const srtp = 'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n';
  t.match(thrown(() => negotiate(srtp, ['PCMU'])), { sipStatus: 488 });
  t.match(thrown(() => negotiate('hello world', ['PCMU'])), { sipStatus: 400 });
  t.match(thrown(() => negotiate('v=0\r\nm=audio x RTP/AVP 0\r\n', ['PCMU'])), { sipStatus: 400 });
});

t.test('an offer for an offer-less INVITE lists every codec, and its answer negotiates', async (t) => {
  const offer = renderOffer(local, ['PCMU', 'PCMA']);
  const o = sdpTransform.parse(offer);
  t.equal(o.media[0].payloads, '0 8 101');
  t.equal(o.media[0].direction, 'sendrecv');
  const answerInAck = body('07_ACK_legA_answer.sip');
  t.equal(negotiate(answerInAck, ['PCMU', 'PCMA'])[0].codec, 'PCMU');
});

t.test('no c= line anywhere (an OpenSIPS-based SRC sends it): not a hold; the address is learnt from the packets', async (t) => {
  const { heldByAddress } = await import('../../src/media/negotiated-media.js');
  const offer = 'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\na=label:1\r\nm=audio 4002 RTP/AVP 0\r\na=sendonly\r\na=label:2\r\n';
  const n = negotiate(offer, ['PCMU']);
  t.same(n.map((x) => [x.remoteAddress, x.learnAddress, heldByAddress(x)]), [[null, true, false], [null, true, false]], 'recorded, address unknown');
  const hold = negotiate(offer.replace('t=0 0', 'c=IN IP4 0.0.0.0\r\nt=0 0'), ['PCMU']);
  t.same(hold.map((x) => heldByAddress(x)), [true, true], 'c=0.0.0.0 is still a hold');
});
