import { createSocket } from 'node:dgram';

/** A UDP port on 127.0.0.1 that is free now (a peer under test binds it next, e.g. ffmpeg's source port). */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
