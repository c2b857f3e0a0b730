import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostConfig } from '../../src/plane/plane-protocol.js';

/** A media host's configuration for tests that start a MediaPlane themselves: its own spool, 127.0.0.1, one encoder. */
export function testHostConfig(udp: HostConfig['udp'] = 'js'): HostConfig {
  return { spoolDir: mkdtempSync(join(tmpdir(), 'spool-')), bindAddress: '127.0.0.1', udp, jitterMs: 80, maxSkewMs: 400, horizonMs: 2500, encoder: { workers: 1, engine: 'wasm', quality: 7, batchMs: 500, nice: 0 }, logLevel: 'silent', statusMs: 200, loadWindowMs: 1000 };
}
