/**
 * The worst ordinary call, end to end: two SIPp processes are the customer and agent legs of one 3PCC conference
 * (offer-less INVITEs, answers in the ACKs, PCMU on one leg and PCMA on the other). The customer's RTP has 2 % loss
 * and reordering; the agent is put on hold for 5 s (a=inactive, while its RTP keeps coming) and changes SSRC mid-call.
 * dumpcap watches loopback, so the test knows when every SIP request and RTP packet really arrived, and what the
 * recorder relayed. Then the MP3 and the WAV copy are decoded and checked against those arrival times.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { decodeG711 } from '../../src/media/g711.js';
import { parseRtp, type RtpPacket } from '../../src/media/rtp-packet.js';
import type { Sidecar } from '../../src/recording/metadata.js';
import { decode, probe, rmsDb, span, toneShare } from '../harness/audio.js';
import { startCapture, type CapturedUdp } from '../harness/capture.js';
import { writeRtpPcap } from '../harness/pcap.js';
import { rtpRange, runSipp, startApp, startSim, tempDir } from '../harness/recorder-harness.js';

const CUSTOMER_HZ = 500;
const AGENT_HZ = 1400;
/** Silent markers in each sender's own time, s: the test finds them again in the recording. */
const CUSTOMER_MARKS = [4, 9, 14, 19];
const AGENT_MARKS = [3, 13, 17];
const AGENT_SSRC_CHANGE = 15;
const CONF = '7e3a000000c0ffee';

const sim = await startSim();
const range = rtpRange();
const spoolDir = tempDir('spool3pcc');
const app = await startApp(sim, {
  MSMLREC_RTP_PORT_MIN: String(range.min),
  MSMLREC_RTP_PORT_MAX: String(range.max),
  MSMLREC_RECORDING_WAV_COPY: 'PCMU',
  MSMLREC_SPOOL_DIR: spoolDir,
});
t.teardown(async () => {
  await app.stop();
  await sim.stop();
});

const dir = tempDir('pcap3pcc');
const customerPcap = join(dir, 'customer.pcap');
const agentPcap = join(dir, 'agent.pcap');
const marks = (at: number[]): [number, number][] => at.map((s) => [s, s + 0.3]);
writeRtpPcap(customerPcap, {
  law: 'PCMU',
  tone: { freq: CUSTOMER_HZ, amplitude: 8000 },
  seconds: 24,
  ssrc: 0xc0570001,
  silences: marks(CUSTOMER_MARKS),
  lossEvery: 50,
  lossAt: 17,
  reorderEvery: 25,
  reorderAt: 11,
});
writeRtpPcap(agentPcap, {
  law: 'PCMA',
  tone: { freq: AGENT_HZ, amplitude: 8000 },
  seconds: 24,
  ssrc: 0xa9e70001,
  silences: marks(AGENT_MARKS),
  ssrcChangeAt: AGENT_SSRC_CHANGE,
});

const capture = await startCapture(`udp and (portrange ${range.min}-${range.max + 1} or port ${sim.sipPort})`);
const customer = runSipp(sim, '3pcc-customer.xml', { conf: CONF, pcap: customerPcap, start_ms: 1500, record_ms: 19000 });
const customerLeg = await app.waitForLog(/leg answered/);
const agent = runSipp(sim, '3pcc-agent.xml', { conf: CONF, pcap: agentPcap, hold_at_ms: 5000, hold_ms: 5000, rest_ms: 11000 });
const [rc, ra] = await Promise.all([customer, agent]);
await app.waitForLog(/session closing/, 10_000);
const packets = await capture.stop();

const agentLeg = JSON.parse(app.logs.find((l) => l.includes('leg answered') && l.includes('"role":"recordDN"')) ?? '{}');
const portOf = (leg: Record<string, unknown>): number => (leg.ports as number[])[0];
const customerPort = portOf(customerLeg);
const agentPort = portOf(agentLeg);

/** Capture time of the first SIP request to the simulator whose text matches. */
function sipAt(re: RegExp): number {
  const p = packets.find((x) => x.dport === sim.sipPort && re.test(x.payload.toString('latin1')));
  if (!p) throw new Error(`no SIP request matching ${re} was captured`);
  return p.ms;
}

