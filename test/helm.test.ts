import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { settingNames } from '../src/config';
import { freshDatabase } from './support/context';
import { runStella } from './support/cli';

// deploy/helm/stella, checked without a cluster: `helm lint --strict` and `helm template` with the
// chart's ci/ values, then the rendered manifests: probes and resources on every workload, every
// Secret reference resolvable, the PrometheusRule equal to ops/prometheus, env names that stella
// reads, and the migration Job's command run for real against PostgreSQL.
const root = new URL('..', import.meta.url).pathname;
const CHART = `${root}deploy/helm/stella`;
// .ci/run installs helm with `go install` (into $(go env GOPATH)/bin, ~/go/bin by default).
const env = { ...process.env, PATH: [process.env.PATH, join(homedir(), 'go', 'bin')].join(delimiter) };
const HELM = process.env.HELM_BIN ?? 'helm';

type K8s = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  stringData?: Record<string, string>;
};

function helm(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(HELM, args, { env, encoding: 'utf8' });
  if (r.error) throw new Error(`helm not runnable (${r.error.message}); .ci/run installs it: go install helm.sh/helm/v4/cmd/helm@v4.3.2`);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function render(...args: string[]): K8s[] {
  const r = helm('template', 'rel', CHART, '--namespace', 'stella', ...args);
  expect(r.code, r.stderr).toBe(0);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8s | null)
    .filter((d): d is K8s => !!d);
}

const full = render('-f', `${CHART}/ci/full-values.yaml`);
const minimal = render('-f', `${CHART}/ci/minimal-values.yaml`);
const fullValues = parse(readFileSync(`${CHART}/ci/full-values.yaml`, 'utf8'));
const minimalValues = parse(readFileSync(`${CHART}/ci/minimal-values.yaml`, 'utf8'));
const byKind = (docs: K8s[], kind: string) => docs.filter((d) => d.kind === kind);
const one = (docs: K8s[], kind: string, name: string) => {
  const d = docs.find((x) => x.kind === kind && x.metadata.name === name);
  expect(d, `${kind}/${name}`).toBeDefined();
  return d!;
};
const podSpecs = (docs: K8s[]) =>
  docs.filter((d) => d.kind === 'Deployment' || d.kind === 'Job').map((d) => [`${d.kind}/${d.metadata.name}`, d.spec.template.spec] as const);

// Settings stella reads: config.ts's schema keys, and TEMPORAL_* connection variables, which
// src/config.ts hands to @temporalio/envconfig (the names that library reads).
const configSrc = readFileSync(`${root}src/config.ts`, 'utf8');
const settings = new Set(settingNames());
// Read by Node itself: libuv's thread pool size (file and crypto work).
const RUNTIME_ENV = new Set(['UV_THREADPOOL_SIZE']);
const ENVCONFIG = `${root}node_modules/@temporalio/envconfig/lib`;
const envconfigNames = configSrc.includes("from '@temporalio/envconfig'")
  ? new Set(
      readdirSync(ENVCONFIG)
        .filter((f) => f.endsWith('.js'))
        .flatMap((f) => [...readFileSync(join(ENVCONFIG, f), 'utf8').matchAll(/'(TEMPORAL_[A-Z_]+)'/g)].map((m) => m[1]!)),
    )
  : new Set<string>();

