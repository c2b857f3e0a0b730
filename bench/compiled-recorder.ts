/** The recorder as the benches run it: the compiled build, laid out like the Docker image, in a temporary folder. */
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.js';
import { ROOT, tempDir } from '../test/harness/recorder-harness.js';

/** Compiles src/ into a new folder with conf/, package.json, node_modules and the native UDP engine; the folder. */
export async function layOutCompiledRecorder(): Promise<string> {
  const image = tempDir('bench-image');
  await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(image, 'dist')], { cwd: ROOT });
  cpSync(join(ROOT, 'conf'), join(image, 'conf'), { recursive: true });
  // the native UDP engine, where the image has it (npm ci built it)
  if (existsSync(join(ROOT, 'build/Release/udp_engine.node'))) cpSync(join(ROOT, 'build/Release/udp_engine.node'), join(image, 'build/Release/udp_engine.node'));
  copyFileSync(join(ROOT, 'package.json'), join(image, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(image, 'node_modules'));
  return image;
}

/** The node arguments that run the compiled recorder in `image`. */
export const compiledRecorderArgs = (image: string): string[] => [join(image, 'dist/src/cli.js'), 'run'];

/**
 * The recorder's admission settings as env overrides: conf/default.yaml's as it is when the bench starts (the test
 * harness turns them off), or all off (`on` false).
 */
export function admissionEnv(on = true): Record<string, string> {
  const a = loadConfig({}).admission;
  const v = (x: number): string => String(on ? x : 0);
  return { MSMLREC_ADMISSION_MAX_LOOP_DELAY_MS: v(a.maxLoopDelayMs), MSMLREC_ADMISSION_MAX_ENCODE_LAG_MS: v(a.maxEncodeLagMs), MSMLREC_ADMISSION_MAX_THROTTLED_PCT: v(a.maxThrottledPct), MSMLREC_ADMISSION_MAX_CPU_WAIT_PCT: v(a.maxCpuWaitPct) };
}
