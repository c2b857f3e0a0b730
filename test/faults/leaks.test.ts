/**
 * Nothing held for ever: an INVITE whose 200 drachtio-server never confirms (its transaction gone: a TCP connection
 * closed right after the INVITE, a raw duplicate) leaves no session and no port behind, and a dialog confirmed late
 * is ended with a BYE.
 */
import t from 'tap';
import { parsePromText } from '../harness/prom-text.js';
import { startApp, startSim } from '../harness/recorder-harness.js';
import { PCMU_OFFER, SipUac } from '../harness/sip-uac.js';
import { sleep, until } from '../harness/until.js';

const sim = await startSim();
const app = await startApp(sim, { MSMLREC_SIP_ANSWER_TIMEOUT_SEC: '2' });
const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
t.teardown(async () => {
  uac.stop();
  await app.stop('SIGKILL');
  await sim.stop();
});
const metric = async (name: string): Promise<number> => parsePromText((await app.ops('/metrics')).body).get(name) ?? 0;

t.test("an INVITE whose 200 drachtio-server never confirms: its session and port are freed, nothing leg-less is left", async (t) => {
  sim.swallowAnswer = (callId) => callId === 'swallowed-1';
  // the UAC gets no final answer (the simulator swallowed it); nothing waits for it here
  void uac.request('INVITE', `sip:msml=lk1@127.0.0.1:${sim.sipPort};dn=7001;record`, { headers: { 'content-type': 'application/sdp', 'call-id': 'swallowed-1' }, body: PCMU_OFFER }).catch(() => undefined);
  await until('the leg was opened', async () => (await metric('msmlrec_rtp_ports_in_use')) === 1, 5000);
  t.equal(await metric('msmlrec_calls_active'), 1, 'while it is being answered the session holds its port');
  await until('freed after sip.answerTimeoutSec', async () => (await metric('msmlrec_rtp_ports_in_use')) === 0 && (await metric('msmlrec_calls_active')) === 0, 6000, () => app.logs.slice(-4).join('\n'));
  t.ok(app.logs.some((l) => l.includes('did not confirm the 200')), 'logged why');
  sim.swallowAnswer = () => false;
  const ok = await uac.request('INVITE', `sip:msml=lk2@127.0.0.1:${sim.sipPort};dn=7001;record`, { headers: { 'content-type': 'application/sdp' }, body: PCMU_OFFER });
  t.equal(ok.status, 200, 'the next INVITE is answered');
  await uac.request('BYE', '', { dialog: uac.dialogOf(ok) });
  await sleep(300);
  t.equal(await metric('msmlrec_rtp_ports_in_use'), 0, 'every port free');
  t.equal(await metric('msmlrec_calls_active'), 0, 'no session left');
});
