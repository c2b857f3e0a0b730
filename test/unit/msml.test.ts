import t from 'tap';
import pino from 'pino';
import { MsmlInterpreter, type MsmlControlled } from '../../src/msml/msml-interpreter.js';
import { thrown } from '../harness/thrown.js';
import { readdirSync, readFileSync } from 'node:fs';
import { parseMsml } from '../../src/msml/msml-parse.js';
import { eventBody, resultBody } from '../../src/msml/msml-respond.js';

const dir = new URL('../fixtures/msml-samples/', import.meta.url);
const bodyOf = (file: string): string => {
  const text = readFileSync(new URL(file, dir), 'utf8');
  return text.slice(text.indexOf('\r\n\r\n') + 4);
};

t.test('every MSML sample parses to what it is', async (t) => {
  const msmlFiles = readdirSync(dir).filter((f) => /msml\+xml/.test(readFileSync(new URL(f, dir), 'utf8')));
  t.ok(msmlFiles.length >= 12, `found ${msmlFiles.length} MSML samples`);
  const expected: Record<string, string> = {
    '10_INFO_start_record_HYPOTHESIS.sip': 'requests:dialogstart',
    '11_200OK_INFO_start_result.sip': 'result:200',
    '12_INFO_pause_HYPOTHESIS.sip': 'requests:send',
    '13_200OK_INFO_pause_result.sip': 'result:200',
    '14_INFO_resume_HYPOTHESIS.sip': 'requests:send',
    '15_200OK_INFO_resume_result.sip': 'result:200',
    '16_INFO_stop_dialogend.sip': 'requests:dialogend',
    '17_200OK_INFO_stop_result.sip': 'result:200',
    '18_INFO_from_MCP_event_moml_exit.sip': 'event:moml.exit',
    '19_INFO_from_MCP_event_msml_dialog_exit.sip': 'event:msml.dialog.exit',
    '22_200OK_INFO_result_400.sip': 'result:400',
  };
  for (const f of msmlFiles) {
    if (f.startsWith('21_')) continue; // malformed on purpose, below
    const doc = parseMsml(bodyOf(f));
    const what = doc.kind === 'requests' ? `requests:${doc.requests[0].kind}` : doc.kind === 'result' ? `result:${doc.response}` : `event:${doc.name}`;
    t.equal(what, expected[f], f);
  }
});

t.test('the start sample: target, name, format, maxtime, params, recordexit', async (t) => {
  const doc = parseMsml(bodyOf('10_INFO_start_record_HYPOTHESIS.sip'));
  if (doc.kind !== 'requests' || doc.requests[0].kind !== 'dialogstart') throw new Error('not a dialogstart');
  const r = doc.requests[0];
  t.equal(r.target, 'conf:55c29460000054b3');
  t.equal(r.name, 'rec');
  t.equal(r.record.format, 'audio/mp3');
  t.equal(r.record.maxtimeMs, 36_000_000);
  t.equal(r.record.exitNamelist, 'record.end record.len');
  t.same(r.record.params, {
    id: '011AP643CSAPR4FKQGQE31TAES00029V_rec1',
    audiosrc: 'http://tones.example.com/beep.wav',
    tonesilenceduration: '30000',
    ani: '8522001',
    dnis: '+14160000001',
    connId: '006a0269722cd93f',
    recordDN: '8463376',
    agentId: 'agent01',
  });
});

t.test('events carry their name/value pairs in order', async (t) => {
  const doc = parseMsml(bodyOf('18_INFO_from_MCP_event_moml_exit.sip'));
  if (doc.kind !== 'event') throw new Error('not an event');
  t.same(doc.values, [['record.end', 'record.terminate'], ['record.len', '183000']]);
});

t.test('liberal: namespaces, Dialogic group nesting, value= params, unknown vendor elements', async (t) => {
  const xml = `<?xml version="1.0"?><m:msml xmlns:m="urn:ietf:params:xml:ns:msml" xmlns:g="urn:genesys" version="1.1">
    <g:vendorthing a="1"/>
    <m:dialogstart target="conn:1234" type="application/moml+xml">
      <m:group topology="parallel"><m:record dest="http://dav/x.mp3" format="audio/mp3" maxtime="500ms" g:extra="y"><m:param name="id" value="R1"/></m:record></m:group>
    </m:dialogstart></m:msml>`;
  const doc = parseMsml(xml);
  if (doc.kind !== 'requests' || doc.requests[0].kind !== 'dialogstart') throw new Error('not a dialogstart');
  t.same(doc.ignored, ['vendorthing']);
  t.equal(doc.requests[0].record.dest, 'http://dav/x.mp3');
  t.equal(doc.requests[0].record.maxtimeMs, 500);
  t.equal(doc.requests[0].record.params.id, 'R1');
  t.equal(doc.requests[0].record.attrs.extra, 'y');
});

