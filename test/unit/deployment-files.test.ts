/**
 * The deployment files: every k8s manifest parses and passes the Kubernetes OpenAPI schema (kubernetes-models'
 * validators), and agrees with the program it deploys: its config loads, its ports, paths, grace times and metric
 * names are the ones the code uses. The Dockerfile has the shape the README promises. The README's deployment section
 * names every manifest.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments, parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { spawnSync } from 'node:child_process';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { loadProfiles } from '../../src/profiles.js';
import { loadConfig, mediaWorkers } from '../../src/config.js';
import { RtpPortPool } from '../../src/media/rtp-port-pool.js';
import { MediaTally } from '../../src/ops/media-tally.js';
import { RecorderMetrics } from '../../src/ops/metrics.js';
import { pino } from 'pino';
import { SpoolWatch } from '../../src/ops/spool-watch.js';
import { MediaPlane } from '../../src/plane/media-plane.js';
import { SessionRegistry } from '../../src/session/session-registry.js';
import { ROOT } from '../harness/recorder-harness.js';
import { testHostConfig } from '../harness/host-config.js';
import { thrown } from '../harness/thrown.js';

type Doc = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: unknown };
const MODELS: Record<string, new (d: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
};

const k8s = join(ROOT, 'k8s');
const files = readdirSync(k8s).filter((f) => f.endsWith('.yaml'));
const docs: (Doc & { file: string })[] = [];
for (const f of files) {
  for (const d of parseAllDocuments(readFileSync(join(k8s, f), 'utf8'))) {
    if (d.errors.length) throw new Error(`${f}: ${d.errors[0].message}`);
    docs.push({ ...(d.toJS() as Doc), file: f });
  }
}
const find = (kind: string, name: string): Doc => {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!d) throw new Error(`no ${kind} ${name} in k8s/`);
  return d;
};

t.test('every manifest passes the Kubernetes schema', async (t) => {
  t.ok(files.length >= 9, `${files.length} files`);
  for (const d of docs) {
    // the PrometheusRule (a CRD) is checked against its plain rules file and promtool below
    if (d.kind === 'Kustomization' || d.kind === 'PrometheusRule') continue;
    const Model = MODELS[`${d.apiVersion}/${d.kind}`];
    t.ok(Model, `${d.file}: ${d.apiVersion} ${d.kind} is a kind we check`);
    if (!Model) continue;
    const { file, ...obj } = d;
    t.equal(thrown(() => new Model(obj as never).validate()), null, `${file}: ${d.kind} ${d.metadata.name} is valid`);
  }
  // the check is real: a wrong type is caught
  const bad = { ...find('StatefulSet', 'msml-recorder'), spec: { ...(find('StatefulSet', 'msml-recorder').spec as object), replicas: 'two' } };
  t.match(thrown(() => new StatefulSet(bad as never).validate()), { message: /replicas must be integer/ }, 'a broken StatefulSet fails the check');
});

t.test('kustomization lists every manifest and the dashboard', async (t) => {
  const kz = docs.find((d) => d.kind === 'Kustomization') as unknown as { resources: string[]; configMapGenerator: { files: string[] }[] };
  t.same([...kz.resources].sort(), files.filter((f) => f !== 'kustomization.yaml').sort());
  for (const g of kz.configMapGenerator) for (const f of g.files) t.doesNotThrow(() => readFileSync(join(k8s, f)), `${f} exists`);
});

type Container = { name: string; image: string; args?: string[]; command?: string[]; env?: { name: string; value?: string }[]; restartPolicy?: string; lifecycle?: { preStop?: { exec?: { command: string[] } } }; readinessProbe?: { httpGet: { path: string; port: string } }; ports?: { name: string; containerPort: number }[]; volumeMounts?: { name: string; mountPath: string }[] };
type PodSpec = { hostNetwork?: boolean; terminationGracePeriodSeconds: number; initContainers: Container[]; containers: Container[] };

t.test('the recorder StatefulSet agrees with the program', async (t) => {
  const ss = find('StatefulSet', 'msml-recorder') as unknown as { spec: { serviceName: string; template: { metadata: { annotations: Record<string, string> }; spec: PodSpec }; volumeClaimTemplates: { metadata: { name: string } }[] } };
  const pod = ss.spec.template.spec;
  const app = pod.containers.find((c) => c.name === 'recorder') as Container;
  const drachtio = pod.initContainers.find((c) => c.name === 'drachtio') as Container;
  t.match(drachtio.image, /^drachtio\/drachtio-server:\d/, 'drachtio sidecar from the drachtio/drachtio-server image, pinned');
  t.equal(drachtio.restartPolicy, 'Always', 'a native sidecar: stops after the app, so draining calls keep their SIP stack');

  // the site config + the Secret's keys + the container's literal env load as a valid config
  const cm = find('ConfigMap', 'msml-recorder-config') as unknown as { data: Record<string, string> };
  const dir = mkdtempSync(join(tmpdir(), 'k8s-'));
  writeFileSync(join(dir, 'recorder.yaml'), cm.data['recorder.yaml']);
  writeFileSync(join(dir, 'profiles.yaml'), cm.data['profiles.yaml']);
  const secret = find('Secret', 'msml-recorder-secrets') as unknown as { stringData: Record<string, string> };
  const env: Record<string, string> = { ...secret.stringData, MSMLREC_CONFIG: join(dir, 'recorder.yaml'), MSMLREC_CLUSTER_ID: 'msml-recorder-0', MSMLREC_RTP_ADVERTISED_ADDRESS: '10.0.0.5' };
  for (const e of app.env ?? []) if (e.value !== undefined && e.name !== 'MSMLREC_CONFIG') env[e.name] = e.value;
  t.equal((parseYaml(cm.data['recorder.yaml']) as { profiles: { file: string } }).profiles.file, '/etc/msml-recorder/profiles.yaml', 'the profiles file is the ConfigMap key, where the ConfigMap is mounted');
  const config = loadConfig({ ...env, MSMLREC_PROFILES_FILE: join(dir, 'profiles.yaml') });
  t.equal(config.cluster.enabled, true, 'recorders register for the RM shim');
  t.same(loadProfiles(config).names.sort(), ['Bank.Retail', 'Shop.Sales', 'default'], "the ConfigMap's profiles load");
  const cpu = Number((app as Container & { resources: { requests: { cpu: string } } }).resources.requests.cpu);
  t.equal(mediaWorkers(config), cpu, `one media worker per requested core (${cpu}): "auto" would count the node's cores`);
  t.equal(app.volumeMounts?.find((v) => v.name === 'config')?.mountPath, '/etc/msml-recorder', 'mounted where profiles.file points');

  const opsPort = app.ports?.find((p) => p.name === 'ops')?.containerPort;
  t.equal(opsPort, config.ops.port, 'the ops port the container exposes is the configured one');
  t.equal(ss.spec.template.metadata.annotations['prometheus.io/port'], String(config.ops.port), 'Prometheus scrapes that port');
  t.equal(app.readinessProbe?.httpGet.path, '/readyz', 'readiness probe on /readyz');
  t.same(app.lifecycle?.preStop?.exec?.command.slice(0, 3), ['node', 'dist/src/cli.js', 'drain'], 'preStop waits for the drain');
  t.ok(pod.terminationGracePeriodSeconds >= config.drain.callGraceSec + config.drain.deliveryGraceSec, 'grace period covers the drain and the delivery wait');
  t.equal(app.volumeMounts?.find((v) => v.name === 'spool')?.mountPath, config.spool.dir, 'the spool volume is where the spool is');
  t.ok(ss.spec.volumeClaimTemplates.some((v) => v.metadata.name === 'spool'), 'the spool is a per-pod persistent volume');
  t.ok(drachtio.args?.includes(String(config.drachtio.port)), "drachtio's admin port is the one the app connects to");
  t.equal(pod.hostNetwork, true, 'hostNetwork (see README)');
  t.match(JSON.stringify(app.env), /metadata\.name/, 'the recorder id is the pod name (stable delivery queue)');
});

t.test('the shim Deployment runs the rm-shim mode with its own drachtio', async (t) => {
  const dep = find('Deployment', 'msml-rm-shim') as unknown as { spec: { template: { spec: PodSpec } } };
  const pod = dep.spec.template.spec;
  const shim = pod.containers[0];
  t.same(shim.args, ['rm-shim']);
  const port = shim.env?.find((e) => e.name === 'MSMLREC_DRACHTIO_PORT')?.value;
  t.ok(port && pod.initContainers[0].args?.includes(port), 'the shim connects to its own sidecar');
});

t.test('HPA and dashboard use metrics the program exports', async (t) => {
  const plane = new MediaPlane({
    workers: 0,
    ports: new RtpPortPool(20000, 20010),
    log: pino({ level: 'silent' }),
    config: testHostConfig(),
  });
  t.teardown(() => plane.close());
  const metrics = new RecorderMetrics({
    registry: new SessionRegistry(),
    ports: new RtpPortPool(20000, 20010),
    plane,
    spool: new SpoolWatch(mkdtempSync(join(tmpdir(), 'spool-')), { maxBytes: 0, minFreeBytes: 0 }, pino({ level: 'silent' })),
    delivery: null,
    tally: new MediaTally(),
    draining: () => false,
    drachtioConnected: () => true,
  });
  const exported = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    exported.add(m.name);
    if (m.type === ('histogram' as never)) for (const s of ['_bucket', '_sum', '_count']) exported.add(m.name + s);
  }
  const shimSource = readFileSync(join(ROOT, 'src/rm-shim/rm-shim.ts'), 'utf8');
  const known = (name: string): boolean => exported.has(name) || (name.startsWith('msmlrec_shim_') && shimSource.includes(name.replace(/_(bucket|sum|count)$/, '')));
  const hpa = find('HorizontalPodAutoscaler', 'msml-recorder') as unknown as { spec: { metrics: { pods: { metric: { name: string } } }[] } };
  for (const m of hpa.spec.metrics) t.ok(known(m.pods.metric.name), `HPA metric ${m.pods.metric.name} is exported`);
  const dash = JSON.parse(readFileSync(join(k8s, 'grafana-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  t.ok(dash.panels.length >= 15, `${dash.panels.length} panels`);
  const used = new Set(dash.panels.flatMap((p) => p.targets.flatMap((x) => x.expr.match(/msmlrec_\w+/g) ?? [])));
  for (const name of used) t.ok(known(name), `dashboard metric ${name} is exported`);
  for (const name of ['msmlrec_calls_active', 'msmlrec_rtp_lost_total', 'msmlrec_encode_lag_seconds', 'msmlrec_upload_failures_total', 'msmlrec_spool_pending_recordings']) t.ok(used.has(name), `the dashboard shows ${name}`);
  const rules = parseYaml(readFileSync(join(k8s, 'alert-rules.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const inRules = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => r.expr.match(/msmlrec_\w+/g) ?? [])));
  for (const name of inRules) t.ok(known(name), `alert rule metric ${name} is exported`);
  const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
  t.match(JSON.stringify(dash), new RegExp(alerts.join('.*'), 's'), 'the dashboard names every alert of the rules file');
});

t.test('alert rules: the PrometheusRule carries the rules file; promtool checks them and their unit tests pass', async (t) => {
  const plain = parseYaml(readFileSync(join(k8s, 'alert-rules.yml'), 'utf8')) as { groups: { name: string; rules: Record<string, unknown>[] }[] };
  const crd = find('PrometheusRule', 'msml-recorder') as unknown as { apiVersion: string; spec: { groups: unknown } };
  t.equal(crd.apiVersion, 'monitoring.coreos.com/v1');
  t.same(crd.spec.groups, plain.groups, 'prometheus-rule.yaml has the same groups as alert-rules.yml');
  const promtool = spawnSync('promtool', ['--version']);
  if (promtool.error) {
    t.fail(`promtool is needed (Debian: apt-get install prometheus; .ci/run installs it): ${promtool.error.message}`);
    return;
  }
  const check = spawnSync('promtool', ['check', 'rules', join(k8s, 'alert-rules.yml')], { encoding: 'utf8' });
  t.equal(check.status, 0, `promtool check rules: ${check.stdout.trim().split('\n').pop()} ${check.stderr}`);
  // promtool compares annotations whole: the unit tests run on the rules without them (check rules checked their templates)
  const dir = mkdtempSync(join(tmpdir(), 'rules-'));
  const bare = { groups: plain.groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _a, ...r }) => r) })) };
  writeFileSync(join(dir, 'alert-rules.yml'), stringifyYaml(bare));
  writeFileSync(join(dir, 'tests.yml'), readFileSync(join(ROOT, 'test/rules/alert-rules.test.yml'), 'utf8'));
  const run = (): { status: number | null; out: string } => {
    const r = spawnSync('promtool', ['test', 'rules', join(dir, 'tests.yml')], { encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  const ok = run();
  t.equal(ok.status, 0, `promtool test rules: every alert fires and stays quiet as expected ${ok.status === 0 ? '' : ok.out}`);
  const tested = new Set([...readFileSync(join(ROOT, 'test/rules/alert-rules.test.yml'), 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]));
  for (const g of plain.groups) for (const r of g.rules) t.ok(tested.has(String(r.alert)), `${String(r.alert)} has a promtool test`);
  // the tests can fail: without its "for" an alert fires where the tests expect quiet
  const broken = { groups: bare.groups.map((g) => ({ ...g, rules: g.rules.map((r) => (r.alert === 'MsmlrecNoRtpOnLiveCalls' ? { ...r, for: '0m' } : r)) })) };
  writeFileSync(join(dir, 'alert-rules.yml'), stringifyYaml(broken));
  t.not(run().status, 0, 'a broken rule fails the promtool tests');
});

t.test('Dockerfile: multi-stage, production dependencies only, non-root, compiled JS, healthcheck', async (t) => {
  const df = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  t.ok((df.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
  t.match(df, /npm ci --omit=dev/, 'npm ci --omit=dev');
  t.match(df, /^USER node$/m, 'runs as the unprivileged node user');
  t.match(df, /^HEALTHCHECK .*\n?.*\/livez/m, 'healthcheck on /livez');
  t.match(df, /ENTRYPOINT \["node", "dist\/src\/cli.js"\]/, 'runs the compiled CLI');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  t.equal(pkg.bin['msml-recorder'], 'dist/src/cli.js', 'the same entry point as the package bin');
});

t.test("the README's deployment section names every manifest", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Deployment'), readme.indexOf('\n## ', readme.indexOf('## Deployment') + 5));
  t.ok(section.length > 500, 'README has a Deployment section');
  for (const f of [...files, 'grafana-dashboard.json']) t.match(section, f, `mentions ${f}`);
  for (const f of section.match(/`k8s\/[\w.-]+`/g) ?? []) t.ok(existsSync(join(ROOT, f.slice(1, -1))), `${f} exists`);
  for (const n of ['hostNetwork', 'StatefulSet', 'preStop', 'terminationGracePeriodSeconds', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'drachtio/drachtio-server', 'Redis']) t.match(section, n, `explains ${n}`);
});
