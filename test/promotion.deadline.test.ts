import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { harness, type Harness } from './support/context';
import { timeSkippingEnv, workflowBundle } from './support/time-skipping';
import { createPromotionActivities } from '../activities/promotion';
import { sha256Digest } from '../src/lib/hash';
import { setPolicy } from '../src/core/promotion/policy';
import { storeSbom } from './support/promotion';

/**
 * The deadline path on the time-skipping server: nobody produces the evidence, the 24h
 * (policy default) wait elapses in skipped time, and the promotion fails with exactly
 * `required evidence not found: <kinds>`. Activities run against real PostgreSQL + blobs.
 */
describe('promotion deadline (time-skipping Temporal test server)', () => {
  let h: Harness;
  let env: TestWorkflowEnvironment;
  // A Worker runs once (runUntil shuts it down): one per test.
  const worker = {
    runUntil: async <T>(p: Promise<T>) =>
      (
        await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: workflowBundle(), activities: createPromotionActivities(h.ctx) })
      ).runUntil(p),
  };
  const taskQueue = `promo-deadline-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    h = await harness({ worker: false });
    env = await timeSkippingEnv();
    // The test server starts without our custom search attributes; the workflow upserts them.
    await env.connection.operatorService.addSearchAttributes({
      namespace: 'default',
      searchAttributes: { StellaTenant: 2, StellaArtifactDigest: 2, StellaEnvironment: 2, StellaPromotionState: 2, StellaMissingEvidence: 7 },
    });
  });
  afterAll(async () => {
    await env?.teardown().catch(() => {});
    await h?.close();
  });

  it('fails with "required evidence not found: sbom,scan-report,attestation" after the default 24h wait', async () => {
    const artifact = sha256Digest(`app@${randomBytes(6).toString('hex')}`);
    const err = await worker.runUntil(
      env.client.workflow
        .execute('promotion', {
          taskQueue,
          workflowId: `promotion-default-prod-${artifact.slice(7)}`,
          args: [{ tenant: 'default', artifactDigest: artifact, fromEnv: 'staging', toEnv: 'prod', requestedBy: 'test' }],
        })
        .then(
          () => null,
          (e) => e,
        ),
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause?.message).toBe('required evidence not found: sbom,scan-report,attestation');
    const row = await h.ctx.db.query('SELECT state, reason, attempts, deadline, created_at FROM promotions WHERE artifact_digest=$1', [artifact]);
    expect(row.rows).toHaveLength(1);
    expect(row.rows[0]).toMatchObject({ state: 'failed', reason: 'required evidence not found: sbom,scan-report,attestation', attempts: 1 });
    const audit = await h.ctx.db.query(`SELECT actor, reason FROM audit_log WHERE action='promotion.failed' AND target=$1`, [artifact]);
    expect(audit.rows).toEqual([{ actor: 'system:promotion', reason: 'required evidence not found: sbom,scan-report,attestation' }]);
  });

  it('honours a configured deadline and lists only what is still missing', async () => {
    await setPolicy(h.ctx.db, { tenant: 'default', env: 'edge', text: 'waitDeadline: 2h\n', actor: 'test' });
    const artifact = sha256Digest(`app@${randomBytes(6).toString('hex')}`);
    await storeSbom(h.ctx, 'default', artifact);
    const err = await worker.runUntil(
      env.client.workflow
        .execute('promotion', {
          taskQueue,
          workflowId: `promotion-default-edge-${artifact.slice(7)}`,
          args: [{ tenant: 'default', artifactDigest: artifact, fromEnv: 'staging', toEnv: 'edge', requestedBy: 'test' }],
        })
        .then(
          () => null,
          (e) => e,
        ),
    );
    expect((err as WorkflowFailedError).cause?.message).toBe('required evidence not found: scan-report,attestation');
    // The deadline is the workflow's start time + the policy's 2h, not the 24h default.
    const d = await env.client.workflow.getHandle(`promotion-default-edge-${artifact.slice(7)}`).describe();
    const row = await h.ctx.db.query('SELECT deadline, state FROM promotions WHERE artifact_digest=$1', [artifact]);
    expect(row.rows[0].state).toBe('failed');
    expect(new Date(row.rows[0].deadline).getTime() - d.startTime.getTime()).toBe(2 * 3600_000);
    expect(d.closeTime!.getTime() - d.startTime.getTime()).toBeGreaterThanOrEqual(2 * 3600_000);
  });
});
