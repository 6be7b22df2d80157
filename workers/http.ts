/**
 * The worker-only process's small HTTP listener (`stella serve --no-api`): /healthz (the worker
 * is polling), /readyz (and PostgreSQL, the blob store and Temporal answer, as the API's /readyz) and /metrics (stella's process metrics:
 * stella_build_info and the Node.js runtime). node:http only: the worker path loads no HTTP
 * framework. The Temporal SDK's own metrics are on STELLA_SDK_METRICS_ADDRESS (workers/runtime.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface WorkerHttp {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startWorkerHttp(opts: {
  host: string;
  port: number;
  registry: Registry;
  /** The API's readiness checks (src/core/evidence/locker/health.ts), passed in: the edge runs no SQL. */
  readiness: () => Promise<{ failed: string[]; checks: unknown[] }>;
  /** The worker's state (RUNNING while it polls). */
  state: () => string;
}): Promise<WorkerHttp> {
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    void (async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return json(res, 405, {
          type: 'urn:stella:problem:method-not-allowed',
          title: 'Method Not Allowed',
          status: 405,
          detail: `${req.method} is not allowed`,
          instance: path,
          code: 'METHOD_NOT_ALLOWED',
        });
      }
      if (path === '/healthz') {
        const state = opts.state();
        return json(res, state === 'RUNNING' ? 200 : 503, { status: state === 'RUNNING' ? 'ok' : 'down', worker: state });
      }
      if (path === '/readyz') {
        const state = opts.state();
        const r = await opts.readiness();
        const failed = [...r.failed, ...(state === 'RUNNING' ? [] : ['worker'])];
        return json(res, failed.length ? 503 : 200, { status: failed.length ? 'unready' : 'ready', worker: state, failed, checks: r.checks });
      }
      if (path === '/metrics') {
        const text = await opts.registry.metrics();
        res.writeHead(200, { 'content-type': opts.registry.contentType });
        return res.end(text);
      }
      return json(res, 404, {
        type: 'urn:stella:problem:not-found',
        title: 'Not Found',
        status: 404,
        detail: `no route ${req.method} ${path}`,
        instance: path,
        code: 'NOT_FOUND',
      });
    })().catch((e: Error) =>
      json(res, 500, { type: 'urn:stella:problem:internal', title: 'Internal Server Error', status: 500, detail: e.message, instance: path, code: 'INTERNAL' }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
