/** Tests that build their own Worker: the same activities on the heavy task queue too (scans, full verify, backups). */
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { heavyTaskQueue } from '../../src/temporal/names';

export interface WorkerPair {
  run(): Promise<void>;
  runUntil<T>(p: Promise<T>): Promise<T>;
  shutdown(): void;
  getState(): ReturnType<Worker['getState']>;
}

/** `Worker.create(options)` plus an activities-only worker on `<taskQueue>-heavy`, run and stopped together. */
export async function createWorkerPair(options: WorkerOptions): Promise<WorkerPair> {
  const { workflowBundle: _b, workflowsPath: _p, ...rest } = options;
  const control = await Worker.create(options);
  const heavy = await Worker.create({ ...rest, taskQueue: heavyTaskQueue(options.taskQueue) });
  const both = [control, heavy];
  const shutdown = () => {
    for (const w of both) if (w.getState() === 'RUNNING') w.shutdown();
  };
  const run = async () => {
    await Promise.all(both.map((w) => w.run()));
  };
  return {
    run,
    shutdown,
    getState: () => control.getState(),
    runUntil: async <T>(p: Promise<T>) => {
      const running = run();
      try {
        return await p;
      } finally {
        shutdown();
        await running;
      }
    },
  };
}