const rtpOf = (x: CapturedUdp): RtpPacket => {
  const p = parseRtp(x.payload);
  if (typeof p === 'string') throw new Error(p);
  return p;
};

t.test('both SIPp legs ran their scenarios (MSML answers, hold re-INVITEs, moml.exit with record.len)', async (t) => {
  t.equal(rc.code, 0, `customer scenario passed ${rc.errors}`);
  t.equal(ra.code, 0, `agent scenario passed ${ra.errors}`);
  t.ok(customerPort > 0 && agentPort > 0 && customerPort !== agentPort, 'two legs, two RTP ports');
});

const tStart = sipAt(/<dialogstart/);
const tEnd = sipAt(/<dialogend/);
const tHold = sipAt(/a=inactive/);
const tUnhold = sipAt(/o=Agent 2002 3 /);
const files = readdirSync(spoolDir);
const mp3 = files.filter((f) => f.endsWith('.mp3'));
const sidecar = JSON.parse(readFileSync(join(spoolDir, files.find((f) => f.endsWith('.json')) as string), 'utf8')) as Sidecar;
const audio = decode(join(spoolDir, mp3[0]));
const wav = decode(join(spoolDir, files.find((f) => f.endsWith('.wav')) as string));

t.test('one file, stereo, exactly as long as the recording was on', async (t) => {
  t.same(files.filter((f) => f.endsWith('.part')), [], 'nothing left half-written');
  t.equal(mp3.length, 1, 'one MP3 for the two legs, the hold and the SSRC change');
  t.match(probe(join(spoolDir, mp3[0])), { codec: 'mp3', channels: 2, sampleRate: 8000 });
  const expected = (tEnd - tStart) / 1000;
  t.ok(Math.abs(audio.seconds - expected) <= 0.1, `decoded ${audio.seconds.toFixed(3)} s; dialogstart→dialogend on the wire ${expected.toFixed(3)} s`);
  t.ok(Math.abs(wav.seconds - audio.seconds) < 0.002, `the WAV copy is as long (${wav.seconds.toFixed(3)} s)`);
  t.equal(sidecar.legs.length, 2);
  const agentSummary = sidecar.legs.find((l) => l.role === 'recordDN');
  t.ok((agentSummary?.ssrcChanges ?? 0) >= 1, 'the agent leg\'s SSRC change was seen');
  const lost = sidecar.legs.find((l) => l.role === 'other')?.lost ?? 0;
  t.ok(lost >= 15 && lost <= 30, `customer losses counted (${lost}, 2 % of ~1000 packets)`);
});

t.test('channels by leg: customer left, agent right, whatever the SSRCs and codecs', async (t) => {
  const [left, right] = audio.channels;
  const at = (wall: number): number => (wall - tStart) / 1000;
  const hold: [number, number] = [at(tHold), at(tUnhold)];
  // 100 ms windows; those that hold a silent marker or touch the hold are skipped (every 10 ms of a checked window
  // is loud, so a lost packet's 20 ms of silence excludes its window too). Nearly all must carry the right tone: an
  // SSRC change or a clock correction may put a phase step in one.
  const loud = (ch: Int16Array, s: number): boolean => [...Array(10).keys()].every((i) => rmsDb(span(ch, s + i * 0.01, s + (i + 1) * 0.01)) > -22);
  const tally = { left: [0, 0], right: [0, 0] };
  let crosstalk = 0;
  for (let s = 0.3; s < audio.seconds - 0.3; s += 0.1) {
    const inHold = s + 0.1 > hold[0] - 0.15 && s < hold[1] + 0.15;
    const w = [span(left, s, s + 0.1), span(right, s, s + 0.1)];
    if (loud(left, s)) {
      tally.left[0]++;
      if (toneShare(w[0], CUSTOMER_HZ) > 0.8) tally.left[1]++;
    }
    if (!inHold && loud(right, s)) {
      tally.right[0]++;
      if (toneShare(w[1], AGENT_HZ) > 0.8) tally.right[1]++;
    }
    if (toneShare(w[0], AGENT_HZ) > 0.05 || toneShare(w[1], CUSTOMER_HZ) > 0.05) crosstalk++;
  }
  t.ok(tally.left[0] > 120 && tally.left[1] / tally.left[0] >= 0.95, `left: the customer's tone in ${tally.left[1]} of ${tally.left[0]} loud windows`);
  t.ok(tally.right[0] > 80 && tally.right[1] / tally.right[0] >= 0.95, `right: the agent's tone in ${tally.right[1]} of ${tally.right[0]} loud windows`);
  t.equal(crosstalk, 0, 'no window carries the other party on the wrong channel');
});

