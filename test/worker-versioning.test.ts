import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { harness, testConfig, type Harness } from './support/context';
import { createAppContext, closeAppContext } from '../src/core/context';
import { createStellaWorker } from '../workers/worker';

/**
 * Worker Versioning behind STELLA_WORKER_DEPLOYMENT (issue 16 item 4), on the dev server (which has
 * Worker Deployments): the worker polls as deployment version `<name>:<build id>`, and a workflow
 * started once that version is current runs on it, pinned.
 */
describe('Worker Versioning', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('polls as the configured deployment version; new runs are pinned to it', async () => {
    const deploymentName = `stella-test-${randomBytes(4).toString('hex')}`;
    const cfg = await testConfig({ env: { STELLA_WORKER_DEPLOYMENT: deploymentName, STELLA_WORKER_BUILD_ID: '1.2.3', STELLA_WORKER_QUEUES: 'control' } });
    expect(cfg.worker.deployment).toEqual({ deploymentName, buildId: '1.2.3' });
    const ctx = await createAppContext(cfg);
    const { worker, connection } = await createStellaWorker(ctx, {
      workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') },
      shutdownGraceTime: '1s',
    });
    const running = worker.run().finally(() => connection.close());
    try {
      const svc = h.client.workflowService;
      // The version appears once its worker polls; then it is made current (what an operator does at rollout).
      for (let i = 0; ; i++) {
        const ok = await svc.setWorkerDeploymentCurrentVersion({ namespace: cfg.temporal.namespace, deploymentName, buildId: '1.2.3', identity: 'test' }).then(
          () => true,
          (e: Error) => (i > 100 ? Promise.reject(e) : false),
        );
        if (ok) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const handle = await h.client.workflow.start('promotionBenchNoop', {
        taskQueue: cfg.temporal.taskQueue,
        workflowId: `versioned-noop-${randomBytes(4).toString('hex')}`,
      });
      await handle.result();
      const d = await handle.describe();
      const version = d.raw.workflowExecutionInfo?.versioningInfo;
      expect(version?.deploymentVersion).toMatchObject({ deploymentName, buildId: '1.2.3' });
      expect(String(version?.behavior)).toMatch(/^(1|VERSIONING_BEHAVIOR_PINNED)$/);
    } finally {
      worker.shutdown();
      await running;
      await closeAppContext(ctx);
    }
  });
});
