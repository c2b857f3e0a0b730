/**
 * The WebDAV client remembers which collections exist so that it does not MKCOL the same folder for every file, and
 * remembers a bounded number of them: a recorder that runs for weeks (a folder a day, or an MSML dest per call) does
 * not hold one entry per folder it ever made. Against Apache mod_dav.
 */
import t from 'tap';
import { WebDavClient } from '../../src/jobs/webdav-client.js';
import { davServer } from '../harness/delivery-servers.js';

t.test('known collections are remembered, at most maxKnown of them', async (t) => {
  const dav = await davServer();
  t.teardown(() => dav.stop());
  const client = new WebDavClient({ user: dav.user, password: dav.password, timeoutMs: 5000, maxKnown: 2 });
  const mkcols = (): string[] => dav.log.filter((l) => l.startsWith('MKCOL ')).map((l) => l.split(' ')[1]);
  const into = (day: string): Promise<void> => client.ensureParents(`${dav.url}/${day}/x.mp3`);

  await into('d1');
  await into('d1');
  t.same(mkcols(), ['/recordings/d1/'], 'a known collection is not made again');
  await into('d2');
  await into('d3'); // the third: d1, the oldest, is forgotten
  await into('d3');
  await into('d2');
  t.same(mkcols(), ['/recordings/d1/', '/recordings/d2/', '/recordings/d3/'], 'two are remembered');
  await into('d1');
  t.same(mkcols().slice(3), ['/recordings/d1/'], 'the forgotten one is made again (405: it exists), and delivery goes on');
});
