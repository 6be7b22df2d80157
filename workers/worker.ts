import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { installRuntime } from './runtime';
import { activeTracing } from '../src/app/tracing';
import type { AppContext } from '../src/core/context';
import { createActivities } from '../activities';
import { probeTls, temporalConnectError, temporalSecurity } from '../src/temporal/client';
import { heavyTaskQueue } from '../src/temporal/names';
import { prebuiltWorkflowBundle } from './workflow-bundle';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** The given bundle, else the one prebuilt at build time (no transpiling at start), else the sources. */
function workflowCode(given: StellaWorkerOptions['workflowBundle']): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = given ?? prebuiltWorkflowBundle();
  return bundle ? { workflowBundle: bundle } : { workflowsPath: WORKFLOWS_PATH };
}

export interface StellaWorkerOptions {
  /** The control queue (default STELLA_TASK_QUEUE); the heavy queue is derived from it (`<queue>-heavy`). */
  taskQueue?: string;
  /** Which queues to poll (default STELLA_WORKER_QUEUES: both). */
  queues?: readonly ('control' | 'heavy')[];
  /** Prebuilt workflow bundle (tests share one); otherwise dist/workflow-bundle.js when current, else bundled from WORKFLOWS_PATH. */
  workflowBundle?: { code: string } | { codePath: string };
  /** How long in-flight activities get to finish on SIGINT/SIGTERM. */
  shutdownGraceTime?: string;
  /** Activity slots of the control queue's worker (default STELLA_WORKER_CONTROL_CONCURRENCY). */
  maxConcurrentActivityTaskExecutions?: number;
}

/** The workers of one process (control and/or heavy queue) run and stop together, like one Worker. */
export interface StellaWorkerGroup {
  readonly workers: readonly Worker[];
  readonly taskQueues: readonly string[];
  run(): Promise<void>;
  shutdown(): void;
  getState(): ReturnType<Worker['getState']>;
}

/**
 * The control queue's worker runs workflows and light activities; the heavy queue's worker runs
 * activities only (scans, full verification, backups, restores) with few slots, so one large scan
 * never starves promotions of activity slots, and heavy workers scale on their own.
 */
export async function createStellaWorker(
  ctx: AppContext,
  opts: StellaWorkerOptions = {},
): Promise<{ worker: StellaWorkerGroup; connection: NativeConnection }> {
  // SDK logs through stella's logger (JSON); SDK metrics on STELLA_SDK_METRICS_ADDRESS when set.
  installRuntime({ log: ctx.log, sdkMetricsAddress: ctx.cfg.telemetry.sdkMetricsAddress });
  const cfg = ctx.cfg;
  if (!cfg.temporal.address) throw new Error('no Temporal address: set STELLA_TEMPORAL_ADDRESS or TEMPORAL_ADDRESS');
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: cfg.temporal.address, ...temporalSecurity(cfg) });
  } catch (e) {
    throw temporalConnectError(cfg, e, await probeTls(cfg).catch(() => null));
  }
  const control = opts.taskQueue ?? cfg.temporal.taskQueue;
  const queues = opts.queues ?? cfg.worker.queues;
  const activities = createActivities(ctx);
  const tracing = activeTracing();
  const common: Omit<WorkerOptions, 'taskQueue'> = {
    connection,
    namespace: cfg.temporal.namespace,
    activities,
    shutdownGraceTime: opts.shutdownGraceTime ?? '30s',
    // OpenTelemetry (STELLA_OTLP_ENDPOINT): client, workflow and activity interceptors and the span sink.
    ...(tracing ? { plugins: [tracing.plugin] } : {}),
    ...(cfg.worker.deployment
      ? { workerDeploymentOptions: { version: cfg.worker.deployment, useWorkerVersioning: true, defaultVersioningBehavior: 'PINNED' as const } }
      : {}),
  };
  const workers: Worker[] = [];
  try {
    if (queues.includes('control')) {
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: control,
          maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? cfg.worker.controlConcurrency,
          // With tracing on, workflows are bundled at start with the OpenTelemetry workflow interceptors (prebuilt bundles have none).
          ...(tracing ? { workflowsPath: WORKFLOWS_PATH } : workflowCode(opts.workflowBundle)),
        }),
      );
    }
    if (queues.includes('heavy')) {
      // Activities only: no workflow code is loaded or bundled for the heavy queue.
      workers.push(await Worker.create({ ...common, taskQueue: heavyTaskQueue(control), maxConcurrentActivityTaskExecutions: cfg.worker.heavyConcurrency }));
    }
  } catch (e) {
    await connection.close();
    throw e;
  }
  return { worker: workerGroup(workers), connection };
}

function workerGroup(workers: Worker[]): StellaWorkerGroup {
  return {
    workers,
    taskQueues: workers.map((w) => w.options.taskQueue),
    // One worker failing stops the others, so the process never runs half its queues silently.
    run: async () => {
      const runs = workers.map((w) =>
        w.run().catch((e) => {
          for (const o of workers) if (o.getState() === 'RUNNING') o.shutdown();
          throw e;
        }),
      );
      await Promise.all(runs);
    },
    shutdown: () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
    getState: () => workers[0]!.getState(),
  };
}
