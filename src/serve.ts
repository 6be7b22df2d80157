import type { FastifyInstance } from 'fastify';
import { Client } from '@temporalio/client';
import type { StellaConfig } from './config';
import { createAppContext, closeAppContext, type AppContext } from './core/context';
import { cachedTokenJwks } from './core/keys';
import { connectTemporal, describeTemporalTarget, ensureSearchAttributesBestEffort, type TemporalHandles } from './temporal/client';
import { ensureSchedules } from './temporal/schedules';
import { FEATURES, doctorChecksOf, routesOf } from './app/features';
import { createStellaWorker } from '../workers/worker';
import { startWorkerHttp, type WorkerHttp } from '../workers/http';
import { readiness } from './core/evidence/locker/health';

export interface Running {
  ctx: AppContext;
  api?: FastifyInstance;
  /** The worker-only process's /healthz, /readyz and /metrics listener (`serve --no-api`). */
  workerHttp?: WorkerHttp;
  temporal: TemporalHandles;
  stop: () => Promise<void>;
  done: Promise<void>;
}

/**
 * Runs the worker and/or the HTTP API in this process. On SIGINT/SIGTERM the API stops
 * accepting requests and the worker drains: in-flight activities get their grace time.
 */
export async function serve(
  cfg: StellaConfig,
  opts: { api?: boolean; worker?: boolean; handleSignals?: boolean; queues?: readonly ('control' | 'heavy')[] } = {},
): Promise<Running> {
  const wantApi = opts.api !== false;
  const wantWorker = opts.worker !== false;
  const ctx = await createAppContext(cfg);
  // Traces (off unless STELLA_OTLP_ENDPOINT): set up before the client and worker that carry them.
  const tracing = cfg.telemetry.otlpEndpoint ? (await import('./app/tracing')).startTracing(cfg.telemetry.otlpEndpoint) : undefined;
  const temporal = await connectTemporal(cfg);
  if (tracing) temporal.client = new Client({ connection: temporal.connection, namespace: temporal.namespace, interceptors: tracing.clientInterceptors });
  const saWarning = await ensureSearchAttributesBestEffort(temporal.connection, temporal.namespace);
  if (saWarning) ctx.log.warn(saWarning);
  if (cfg.schedules.enabled && wantWorker) await ensureSchedules(temporal.client, cfg, FEATURES);

  let workerRun: Promise<void> = Promise.resolve();
  let shutdownWorker = () => {};
  let workerState = () => 'NONE';
  let taskQueues: readonly string[] = [];
  if (wantWorker) {
    const { worker, connection } = await createStellaWorker(ctx, opts.queues ? { queues: opts.queues } : {});
    taskQueues = worker.taskQueues;
    workerRun = worker.run().finally(() => connection.close());
    shutdownWorker = () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
    };
    workerState = () => worker.getState();
  }

  let workerHttp: WorkerHttp | undefined;
  if (wantWorker && !wantApi) {
    // No API in this process: a small node:http listener answers probes and serves stella's process metrics.
    const { createProcessRegistry } = await import('./app/metrics');
    workerHttp = await startWorkerHttp({
      host: cfg.api.host,
      port: cfg.telemetry.workerHttpPort,
      registry: createProcessRegistry(),
      readiness: () => readiness(ctx, temporal),
      state: () => workerState(),
    });
  }

  let api: FastifyInstance | undefined;
  if (wantApi) {
    // HTTP code is loaded only when this process serves the API (a worker-only process never imports it).
    const [{ buildApi }, { createMetrics }] = await Promise.all([import('./api/server'), import('./app/metrics')]);
    const deps = {
      ctx,
      temporal: { client: temporal.client, taskQueue: cfg.temporal.taskQueue },
      metrics: createMetrics(ctx.db, { blobs: ctx.blobs, cacheSeconds: cfg.telemetry.metricsCacheSeconds }),
      doctorChecks: doctorChecksOf(),
      tokenKeys: cachedTokenJwks(ctx.keys),
    };
    api = await buildApi(deps, await routesOf());
    await api.listen({ host: cfg.api.host, port: cfg.api.port });
  }
  ctx.log.info(
    { api: wantApi ? cfg.api.url : null, worker: wantWorker, workerHttpPort: workerHttp?.port ?? null, taskQueues, temporal: describeTemporalTarget(cfg) },
    'stella serving',
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      ctx.log.info('shutting down: draining API and worker');
      await api?.close();
      shutdownWorker();
      await workerHttp?.close();
      await workerRun;
      await temporal.connection.close();
      await tracing?.shutdown();
      await closeAppContext(ctx);
    })());
  if (opts.handleSignals) {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stop().then(() => process.exit(0)));
  }
  const done = workerRun.then(async () => {
    if (!stopping) {
      ctx.log.error('worker stopped unexpectedly');
      await stop();
    }
  });
  return { ctx, api, workerHttp, temporal, stop, done };
}
