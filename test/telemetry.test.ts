import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harness, type Harness } from './support/context';
import { mintToken } from '../src/crypto/tokens';
import { TOKEN_PURPOSE } from '../src/core/keys';
import { sha256Digest } from '../src/lib/hash';

/**
 * `stella serve` as an operator runs it: every line it writes is JSON (stella, fastify access
 * logs, the Temporal SDK and its bundler); /metrics passes `promtool check metrics`; the SDK's
 * own metrics are on their Prometheus endpoint; a worker-only process answers /healthz, /readyz
 * and /metrics on its small listener.
 */
const BIN = join(__dirname, '..', 'bin', 'stella.mjs');
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const inCi = process.env.CI === 'true';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Served {
  proc: ChildProcess;
  lines: () => string[];
  exited: Promise<number | null>;
}

function serveProcess(h: Harness, args: string[], env: Record<string, string>): Served {
  const cfg = h.ctx.cfg;
  const proc = spawn(process.execPath, [BIN, 'serve', ...args], {
    env: {
      ...process.env,
      STELLA_DATA_DIR: cfg.dataDir,
      DATABASE_URL: cfg.databaseUrl,
      STELLA_TEMPORAL_ADDRESS: cfg.temporal.address,
      STELLA_TASK_QUEUE: cfg.temporal.taskQueue,
      STELLA_SCHEDULES: 'false',
      STELLA_LOG_LEVEL: 'info',
      STELLA_API_HOST: '127.0.0.1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, lines: () => out.split('\n').filter((l) => l.length > 0), exited };
}

async function waitOk(url: string, served: Served, timeoutMs = 120_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(url).catch(() => null);
    if (r?.ok) return r;
    if (Date.now() > deadline) throw new Error(`${url} never answered 200; output:\n${served.lines().slice(-20).join('\n')}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

function checkMetrics(text: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

let h: Harness;
beforeAll(async () => {
  h = await harness({ worker: false });
}, 120_000);
afterAll(async () => {
  await h?.close();
});

describe('stella serve telemetry', () => {
  it('every output line is JSON; /metrics passes promtool; SDK metrics are exported', async () => {
    const [apiPort, sdkPort] = [await freePort(), await freePort()];
    const served = serveProcess(h, [], { STELLA_API_PORT: String(apiPort), STELLA_SDK_METRICS_ADDRESS: `127.0.0.1:${sdkPort}` });
    try {
      const base = `http://127.0.0.1:${apiPort}`;
      await waitOk(`${base}/readyz`, served);
      const token = await mintToken(
        h.ctx.keys,
        { sub: 'telemetry-test', tenant: 'default', scopes: ['promotion:read', 'promotion:write'], ttlSeconds: 600 },
        { purpose: TOKEN_PURPOSE },
      );
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      // Two promotions run their workflow and activities until they wait for evidence.
      for (const env of ['prod', 'staging']) {
        const artifact = sha256Digest(`registry.example/telemetry@${randomBytes(6).toString('hex')}`);
        const start = await fetch(`${base}/promotions`, { method: 'POST', headers, body: JSON.stringify({ artifact, to: env }) });
        expect(start.status, await start.clone().text()).toBe(202);
        const { id } = (await start.json()) as { id: string };
        const deadline = Date.now() + 90_000;
        for (;;) {
          const s = (await (await fetch(`${base}/promotions/${id}`, { headers })).json()) as { state?: string };
          if (s.state === 'waiting-evidence') break;
          if (Date.now() > deadline) throw new Error(`promotion ${id} never reached waiting-evidence: ${JSON.stringify(s)}`);
          await new Promise((res) => setTimeout(res, 250));
        }
      }
      // An error answer is logged too (access log, 404).
      expect((await fetch(`${base}/no-such-route`, { headers })).status).toBe(404);

      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^stella_build_info\{version="\d+\.\d+\.\d+[^"]*",commit="[^"]+"\} 1$/m);
      expect(metrics).toMatch(/^stella_http_request_duration_seconds_bucket\{le="[^"]+",route="\/promotions",method="POST",status_class="2xx"\} [1-9]/m);
      expect(metrics).toMatch(/^stella_promotions_waiting_evidence\{tenant="default",env="prod"\} 1$/m);
      expect(metrics).not.toMatch(/^replay_/m);
      if (promtool || inCi) {
        const r = checkMetrics(metrics);
        expect(r.status, r.out).toBe(0);
      }

      const sdk = await (await waitOk(`http://127.0.0.1:${sdkPort}/metrics`, served)).text();
      expect(sdk).toMatch(/^temporal_\w+/m);
      expect(sdk).toMatch(/temporal_workflow_task_schedule_to_start_latency_seconds|temporal_request_total|temporal_worker_task_slots_available/);
    } finally {
      served.proc.kill('SIGTERM');
      expect(await served.exited).toBe(0);
    }
    const lines = served.lines();
    expect(lines.length).toBeGreaterThan(5);
    const notJson = lines.filter((l) => {
      try {
        return typeof JSON.parse(l) !== 'object';
      } catch {
        return true;
      }
    });
    expect(notJson, 'lines of stella serve output that are not JSON').toEqual([]);
    const parsed = lines.map((l) => JSON.parse(l) as { msg?: string; component?: string; route?: string; status?: number });
    expect(parsed.some((l) => l.msg === 'stella serving')).toBe(true);
    expect(parsed.some((l) => l.msg === 'request completed' && l.route === '/promotions' && l.status === 202)).toBe(true);
    expect(parsed.some((l) => l.component === 'temporal')).toBe(true);
  }, 300_000);

  it('a worker-only process answers /healthz, /readyz and /metrics (promtool-clean) on its own port', async () => {
    const port = await freePort();
    const served = serveProcess(h, ['--no-api'], { STELLA_WORKER_HTTP_PORT: String(port) });
    try {
      const base = `http://127.0.0.1:${port}`;
      const health = await waitOk(`${base}/healthz`, served);
      expect(await health.json()).toMatchObject({ status: 'ok', worker: 'RUNNING' });
      expect(await (await waitOk(`${base}/readyz`, served)).json()).toMatchObject({ status: 'ready', worker: 'RUNNING', failed: [] });
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^stella_build_info\{/m);
      expect(metrics).toMatch(/^process_cpu_seconds_total /m);
      if (promtool || inCi) {
        const r = checkMetrics(metrics);
        expect(r.status, r.out).toBe(0);
      }
      const missing = await fetch(`${base}/nothing`);
      expect(missing.status).toBe(404);
      expect(missing.headers.get('content-type')).toBe('application/problem+json');
    } finally {
      served.proc.kill('SIGTERM');
      expect(await served.exited).toBe(0);
    }
    for (const l of served.lines()) expect(() => JSON.parse(l), l).not.toThrow();
  }, 240_000);

  it('with STELLA_OTLP_ENDPOINT, API request → StartWorkflow → (workflow) StartActivity → RunActivity spans share one trace id', async () => {
    // A tiny OTLP/HTTP receiver (JSON encoding, what @opentelemetry/exporter-trace-otlp-http sends).
    type OtlpSpan = { traceId: string; spanId: string; parentSpanId?: string; name: string };
    const spans: OtlpSpan[] = [];
    const paths: string[] = [];
    const receiver = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
        const doc = JSON.parse(body) as { resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[] };
        for (const rs of doc.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const otlp = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    const apiPort = await freePort();
    const served = serveProcess(h, [], { STELLA_API_PORT: String(apiPort), STELLA_OTLP_ENDPOINT: otlp });
    let id = '';
    try {
      const base = `http://127.0.0.1:${apiPort}`;
      await waitOk(`${base}/readyz`, served, 180_000);
      const token = await mintToken(
        h.ctx.keys,
        { sub: 'otel-test', tenant: 'default', scopes: ['promotion:read', 'promotion:write'], ttlSeconds: 600 },
        { purpose: TOKEN_PURPOSE },
      );
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const artifact = sha256Digest(`registry.example/otel@${randomBytes(6).toString('hex')}`);
      const start = await fetch(`${base}/promotions`, { method: 'POST', headers, body: JSON.stringify({ artifact, to: 'prod' }) });
      expect(start.status, await start.clone().text()).toBe(202);
      id = ((await start.json()) as { id: string }).id;
      const deadline = Date.now() + 90_000;
      for (;;) {
        const s = (await (await fetch(`${base}/promotions/${id}`, { headers })).json()) as { state?: string };
        if (s.state === 'waiting-evidence') break;
        if (Date.now() > deadline) throw new Error(`promotion ${id} never reached waiting-evidence: ${JSON.stringify(s)}`);
        await new Promise((res) => setTimeout(res, 250));
      }
    } finally {
      served.proc.kill('SIGTERM'); // flushes the spans not yet exported
      expect(await served.exited).toBe(0);
      receiver.close();
    }
    if (id)
      await h.client.workflow
        .getHandle(id)
        .terminate('test done')
        .catch(() => {});
    expect(
      paths.every((p) => p.startsWith('POST /v1/traces application/json')),
      paths.join('\n'),
    ).toBe(true);
    const api = spans.find((s) => s.name === 'POST /promotions');
    expect(api, spans.map((s) => s.name).join(', ')).toBeDefined();
    const inTrace = spans.filter((s) => s.traceId === api!.traceId).map((s) => s.name);
    expect(inTrace, inTrace.join(', ')).toEqual(
      // StartActivity spans are the workflow's own (exported through the sink); RunWorkflow ends only when the promotion does.
      expect.arrayContaining([
        expect.stringMatching(/^StartWorkflow:promotion/),
        expect.stringMatching(/^StartActivity:/),
        expect.stringMatching(/^RunActivity:/),
      ]),
    );
    const startWf = spans.find((s) => s.traceId === api!.traceId && s.name.startsWith('StartWorkflow:'))!;
    expect(startWf.parentSpanId).toBe(api!.spanId);
  }, 300_000);
});