t.test('malformed and unsupported MSML get the MSML code to answer with', async (t) => {
  t.match(thrown(() => parseMsml(bodyOf('21_INFO_malformed_msml.sip'))), { msmlCode: 400, message: /XML parse error/ });
  t.match(thrown(() => parseMsml('')), { msmlCode: 400 });
  t.match(thrown(() => parseMsml('<notmsml/>')), { msmlCode: 400, message: /root element/ });
  t.match(thrown(() => parseMsml('<msml version="1.1"><dialogstart target="conn:1" type="application/moml+xml"><play><audio uri="x"/></play></dialogstart></msml>')), { msmlCode: 402 });
  t.match(thrown(() => parseMsml('<msml version="1.1"><audit queryid="x"/></msml>')), { msmlCode: 402, message: /audit/ });
  t.match(thrown(() => parseMsml('<msml version="1.1"><dialogstart type="application/moml+xml"><record/></dialogstart></msml>')), { msmlCode: 407, message: /target/ });
  t.match(thrown(() => parseMsml('<msml version="1.1"><send target="x"/></msml>')), { msmlCode: 407, message: /event/ });
  t.match(thrown(() => parseMsml('<msml version="1.1"><dialogstart target="c" type="t"><record maxtime="soon"/></dialogstart></msml>')), { msmlCode: 407, message: /maxtime/ });
});

t.test('responses: results and events round-trip through the parser', async (t) => {
  const ok = parseMsml(resultBody(200, { dialogId: 'conf:1/dialog:rec' }));
  t.match(ok, { kind: 'result', response: 200, ids: ['conf:1/dialog:rec'] });
  const err = parseMsml(resultBody(400, { description: 'Bad <request> & "quotes"' }));
  t.match(err, { kind: 'result', response: 400, description: 'Bad <request> & "quotes"' });
  const ev = parseMsml(eventBody('moml.exit', 'conf:1/dialog:rec', [['record.end', 'record.terminate'], ['record.len', '1000']]));
  t.match(ev, { kind: 'event', name: 'moml.exit', id: 'conf:1/dialog:rec', values: [['record.end', 'record.terminate'], ['record.len', '1000']] });
});

t.test('the interpreter drives its target, refuses with MSML codes, and holds events back until the answer is out', async (t) => {
  const calls: string[] = [];
  let running = false;
  let interp: MsmlInterpreter<string>;
  const target: MsmlControlled<string> = {
    startRecording: (r, dialog) => {
      running = true;
      calls.push(`start ${r.target} on ${dialog}`);
      return { code: 200, body: '<ok/>' };
    },
    stopRecording: async (reason) => {
      running = false;
      calls.push(`stop ${reason}`);
      await interp.afterAnswer(async () => void calls.push('exit events'));
    },
    pause: () => void calls.push('pause'),
    resume: () => void calls.push('resume'),
    names: (id) => running && id === 'conf:c1/dialog:rec',
    conferenceId: (name) => `conf:${name ?? 'c1'}`,
  };
  interp = new MsmlInterpreter(target, pino({ level: 'silent' }));
  const start = await interp.handle('<msml version="1.1"><dialogstart target="conf:c1" name="rec"><record/></dialogstart></msml>', 'leg-a');
  t.equal(start.code, 200);
  t.match((await interp.handle('<msml version="1.1"><send target="conf:c1/dialog:nope" event="pause"/></msml>', 'leg-a')).body, /response="405"[\s\S]*No such dialog/, 'unknown dialog: 405');
  t.match((await interp.handle('<msml version="1.1"><send target="conf:c1/dialog:rec" event="rewind"/></msml>', 'leg-a')).body, /Unsupported event &quot;rewind&quot;/, 'unknown event refused');
  await interp.handle('<msml version="1.1"><send target="conf:c1/dialog:rec" event="pause"/></msml>', 'leg-a');
  const end = await interp.handle('<msml version="1.1"><dialogend id="conf:c1/dialog:rec"/></msml>', 'leg-a');
  t.same(calls, ['start conf:c1 on leg-a', 'pause', 'stop record.terminate'], 'the exit events are not sent before the answer');
  t.equal(end.verb, 'dialogend');
  await end.after?.();
  t.equal(calls.at(-1), 'exit events', '... but once the answer is out');
  await interp.afterAnswer(async () => void calls.push('later'));
  t.equal(calls.at(-1), 'later', 'outside a request, events go at once');
});
