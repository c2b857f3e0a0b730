import t from 'tap';
import { ToneInjector } from '../../src/media/tone-injector.js';

const tone = Int16Array.from({ length: 400 }, (_, i) => i + 1); // 50 ms: 2.5 packets of 20 ms

t.test('plays, then counts its silence in relayed samples; pause and resume; the wall clock when packets stop', async (t) => {
  let plays = 0;
  const inj = new ToneInjector(tone, 100, () => plays++);
  const out: (number | null)[] = [];
  let now = 0;
  for (let k = 0; k < 12; k++) {
    const c = inj.next(160, now);
    out.push(c ? c[0] : null);
    now += 20;
  }
  // 3 packets of tone (the last one padded), 5 packets (100 ms) of silence, then again
  t.same(out, [1, 161, 321, null, null, null, null, null, 1, 161, 321, null]);
  t.equal(plays, 2, 'two plays');
  const c = new ToneInjector(tone, 100);
  t.equal(c.next(160, 0)?.[0], 1);
  c.pause();
  t.equal(c.next(160, 20), null, 'nothing while paused');
  c.resume();
  t.equal(c.next(160, 40)?.[0], 1, 'from its start again at the resume');
  const padded = new ToneInjector(tone, 100);
  padded.next(160, 0);
  padded.next(160, 20);
  t.same([...(padded.next(160, 40) ?? [])].slice(78, 82), [399, 400, 0, 0], 'the last packet is padded with silence');
  // no packets for a while: the next one after silence + 40 ms plays
  t.equal(padded.next(160, 60 + 100 + 41)?.[0], 1, 'the wall clock starts the play when packets stopped');
});