t.test('the hold is silence on the agent channel for exactly as long as it lasted', async (t) => {
  const right = wav.channels[1];
  const holdFrom = (tHold - tStart) / 1000;
  const holdTo = (tUnhold - tStart) / 1000;
  // the longest silent run (10 ms blocks below −50 dBFS) around the hold
  let best = { from: 0, len: 0 };
  let runFrom = -1;
  for (let b = Math.floor((holdFrom - 1) * 100); b < (holdTo + 1) * 100; b++) {
    const quiet = rmsDb(span(right, b / 100, (b + 1) / 100)) < -50;
    if (quiet && runFrom < 0) runFrom = b;
    if ((!quiet || b + 1 >= (holdTo + 1) * 100) && runFrom >= 0) {
      if (b - runFrom > best.len) best = { from: runFrom / 100, len: (b - runFrom) / 100 };
      runFrom = -1;
    }
  }
  t.ok(Math.abs(best.len - (holdTo - holdFrom)) <= 0.1, `silent ${best.len.toFixed(2)} s; on hold ${(holdTo - holdFrom).toFixed(2)} s on the wire`);
  t.ok(Math.abs(best.from - holdFrom) <= 0.1, `from ${best.from.toFixed(2)} s; hold re-INVITE at ${holdFrom.toFixed(2)} s`);
  t.ok(toneShare(span(wav.channels[0], holdFrom + 0.5, holdTo - 0.5), CUSTOMER_HZ) > 0.7, 'the customer is still recorded meanwhile');
  const types = sidecar.events.map((e) => e.type);
  t.same(types.filter((x) => x === 'hold' || x === 'unhold'), ['hold', 'unhold'], 'hold and unhold in the history');
});