describe('Helm chart deploy/helm/stella', () => {
  it('passes helm lint --strict with each ci/ values file', () => {
    for (const f of readdirSync(`${CHART}/ci`)) {
      const r = helm('lint', '--strict', CHART, '-f', `${CHART}/ci/${f}`);
      expect(r.code, `${f}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('0 chart(s) failed');
    }
  });

  it('renders manifests that decode strictly into the Kubernetes API types (k8scheck: unknown fields and wrong types fail)', () => {
    for (const values of ['full', 'minimal']) {
      const yamlText = helm('template', 'rel', CHART, '--namespace', 'stella', '-f', `${CHART}/ci/${values}-values.yaml`).stdout;
      // deploy/helm/k8scheck: k8s.io/api types with sigs.k8s.io/yaml strict decoding, offline (Go module cache / proxy).
      const r = spawnSync('go', ['run', '.'], { cwd: `${root}deploy/helm/k8scheck`, input: yamlText, env, encoding: 'utf8', timeout: 600_000 });
      expect(r.status, `${values}: ${r.stdout}${r.stderr}`).toBe(0);
      const docs = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; name: string; checked: boolean; error?: string });
      expect(docs.filter((d) => d.error)).toEqual([]);
      // Only the Prometheus Operator's kinds have no built-in type.
      expect(docs.filter((d) => !d.checked).map((d) => d.kind)).toEqual(values === 'full' ? ['PrometheusRule', 'ServiceMonitor'] : []);
      expect(docs.filter((d) => d.checked).length).toBeGreaterThanOrEqual(values === 'full' ? 13 : 8);
    }
    // The checker is strict: a misspelt field is refused.
    const bad = spawnSync('go', ['run', '.'], {
      cwd: `${root}deploy/helm/k8scheck`,
      input: 'apiVersion: v1\nkind: Service\nmetadata: { name: x }\nspec: { prots: [] }\n',
      env,
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('unknown field \\"prots\\"');
  }, 900_000);

  it('renders separate, scalable API and worker Deployments, their Services, a migration Job and no volume claim', () => {
    const names = (docs: K8s[]) => byKind(docs, 'Deployment').map((d) => d.metadata.name);
    expect(names(full).sort()).toEqual(['rel-stella-api', 'rel-stella-heavy-worker', 'rel-stella-worker']);
    expect(names(minimal).sort()).toEqual(['rel-stella-api', 'rel-stella-worker']);
    expect(one(full, 'Deployment', 'rel-stella-api').spec.replicas).toBe(fullValues.api.replicas);
    expect(one(full, 'Deployment', 'rel-stella-worker').spec.replicas).toBe(fullValues.worker.replicas);
    expect(one(full, 'Deployment', 'rel-stella-heavy-worker').spec.replicas).toBe(fullValues.heavyWorker.replicas);
    // Task queues: with a heavy worker, the worker polls control and the heavy worker heavy (and ensures no schedules).
    const envValue = (docs: K8s[], name: string, v: string) =>
      one(docs, 'Deployment', name).spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === v)?.value;
    expect(envValue(full, 'rel-stella-worker', 'STELLA_WORKER_QUEUES')).toBe('control');
    expect(envValue(full, 'rel-stella-heavy-worker', 'STELLA_WORKER_QUEUES')).toBe('heavy');
    expect(envValue(full, 'rel-stella-heavy-worker', 'STELLA_SCHEDULES')).toBe('false');
    expect(envValue(minimal, 'rel-stella-worker', 'STELLA_WORKER_QUEUES')).toBe('control,heavy');
    expect(envValue(minimal, 'rel-stella-worker', 'STELLA_SCHEDULES')).toBe('true');
    const api = one(full, 'Deployment', 'rel-stella-api').spec.template.spec.containers[0];
    const worker = one(full, 'Deployment', 'rel-stella-worker').spec.template.spec.containers[0];
    expect(api.args).toEqual(['serve', '--no-worker']);
    // Workers run no API: the worker-only listener answers probes and /metrics.
    expect(worker.args).toEqual(['serve', '--no-api']);
    expect(api.image).toBe('registry.example.com/stella:0.1.0');
    // Each Service selects exactly its Deployment's pods.
    for (const c of ['api', 'worker', 'heavy-worker']) {
      const svc = one(full, 'Service', `rel-stella-${c}`);
      const pods = one(full, 'Deployment', `rel-stella-${c}`).spec.template.metadata.labels;
      for (const [k, v] of Object.entries(svc.spec.selector)) expect(pods[k], `${c}: ${k}`).toBe(v);
      expect(svc.spec.selector['app.kubernetes.io/component']).toBe(c);
    }
    for (const docs of [full, minimal]) {
      expect(byKind(docs, 'PersistentVolumeClaim')).toEqual([]);
      for (const [name, spec] of podSpecs(docs)) for (const v of spec.volumes ?? []) expect(v.persistentVolumeClaim, `${name}: ${v.name}`).toBeUndefined();
    }
  });

  it('gives every container probes on /healthz and /readyz at a declared port, resources, and a non-root, read-only root filesystem', () => {
    for (const docs of [full, minimal]) {
      for (const d of byKind(docs, 'Deployment')) {
        const spec = d.spec.template.spec;
        expect(spec.securityContext.runAsNonRoot, d.metadata.name).toBe(true);
        for (const c of spec.containers) {
          const where = `${d.metadata.name}/${c.name}`;
          const ports = new Set(c.ports.map((p: { name: string }) => p.name));
          expect(c.livenessProbe.httpGet.path, where).toBe('/healthz');
          expect(c.readinessProbe.httpGet.path, where).toBe('/readyz');
          expect(c.startupProbe.httpGet.path, where).toBe('/healthz');
          for (const p of [c.livenessProbe, c.readinessProbe, c.startupProbe])
            expect(ports.has(p.httpGet.port), `${where}: probe port ${p.httpGet.port}`).toBe(true);
          // The port the probes ask is the one stella listens on, on all interfaces.
          const envOf = Object.fromEntries(
            c.env.filter((e: { value?: string }) => e.value !== undefined).map((e: { name: string; value: string }) => [e.name, e.value]),
          );
          expect(envOf.STELLA_API_HOST, where).toBe('0.0.0.0');
          const portVar = c.args.includes('--no-api') ? 'STELLA_WORKER_HTTP_PORT' : 'STELLA_API_PORT';
          expect(Number(envOf[portVar]), where).toBe(c.ports.find((p: { name: string }) => p.name === 'http').containerPort);
          // Workers export the Temporal SDK's metrics on the port the ServiceMonitor scrapes.
          if (portVar === 'STELLA_WORKER_HTTP_PORT') {
            const sdk = c.ports.find((p: { name: string }) => p.name === 'sdk-metrics').containerPort;
            expect(envOf.STELLA_SDK_METRICS_ADDRESS, where).toBe(`0.0.0.0:${sdk}`);
          }
        }
      }
      for (const [name, spec] of podSpecs(docs)) {
        for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
          expect(c.resources?.requests?.cpu, `${name}/${c.name}`).toBeTruthy();
          expect(c.resources?.requests?.memory, `${name}/${c.name}`).toBeTruthy();
          expect(c.resources?.limits?.memory, `${name}/${c.name}`).toBeTruthy();
          expect(c.securityContext.readOnlyRootFilesystem, `${name}/${c.name}`).toBe(true);
          expect(c.securityContext.allowPrivilegeEscalation, `${name}/${c.name}`).toBe(false);
        }
      }
    }
  });

  it('resolves every Secret reference to a rendered Secret key or to an existing Secret named in values', () => {
    const cases: [K8s[], string[]][] = [
      [
        full,
        [fullValues.keys.existingSecret, fullValues.temporal.tls.existingSecret, fullValues.temporal.apiKey.existingSecret, fullValues.registry.authSecret],
      ],
      [minimal, [minimalValues.keys.existingSecret, minimalValues.postgres.existingSecret]],
    ];
    for (const [docs, existing] of cases) {
      const rendered = new Map(byKind(docs, 'Secret').map((s) => [s.metadata.name, new Set(Object.keys(s.stringData ?? {}))]));
      let refs = 0;
      for (const [name, spec] of podSpecs(docs)) {
        for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
          for (const e of c.env ?? []) {
            const ref = e.valueFrom?.secretKeyRef;
            if (!ref) continue;
            refs++;
            if (rendered.has(ref.name)) expect(rendered.get(ref.name)!.has(ref.key), `${name}: ${e.name} -> ${ref.name}/${ref.key}`).toBe(true);
            else expect(existing, `${name}: ${e.name} -> ${ref.name}`).toContain(ref.name);
          }
        }
        for (const v of spec.volumes ?? []) {
          if (!v.secret) continue;
          refs++;
          if (!rendered.has(v.secret.secretName)) expect(existing, `${name}: volume ${v.name}`).toContain(v.secret.secretName);
        }
      }
      expect(refs).toBeGreaterThan(4);
    }
    // Chart-made Secrets hold the values given, under the keys the pods read.
    expect(one(full, 'Secret', 'rel-stella-postgres').stringData!['database-url']).toBe(fullValues.postgres.url);
    expect(one(full, 'Secret', 'rel-stella-s3').stringData!['secret-access-key']).toBe(fullValues.s3.secretAccessKey);
    expect(byKind(minimal, 'Secret')).toEqual([]);
  });

  it('copies the keys Secret into the key store every pod reads (no shared volume)', () => {
    for (const d of byKind(full, 'Deployment')) {
      const spec = d.spec.template.spec;
      const init = spec.initContainers.find((c: { name: string }) => c.name === 'keys');
      const keysDir = spec.containers[0].env.find((e: { name: string }) => e.name === 'STELLA_KEYS_DIR').value;
      // KeyStore layout: <STELLA_KEYS_DIR>/keys/<kid>.json, mode 0600.
      expect(init.command.join(' '), d.metadata.name).toContain(`cp /keys-secret/*.json ${keysDir}/keys/`);
      expect(init.command.join(' ')).toContain(`chmod 600 ${keysDir}/keys/*.json`);
      const dataMount = spec.containers[0].volumeMounts.find((m: { mountPath: string }) => keysDir.startsWith(m.mountPath));
      expect(init.volumeMounts.map((m: { name: string }) => m.name)).toContain(dataMount.name);
      expect(spec.volumes.find((v: { name: string }) => v.name === dataMount.name).emptyDir).toEqual({});
    }
  });

  it('connects to an external Temporal with TLS, a client certificate and an API key from Secrets', () => {
    const c = one(full, 'Deployment', 'rel-stella-worker').spec.template.spec.containers[0];
    const envOf = (n: string) => c.env.find((e: { name: string }) => e.name === n);
    expect(envOf('STELLA_TEMPORAL_ADDRESS').value).toBe(fullValues.temporal.address);
    expect(envOf('STELLA_TEMPORAL_NAMESPACE').value).toBe(fullValues.temporal.namespace);
    expect(envOf('TEMPORAL_TLS').value).toBe('true');
    expect(envOf('TEMPORAL_API_KEY').valueFrom.secretKeyRef).toEqual({ name: 'temporal-api-key', key: 'api-key' });
    const mount = c.volumeMounts.find((m: { name: string }) => m.name === 'temporal-tls');
    for (const n of ['TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH']) {
      expect(envOf(n).value.startsWith(`${mount.mountPath}/`), n).toBe(true);
    }
    // Without TLS values, no TLS settings and no certificate volume.
    const plain = one(minimal, 'Deployment', 'rel-stella-worker').spec.template.spec.containers[0];
    expect(plain.env.map((e: { name: string }) => e.name).filter((n: string) => n.startsWith('TEMPORAL_'))).toEqual([]);
  });

  it('pulls from registries with a dockerconfigjson Secret as the auth file, plain HTTP only for listed hosts, and a bounded layer cache', () => {
    for (const name of ['rel-stella-worker', 'rel-stella-heavy-worker', 'rel-stella-api']) {
      const spec = one(full, 'Deployment', name).spec.template.spec;
      const c = spec.containers[0];
      const envOf = (n: string) => c.env.find((e: { name: string }) => e.name === n)?.value;
      const mount = c.volumeMounts.find((m: { name: string }) => m.name === 'registry-auth');
      expect(envOf('STELLA_REGISTRY_AUTH_FILE')).toBe(`${mount.mountPath}/config.json`);
      const vol = spec.volumes.find((v: { name: string }) => v.name === 'registry-auth');
      expect(vol.secret).toMatchObject({ secretName: 'registry-credentials', items: [{ key: '.dockerconfigjson', path: 'config.json' }] });
      expect(envOf('STELLA_INSECURE_REGISTRIES')).toBe('registry.internal:5000');
      expect(envOf('STELLA_LAYER_CACHE_DIR')?.startsWith('/var/lib/stella/')).toBe(true);
      expect(Number(envOf('STELLA_LAYER_CACHE_MAX_BYTES'))).toBeGreaterThan(0);
    }
    // Without registry values: anonymous pulls, https only.
    const plain = one(minimal, 'Deployment', 'rel-stella-worker').spec.template.spec;
    const names = plain.containers[0].env.map((e: { name: string }) => e.name);
    expect(names).not.toContain('STELLA_REGISTRY_AUTH_FILE');
    expect(names).not.toContain('STELLA_INSECURE_REGISTRIES');
    expect(plain.volumes.map((v: { name: string }) => v.name)).not.toContain('registry-auth');
  });

  it('sets only environment variables stella reads', () => {
    for (const [name, spec] of podSpecs(full)) {
      for (const c of spec.containers) {
        for (const e of c.env) {
          const known = settings.has(e.name) || envconfigNames.has(e.name) || RUNTIME_ENV.has(e.name);
          expect(known, `${name}/${c.name}: ${e.name} is not read by stella`).toBe(true);
        }
      }
    }
  });

  it('ships the rules of ops/prometheus unchanged as the PrometheusRule, and a ServiceMonitor for API and workers', () => {
    const files = readdirSync(`${root}ops/prometheus`)
      .filter((f) => f.endsWith('.yml'))
      .sort();
    const groups = files.flatMap((f) => parse(readFileSync(`${root}ops/prometheus/${f}`, 'utf8')).groups);
    expect(groups.length).toBeGreaterThanOrEqual(5);
    const rule = one(full, 'PrometheusRule', 'rel-stella');
    expect(rule.spec.groups).toEqual(groups);
    expect(rule.metadata.labels!.release).toBe('prometheus');
    const sm = one(full, 'ServiceMonitor', 'rel-stella');
    expect(sm.spec.endpoints).toEqual([
      expect.objectContaining({ port: 'http', path: '/metrics' }),
      expect.objectContaining({ port: 'sdk-metrics', path: '/metrics' }),
    ]);
    for (const c of ['worker', 'heavy-worker'])
      expect(one(full, 'Service', `rel-stella-${c}`).spec.ports.map((p: { name: string }) => p.name)).toContain('sdk-metrics');
    for (const c of ['api', 'worker', 'heavy-worker']) {
      const svc = one(full, 'Service', `rel-stella-${c}`);
      for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(svc.metadata.labels![k]).toBe(v);
      expect(sm.spec.selector.matchExpressions[0].values).toContain(svc.metadata.labels!['app.kubernetes.io/component']);
      expect(svc.spec.ports.map((p: { name: string }) => p.name)).toContain('http');
    }
    expect(byKind(minimal, 'PrometheusRule')).toEqual([]);
    expect(byKind(minimal, 'ServiceMonitor')).toEqual([]);
  });

  it('refuses to render without the PostgreSQL or keys Secret, naming the value to set', () => {
    const noKeys = helm('template', 'rel', CHART, '--set', 'postgres.existingSecret=pg');
    expect(noKeys.code).not.toBe(0);
    expect(noKeys.stderr).toContain('keys.existingSecret is required');
    const noDb = helm('template', 'rel', CHART, '--set', 'keys.existingSecret=k');
    expect(noDb.code).not.toBe(0);
    expect(noDb.stderr).toContain('postgres.existingSecret');
  });

  it('runs `stella migrate` in a pre-install/pre-upgrade hook Job, and that command migrates a database', async () => {
    const job = one(full, 'Job', 'rel-stella-migrate');
    expect(job.metadata.annotations!['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    const c = job.spec.template.spec.containers[0];
    expect(c.args).toEqual(['migrate']);
    expect(c.env.find((e: { name: string }) => e.name === 'DATABASE_URL').valueFrom.secretKeyRef.name).toBe('rel-stella-postgres');

    const url = await freshDatabase();
    const dataDir = mkdtempSync(join(tmpdir(), 'migrate-'));
    const first = await runStella({ DATABASE_URL: url, STELLA_DATA_DIR: dataDir }, '--format', 'json', 'migrate');
    expect(first.code, first.stderr).toBe(0);
    const r1 = JSON.parse(first.stdout);
    expect(r1.applied.length).toBeGreaterThan(10);
    const db = new pg.Client(url);
    await db.connect();
    const { rows } = await db.query('SELECT max(version)::int AS v, count(*)::int AS n FROM schema_migrations');
    await db.end();
    expect(rows[0]).toEqual({ v: r1.version, n: r1.applied.length });
    // Again: nothing to do.
    const again = await runStella({ DATABASE_URL: url, STELLA_DATA_DIR: dataDir }, '--format', 'json', 'migrate');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ applied: [], version: r1.version });
    // No database: a one-line reason and a usage exit.
    const none = await runStella({ DATABASE_URL: '', STELLA_DATA_DIR: dataDir }, 'migrate');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('DATABASE_URL is not set');
  });

  it('gets its keys Secret from `stella keys init`: every key a server signs with, as the <kid>.json files the pods copy', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'stella-keys-')), 'store');
    const env = { STELLA_DATA_DIR: mkdtempSync(join(tmpdir(), 'boot-')), DATABASE_URL: '' };
    const r = await runStella(env, '--format', 'json', 'keys', 'init', dir);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.secretFiles).toBe(`${dir}/keys`);
    // kubectl create secret generic stella-keys --from-file=<dir>/keys/  → these files, by name.
    const files = readdirSync(join(dir, 'keys')).filter((f) => f.endsWith('.json'));
    for (const f of files) expect(f).toMatch(/^[A-Za-z0-9_-]{43}\.json$/);
    const stored = files.map((f) => JSON.parse(readFileSync(join(dir, 'keys', f), 'utf8')));
    expect(stored.map((k) => `${k.purpose}:${k.alg}:${k.status}`).sort()).toEqual([
      'api-token:ES256:active',
      'checkpoint:EdDSA:active',
      'signing:ES256:active',
    ]);
    expect(out.keys.every((k: { created: boolean }) => k.created)).toBe(true);
    // Again: the same keys, none new.
    const again = await runStella(env, '--format', 'json', 'keys', 'init', dir);
    expect(again.code, again.stderr).toBe(0);
    expect(
      JSON.parse(again.stdout)
        .keys.map((k: { kid: string; created: boolean }) => [k.kid, k.created])
        .sort(),
    ).toEqual(stored.map((k) => [k.kid, false]).sort());
  });
});
