/**
 * A port of the RTP range that another process holds (a sidecar, a phone's ephemeral port) costs a bind attempt, not
 * the call: the leg opens on the next free port, on a media worker thread, with the native engine and with Node's
 * sockets.
 */
import { createSocket, type Socket } from 'node:dgram';
import { pino } from 'pino';
import t from 'tap';
import { RtpPortPool } from '../../src/media/rtp-port-pool.js';
import { MediaPlane } from '../../src/plane/media-plane.js';
import { testHostConfig } from '../harness/host-config.js';

/** A UDP socket on an even port of 127.0.0.1 (the first of a range the plane will be given). */
async function holdEvenPort(): Promise<Socket> {
  for (;;) {
    const port = 40000 + 2 * Math.floor(Math.random() * 5000);
    const s = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) return s;
    s.close();
  }
}

for (const udp of ['native', 'js'] as const) {
  t.test(`${udp} UDP: the first port of the range is held by another process; the leg opens on the next one`, async (t) => {
    const holder = await holdEvenPort();
    t.teardown(() => holder.close());
    const held = holder.address().port;
    const ports = new RtpPortPool(held, held + 10);
    const plane = new MediaPlane({
      workers: 1,
      ports,
      log: pino({ level: 'silent' }),
      config: testHostConfig(udp),
    });
    t.teardown(() => plane.close());
    const session = plane.session('held-port', {});
    const leg = await session.openLeg('call-1', 'recordDN', [0], [null]);
    // the next free one: held + 2 unless a parallel test's socket holds that too
    t.ok(leg.ports.length === 1 && leg.ports[0] > held && leg.ports[0] <= held + 10, `opened on ${leg.ports.join(', ')} of ${held}-${held + 10}, not on ${held}`);
    t.equal(ports.inUse, 1, 'the held port went back to the pool: only the leg holds one');
    await session.closeLeg(leg.legId);
    t.equal(ports.inUse, 0, 'closed, every port is free');
    await session.close();
  });
}
