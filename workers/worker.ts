import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, Runtime, DefaultLogger, makeTelemetryFilterString, type WorkerOptions, type LogLevel } from '@temporalio/worker';
import type { AppContext } from '../src/core/context';
import { createActivities } from '../activities';
import { prebuiltWorkflowBundle } from './workflow-bundle';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** The given bundle, else the one prebuilt at build time (no transpiling at start), else the sources. */
function workflowCode(given: StellaWorkerOptions['workflowBundle']): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = given ?? prebuiltWorkflowBundle();
  return bundle ? { workflowBundle: bundle } : { workflowsPath: WORKFLOWS_PATH };
}

let runtimeInstalled = false;
function sdkLevel(): LogLevel {
  const l = (process.env.STELLA_LOG_LEVEL ?? 'info').toUpperCase();
  return (['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'].includes(l) ? l : l === 'FATAL' || l === 'SILENT' ? 'ERROR' : 'INFO') as LogLevel;
}
function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    // Signals are handled by the serve process (API and worker shut down together).
    Runtime.install({
      shutdownSignals: [],
      // SDK logs follow STELLA_LOG_LEVEL (tests run at warn), so routine worker chatter stays out of CI output.
      logger: new DefaultLogger(sdkLevel()),
      telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
    });
  } catch {
    // Already installed by an earlier worker in this process.
  }
}

export interface StellaWorkerOptions {
  taskQueue?: string;
  /** Prebuilt workflow bundle (tests share one); otherwise dist/workflow-bundle.js when current, else bundled from WORKFLOWS_PATH. */
  workflowBundle?: { code: string } | { codePath: string };
  /** How long in-flight activities get to finish on SIGINT/SIGTERM. */
  shutdownGraceTime?: string;
  maxConcurrentActivityTaskExecutions?: number;
}

export async function createStellaWorker(ctx: AppContext, opts: StellaWorkerOptions = {}): Promise<{ worker: Worker; connection: NativeConnection }> {
  installRuntime();
  const address = ctx.cfg.temporal.address;
  if (!address) throw new Error('STELLA_TEMPORAL_ADDRESS is not set');
  const connection = await NativeConnection.connect({ address });
  const base: WorkerOptions = {
    connection,
    namespace: ctx.cfg.temporal.namespace,
    taskQueue: opts.taskQueue ?? ctx.cfg.temporal.taskQueue,
    activities: createActivities(ctx),
    shutdownGraceTime: opts.shutdownGraceTime ?? '30s',
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? 20,
    ...workflowCode(opts.workflowBundle),
  };
  const worker = await Worker.create(base);
  return { worker, connection };
}