t.test('no shift between the channels: every silent marker sits where its packets arrived', async (t) => {
  // first packet of each marker: RTP timestamp known from the pcap; its capture time is when it arrived
  const arrivals = (port: number, ssrcTs: (sec: number) => { ssrc: number; ts: number }, secs: number[]): number[] =>
    secs.map((s) => {
      const want = ssrcTs(s);
      const p = packets.find((x) => x.dport === port && rtpOf(x).ssrc === want.ssrc && rtpOf(x).timestamp === want.ts);
      if (!p) throw new Error(`marker packet at ${s} s not captured`);
      return p.ms;
    });
  const cust = arrivals(customerPort, (s) => ({ ssrc: 0xc0570001, ts: 160_000 + s * 8000 }), CUSTOMER_MARKS);
  const agentTs = (s: number) => (s < AGENT_SSRC_CHANGE ? { ssrc: 0xa9e70001, ts: 160_000 + s * 8000 } : { ssrc: 0x5eed0002, ts: 3_000_000_000 + (s - AGENT_SSRC_CHANGE) * 8000 });
  const agentMarks = AGENT_MARKS.filter((s) => {
    const wall = agentStartWall() + s * 1000;
    return wall < tHold - 300 || wall > tUnhold + 300;
  });
  const ag = arrivals(agentPort, agentTs, agentMarks);
  /** Onset (s into the file) of the first ≥ 200 ms silence near `approx` in a channel of the WAV copy. */
  const onset = (ch: Int16Array, approx: number): number => {
    const block = 0.005;
    const quiet = (s: number): boolean => rmsDb(span(ch, s, s + block)) < -45;
    for (let s = approx - 0.4; s < approx + 0.4; s += block) {
      let ok = true;
      for (let u = s; u < s + 0.2; u += block) if (!quiet(u)) ok = false;
      if (ok) return s;
    }
    return NaN;
  };
  const origins: number[] = [];
  const inFile = (ms: number): number => (ms - tStart) / 1000;
  const legs = [
    { who: 'customer', channel: wav.channels[0], arrived: cust, marks: CUSTOMER_MARKS },
    { who: 'agent', channel: wav.channels[1], arrived: ag, marks: agentMarks },
  ];
  for (const { who, channel, arrived, marks } of legs) {
    arrived.forEach((ms, i) => {
      if (inFile(ms) < 0.3 || inFile(ms) > audio.seconds - 0.5) return;
      const o = onset(channel, inFile(ms));
      t.ok(Number.isFinite(o), `${who} marker ${marks[i]} s found`);
      origins.push(ms - o * 1000);
      t.comment(`${who} marker ${marks[i]}: origin ${(ms - o * 1000 - tStart).toFixed(1)} ms after dialogstart`);
    });
  }
  t.ok(origins.length >= 5, `${origins.length} markers on both channels`);
  const spread = Math.max(...origins) - Math.min(...origins);
  t.ok(spread <= 20, `all markers agree on the file's time origin within ${spread.toFixed(1)} ms (≤ 20 ms)`);
  t.ok(Math.abs(Math.min(...origins) - tStart) < 150, 'and that origin is when dialogstart arrived');

  function agentStartWall(): number {
    const first = packets.find((x) => x.dport === agentPort && rtpOf(x).ssrc === 0xa9e70001 && rtpOf(x).timestamp === 160_000);
    if (!first) throw new Error('agent first packet not captured');
    return first.ms;
  }
});

t.test('the relay delivered each leg\'s audio to the other, converted to its codec, and nothing during the hold', async (t) => {
  const window = (x: CapturedUdp): boolean => x.ms > tUnhold + 500 && x.ms < tEnd - 500;
  const inHold = (x: CapturedUdp): boolean => x.ms > tHold + 200 && x.ms < tUnhold - 200;
  const fromCustomer = packets.filter((x) => x.dport === customerPort && window(x));
  const fromAgent = packets.filter((x) => x.dport === agentPort && window(x));
  const toAgent = packets.filter((x) => x.sport === agentPort && window(x));
  const toCustomer = packets.filter((x) => x.sport === customerPort && window(x));
  t.ok(fromCustomer.length > 300 && fromAgent.length > 300, 'both legs sent RTP');
  t.ok(Math.abs(toAgent.length - fromCustomer.length) <= 3, `customer→agent: ${toAgent.length} relayed of ${fromCustomer.length}`);
  t.ok(Math.abs(toCustomer.length - fromAgent.length) <= 3, `agent→customer: ${toCustomer.length} relayed of ${fromAgent.length}`);
  const payloadTone = (list: CapturedUdp[], law: 'PCMU' | 'PCMA', pt: number, hz: number): void => {
    const rtp = list.map(rtpOf);
    t.ok(rtp.every((p) => p.payloadType === pt), `relayed as payload type ${pt} (${law})`);
    const pcm = new Int16Array(rtp.length * 160);
    rtp.forEach((p, i) => decodeG711(law, p.payload, pcm.subarray(i * 160)));
    t.ok(toneShare(pcm.subarray(0, 8000 * 3), hz) > 0.6, `${law} payloads carry the ${hz} Hz tone`);
  };
  payloadTone(toAgent, 'PCMA', 8, CUSTOMER_HZ);
  payloadTone(toCustomer, 'PCMU', 0, AGENT_HZ);
  t.ok(toAgent.every((x) => x.dport === fromAgent[0].sport), 'sent to where the agent\'s packets come from (symmetric RTP)');
  t.equal(packets.filter((x) => x.sport === agentPort && inHold(x)).length, 0, 'nothing sent to the held agent');
  t.equal(packets.filter((x) => x.sport === customerPort && inHold(x)).length, 0, 'nothing relayed from the inactive agent');
});
