import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { settingNames } from '../src/config';

// docker-compose.yml, checked without Docker: pinned maintained images, a depends_on graph that
// names real services, health checks on stella's services, and stella env names that are settings.
const root = new URL('..', import.meta.url).pathname;
type Service = {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, unknown>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  volumes?: string[];
  restart?: string;
};
const compose = parse(readFileSync(`${root}docker-compose.yml`, 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = Object.entries(compose.services);
const stella = services.filter(([name]) => name.startsWith('stella-'));

// The keys of config.ts's zod schema: every setting stella reads from the environment.
const settings = new Set(settingNames());

describe('docker-compose.yml', () => {
  it('has the services of the stack', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [
        'grafana',
        'postgres',
        'prometheus',
        'registry',
        's3',
        's3-bucket',
        'stella-api',
        'stella-worker',
        'temporal',
        'temporal-namespace',
        'temporal-schema',
        'temporal-ui',
      ].sort(),
    );
  });

  it('is valid against the Compose Specification JSON schema (vendored, ops/compose/schema)', () => {
    const schema = JSON.parse(readFileSync(`${root}ops/compose/schema/compose-spec.json`, 'utf8'));
    // The schema names draft-07 by an https URL ajv does not know; it is draft-07 (ajv's default).
    delete schema.$schema;
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(schema);
    // Validated as written (anchors resolved, merge keys kept as the YAML parser expands them).
    const doc = parse(readFileSync(`${root}docker-compose.yml`, 'utf8'), { merge: true });
    expect(validate(doc), JSON.stringify(validate.errors, null, 2)).toBe(true);
    // The validator is live: a misspelt service key is refused.
    expect(validate({ services: { x: { image: 'a:1', helthcheck: {} } } })).toBe(false);
  });

  it('pins every image to an explicit version tag (or builds it), none of them retired', () => {
    for (const [name, s] of services) {
      if (s.build !== undefined && s.image === undefined) continue;
      expect(s.image, name).toBeTypeOf('string');
      const m = /^([a-z0-9][a-z0-9._/-]*):([A-Za-z0-9_][A-Za-z0-9_.-]*)(@sha256:[0-9a-f]{64})?$/.exec(s.image!);
      expect(m, `${name}: ${s.image} has no explicit tag`).not.toBeNull();
      expect(m![2], name).not.toBe('latest');
      expect(m![2], `${name}: ${s.image} is not a version`).toMatch(/\d/);
      expect(s.image!, name).not.toMatch(/minio|auto-setup/);
    }
  });

  it('runs Temporal from temporalio/server with the schema set up by a temporalio/admin-tools one-shot of the same version', () => {
    const server = compose.services.temporal!.image!;
    const schema = compose.services['temporal-schema']!;
    expect(server).toMatch(/^temporalio\/server:/);
    expect(schema.image).toBe(server.replace('temporalio/server', 'temporalio/admin-tools'));
    expect(compose.services.temporal!.depends_on!['temporal-schema']!.condition).toBe('service_completed_successfully');
    const script = readFileSync(`${root}ops/compose/temporal-schema.sh`, 'utf8');
    for (const step of ['create', 'setup-schema -v 0.0', 'update-schema -d "$SCHEMA/$dir/versioned"']) expect(script).toContain(step);
    expect(script).toMatch(/:-temporal\}:temporal"/);
    expect(script).toMatch(/:-temporal_visibility\}:visibility"/);
  });

  it('serves S3 with the moto release the tests use', () => {
    const ci = readFileSync(`${root}.ci/run`, 'utf8');
    const tested = /moto\[server\]==(\d+\.\d+\.\d+)/.exec(ci)![1];
    expect(compose.services.s3!.image).toBe(`motoserver/moto:${tested}`);
    expect(compose.services['stella-api']!.environment!.STELLA_S3_ENDPOINT).toBe('http://s3:5000');
  });

  it('has every depends_on name an existing service, with a condition, and no cycle', () => {
    const conditions = new Set(['service_started', 'service_healthy', 'service_completed_successfully']);
    for (const [name, s] of services) {
      for (const [dep, c] of Object.entries(s.depends_on ?? {})) {
        expect(compose.services[dep], `${name} depends on unknown ${dep}`).toBeDefined();
        expect(conditions.has(c.condition), `${name} -> ${dep}: ${c.condition}`).toBe(true);
        if (c.condition === 'service_healthy') expect(compose.services[dep]!.healthcheck, `${dep} has no healthcheck`).toBeDefined();
        if (c.condition === 'service_completed_successfully') expect(compose.services[dep]!.restart ?? 'no', `${dep} is one-shot`).not.toBe('unless-stopped');
      }
    }
    const seen = new Set<string>();
    const visit = (n: string, path: string[]): void => {
      expect(path, `cycle ${[...path, n].join(' -> ')}`).not.toContain(n);
      if (seen.has(n)) return;
      for (const d of Object.keys(compose.services[n]!.depends_on ?? {})) visit(d, [...path, n]);
      seen.add(n);
    };
    for (const [name] of services) visit(name, []);
  });

  it('builds stella from the Dockerfile, health-checks /readyz and waits for its dependencies to be ready', () => {
    expect(stella.map(([n]) => n).sort()).toEqual(['stella-api', 'stella-worker']);
    for (const [name, s] of stella) {
      expect(s.build, name).toBe('.');
      expect(s.command![0], name).toBe('serve');
      // The API answers /readyz on STELLA_API_PORT; a worker-only process (--no-api) on STELLA_WORKER_HTTP_PORT.
      const port = s.command!.includes('--no-api') ? s.environment!.STELLA_WORKER_HTTP_PORT : s.environment!.STELLA_API_PORT;
      expect(s.healthcheck!.test.join(' '), name).toContain(`127.0.0.1:${port}/readyz`);
      expect(s.depends_on, name).toEqual({
        postgres: { condition: 'service_healthy' },
        temporal: { condition: 'service_healthy' },
        'temporal-namespace': { condition: 'service_completed_successfully' },
        's3-bucket': { condition: 'service_completed_successfully' },
      });
    }
  });

  it('gives stella only env names that are settings in src/config.ts', () => {
    expect(settings.size).toBeGreaterThan(30);
    expect(settings.has('DATABASE_URL')).toBe(true);
    for (const [name, s] of stella) {
      const env = Object.keys(s.environment ?? {});
      expect(env.length, name).toBeGreaterThan(5);
      for (const k of env) expect(settings.has(k), `${name}: ${k} is not a stella setting`).toBe(true);
    }
    // The bucket the one-shot creates is the one stella uses.
    const bucket = String(compose.services['stella-worker']!.environment!.STELLA_S3_BUCKET);
    expect(JSON.stringify(compose.services['s3-bucket'])).toContain(`--bucket ${bucket}`);
  });

  it('publishes Temporal, its UI, Prometheus, Grafana and the registry on loopback only, and mounts only files that exist', () => {
    for (const name of ['temporal', 'temporal-ui', 'prometheus', 'grafana', 'registry']) {
      for (const p of compose.services[name]!.ports ?? []) expect(p, name).toMatch(/^127\.0\.0\.1:/);
    }
    for (const name of ['postgres', 's3', 's3-bucket', 'temporal-schema', 'temporal-namespace']) expect(compose.services[name]!.ports, name).toBeUndefined();
    for (const [name, s] of services) {
      for (const v of s.volumes ?? []) {
        const src = v.split(':')[0]!;
        if (src.startsWith('./ops/')) expect(existsSync(`${root}${src.slice(2)}`), `${name}: ${src}`).toBe(true);
      }
    }
  });

  it('keeps the Temporal UI read-only', () => {
    const env = compose.services['temporal-ui']!.environment!;
    expect(env.TEMPORAL_DISABLE_WRITE_ACTIONS).toBe('true');
    expect(env.TEMPORAL_AUTH_TYPE).toBe('oidc');
  });

  it("loads stella's alert rules into Prometheus and scrapes the API and every worker replica", () => {
    const prom = compose.services.prometheus!;
    expect(prom.volumes).toContain('./ops/prometheus:/etc/prometheus/rules:ro');
    const cfg = parse(readFileSync(`${root}ops/compose/prometheus.yml`, 'utf8'));
    expect(cfg.rule_files).toEqual(['/etc/prometheus/rules/*.yml']);
    const jobs = Object.fromEntries(cfg.scrape_configs.map((j: { job_name: string }) => [j.job_name, j]));
    expect(jobs['stella-api'].static_configs[0].targets).toEqual(['stella-api:8787']);
    expect(compose.services['stella-worker']!.command).toEqual(['serve', '--no-api']);
    const worker = compose.services['stella-worker']!.environment!;
    expect(jobs['stella-worker'].dns_sd_configs[0]).toEqual({ names: ['stella-worker'], type: 'A', port: Number(worker.STELLA_WORKER_HTTP_PORT) });
    expect(jobs['stella-worker-sdk'].dns_sd_configs[0]).toEqual({
      names: ['stella-worker'],
      type: 'A',
      port: Number(String(worker.STELLA_SDK_METRICS_ADDRESS).split(':')[1]),
    });
    // Every scraped listener binds where it is scraped (not on its own loopback).
    expect(String(worker.STELLA_SDK_METRICS_ADDRESS)).toMatch(/^0\.0\.0\.0:\d+$/);
    for (const name of ['stella-api', 'stella-worker']) expect(compose.services[name]!.environment!.STELLA_API_HOST, name).toBe('0.0.0.0');
    expect(compose.services['stella-api']!.environment!.STELLA_API_PORT).toBe('8787');
    // promtool checks the config together with the rule files it names (the repository's copies).
    const dir = mkdtempSync(join(tmpdir(), 'compose-prom-'));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      readFileSync(`${root}ops/compose/prometheus.yml`, 'utf8').replace('/etc/prometheus/rules/', `${root}ops/prometheus/`),
    );
    const out = execFileSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
    expect(out).not.toMatch(/SUCCESS: 0 rules found/);
  });

  it('provisions Grafana with the Prometheus datasource and every dashboard in ops/grafana/dashboards', () => {
    const g = compose.services.grafana!;
    expect(g.volumes).toEqual(
      expect.arrayContaining(['./ops/grafana/provisioning:/etc/grafana/provisioning:ro', './ops/grafana/dashboards:/var/lib/grafana/dashboards/stella:ro']),
    );
    expect(g.depends_on).toEqual({ prometheus: { condition: 'service_healthy' } });
    expect(String(g.environment!.GF_SECURITY_ADMIN_PASSWORD)).toMatch(/^\$\{GRAFANA_ADMIN_PASSWORD/);
    const ds = parse(readFileSync(`${root}ops/grafana/provisioning/datasources/prometheus.yml`, 'utf8'));
    expect(ds.datasources).toEqual([expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true })]);
    const prov = parse(readFileSync(`${root}ops/grafana/provisioning/dashboards/stella.yml`, 'utf8'));
    expect(prov.providers[0].options.path).toBe('/var/lib/grafana/dashboards/stella');
  });

  it('runs an OCI registry for the images to scan, on loopback', () => {
    const r = compose.services.registry!;
    expect(r.image).toMatch(/^registry:\d+\.\d+\.\d+$/);
    expect(r.ports).toEqual(['127.0.0.1:5000:5000']);
    expect(r.healthcheck!.test.join(' ')).toContain('/v2/');
  });
});
