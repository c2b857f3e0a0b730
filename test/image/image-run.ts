/**
 * The built image, started and used (`.ci/image` builds it and runs this; not part of `npm test`, which needs no
 * image): MSMLREC_IMAGE names it in buildah's storage.
 *
 * - What the image is: it runs as a non-root user, holds the compiled build, the production dependencies and the
 *   native UDP engine, and no dev dependency and no compiler; its size is printed.
 * - What it does: a container of it runs with `buildah run --isolation chroot` (the host's network), as the image's
 *   user, with the image's entrypoint and command and a host folder as its spool volume. /livez answers; one call
 *   through the drachtio simulator (real SIP, real RTP) is recorded into the spool volume, as the image's user, and
 *   decodes to the tone that was sent.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import { decode, medianToneShare } from '../harness/audio.js';
import { freeUdpPort } from '../harness/free-port.js';
import { ROOT, startSim, tempDir } from '../harness/recorder-harness.js';
import { RtpSender } from '../harness/rtp-sender.js';
import { PCMU_OFFER, SipUac } from '../harness/sip-uac.js';
import { freeDualPort } from '../sim/drachtio-sim.js';
import { until } from '../harness/until.js';

const IMAGE = process.env.MSMLREC_IMAGE;
if (!IMAGE) {
  t.plan(0, 'MSMLREC_IMAGE is not set: .ci/image builds the image and names it');
  process.exit(0);
}
const buildah = (...args: string[]): string => execFileSync('buildah', args, { encoding: 'utf8' }).trim();
const inspected = JSON.parse(buildah('inspect', '--type', 'image', IMAGE)) as { OCIv1: { config: { User: string; Entrypoint: string[]; Cmd: string[]; WorkingDir: string; Volumes: Record<string, object>; Env: string[] } } };
const config = inspected.OCIv1.config;
const ctr = buildah('from', '--quiet', IMAGE);
const root = buildah('mount', ctr);
t.teardown(() => {
  buildah('umount', ctr);
  buildah('rm', ctr);
});

/** The processes below `pid`, from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      parent.set(Number(d), Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]));
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, pp] of parent) if (pp === p) (out.push(child), walk(child));
  };
  walk(pid);
  return out;
}

t.test('the image: a non-root user, the build and its production dependencies, no dev dependency, no compiler', async (t) => {
  const size = buildah('images', '--format', '{{.Size}}', IMAGE);
  t.comment(`image ${IMAGE}: ${size}`);
  t.ok(config.User && config.User !== 'root' && config.User !== '0', `runs as ${config.User}`);
  const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${config.User}:`));
  t.not(passwd?.split(':')[2], '0', `whose uid is not 0 (${passwd?.split(':')[2]})`);
  const app = join(root, config.WorkingDir);
  t.ok(existsSync(join(app, 'dist/src/cli.js')), 'the compiled build');
  t.ok(existsSync(join(app, 'build/Release/udp_engine.node')), 'the native UDP engine');
  t.ok(existsSync(join(app, 'conf/default.yaml')), 'the default configuration');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const present = (name: string): boolean => existsSync(join(app, 'node_modules', name, 'package.json'));
  t.same(Object.keys(pkg.dependencies).filter((d) => !present(d)), [], 'every production dependency');
  // a dev dependency may also be a production one's dependency: only those that are not are looked for
  const prodTree = new Set(readdirSync(join(app, 'node_modules')).flatMap((d) => (d.startsWith('@') ? readdirSync(join(app, 'node_modules', d)).map((x) => `${d}/${x}`) : [d])));
  const devOnly = Object.keys(pkg.devDependencies).filter((d) => !(d in pkg.dependencies));
  t.same(devOnly.filter((d) => prodTree.has(d) && ['typescript', 'tap', 'tsx', 'node-gyp', 'werift-rtp', 'sip'].includes(d)), [], `no dev dependency (${devOnly.length} looked for)`);
  const compilers = ['gcc', 'g++', 'cc', 'c++', 'make', 'python3', 'ld'].flatMap((b) => ['usr/bin', 'usr/local/bin', 'bin'].map((d) => join(d, b))).filter((p) => existsSync(join(root, p)));
  t.same(compilers, [], 'no compiler, linker, make or python');
  t.ok(config.Volumes['/var/spool/msml-recorder'] !== undefined, 'the spool is a volume');
});

t.test('a container of it: /livez answers, and a call is recorded into the spool volume as the image user', async (t) => {
  const sim = await startSim();
  const spool = tempDir('image-spool');
  chmodSync(spool, 0o777); // the image's user writes it
  const opsPort = await freeDualPort();
  const rtpMin = (await freeUdpPort()) & ~1;
  const env = {
    MSMLREC_DRACHTIO_HOST: '127.0.0.1',
    MSMLREC_DRACHTIO_PORT: String(sim.controlPort),
    MSMLREC_DRACHTIO_SECRET: 'cymru',
    MSMLREC_RTP_BIND_ADDRESS: '127.0.0.1',
    MSMLREC_RTP_ADVERTISED_ADDRESS: '127.0.0.1',
    MSMLREC_RTP_PORT_MIN: String(rtpMin),
    MSMLREC_RTP_PORT_MAX: String(rtpMin + 20),
    MSMLREC_OPS_BIND_ADDRESS: '127.0.0.1',
    MSMLREC_OPS_PORT: String(opsPort),
    MSMLREC_DELIVERY_ENABLED: 'false',
    // the native engine or no start at all (auto would fall back to dgram sockets with a warning)
    MSMLREC_MEDIA_UDP: 'native',
  };
  const volume = Object.keys(config.Volumes)[0];
  const args = ['run', '--isolation', 'chroot', '--network', 'host', '--user', config.User, '--workingdir', config.WorkingDir, '-v', `${spool}:${volume}`, ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]), ctr, '--', ...config.Entrypoint, ...config.Cmd];
  const proc = spawn('buildah', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  proc.stdout.on('data', (d: Buffer) => logs.push(...d.toString().split('\n').filter(Boolean)));
  proc.stderr.on('data', (d: Buffer) => logs.push(`stderr: ${d.toString()}`));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const uac = await new SipUac(`127.0.0.1:${sim.sipPort}`).start();
  const rtp = await RtpSender.open();
  t.teardown(async () => {
    rtp.close();
    uac.stop();
    if (proc.exitCode === null) {
      // buildah does not take its child with it: the recorder in the container first
      for (const pid of descendants(proc.pid as number).reverse()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      proc.kill('SIGKILL');
      await exited;
    }
    await sim.stop();
  });
  const context = (): string => logs.slice(-10).join('\n');
  await until('/livez', async () => (await fetch(`http://127.0.0.1:${opsPort}/livez`).then((r) => r.status, () => 0)) === 200, 60_000, context);
  t.pass('/livez answers 200');
  await until('connected to drachtio', () => logs.some((l) => l.includes('connected to drachtio-server')), 30_000, context);
  await until('routes registered', () => sim.frames.some((f) => f.dir === 'in' && f.text.includes('|route|invite')), 10_000, context);
  t.match(logs.find((l) => l.includes('media workers started')) ?? '', /"udp":"native"/, 'the native UDP engine is what it runs');

  const conf = 'imagecall1';
  const inv = await uac.request('INVITE', `sip:msml=${conf}@127.0.0.1:${sim.sipPort};dn=7001;record;tenant-dbid=1;media-service=record`, { headers: { 'content-type': 'application/sdp' }, body: PCMU_OFFER.replace('m=audio 40000', `m=audio ${rtp.port}`) });
  t.equal(inv.status, 200, 'INVITE 200');
  const dialog = uac.dialogOf(inv);
  const port = Number(/m=audio (\d+)/.exec(String(inv.content))?.[1]);
  const msml = { 'content-type': 'application/vnd.radisys.msml+xml' };
  const start = await uac.request('INFO', '', { dialog, headers: msml, body: `<msml version="1.1"><dialogstart target="conf:${conf}" name="rec"><record format="audio/mp3"/></dialogstart></msml>` });
  t.match(String(start.content), /response="200"/, 'dialogstart 200');
  await rtp.play(port, { law: 'PCMU', freq: 700, seconds: 3, ssrc: 0x1 });
  await uac.request('INFO', '', { dialog, headers: msml, body: `<msml version="1.1"><dialogend id="conf:${conf}/dialog:rec"/></msml>` });
  await uac.request('BYE', '', { dialog });
  const mp3 = (): string | undefined => readdirSync(spool).find((f) => f.endsWith('.mp3') && !readdirSync(spool).includes(f.replace(/\.mp3$/, '.open.json')));
  await until('the recording in the spool volume', () => mp3() !== undefined && readdirSync(spool).some((f) => f.endsWith('.json') && !f.endsWith('.open.json')), 30_000, context);
  const file = join(spool, mp3() as string);
  const uid = Number(readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${config.User}:`))?.split(':')[2]);
  t.equal(statSync(file).uid, uid, `written by the image's user (uid ${uid})`);
  const d = decode(file);
  t.ok(d.seconds > 2.5 && d.seconds < 3.6, `${d.seconds.toFixed(2)} s long`);
  const share = medianToneShare(d.channels[0], 700, 0.3, d.seconds - 0.3);
  t.ok(share > 0.9, `the tone that was sent (700 Hz share ${share.toFixed(3)})`);

  // the stop Kubernetes makes: SIGTERM to the container's process (buildah run does not pass its own on: it kills)
  const argv = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  // the entrypoint's process itself (`node` resolved on PATH), not buildah's chroot helpers that carry its arguments
  const [command, ...rest] = config.Entrypoint;
  const recorder = descendants(proc.pid as number).find((pid) => {
    const [exe, ...args] = argv(pid);
    return basename(exe) === command && args.slice(0, rest.length).join(' ') === rest.join(' ');
  });
  t.ok(recorder, `the recorder's process in the container (pid ${recorder})`);
  if (recorder) process.kill(recorder, 'SIGTERM');
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 30_000))]);
  t.equal(code, 0, 'SIGTERM: it exits 0');
  t.ok(logs.some((l) => l.includes('"draining: refusing new calls')), 'after draining');
});
