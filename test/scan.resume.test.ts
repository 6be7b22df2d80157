import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Context } from '@temporalio/activity';
import { NativeConnection } from '@temporalio/worker';
import { harness, type Harness } from './support/context';
import { buildOciFixture, realSystemLayer, type OciFixture } from './support/oci-fixture';
import { countEvidence, realFacts, TENANT } from './support/scan';
import { createActivities } from '../activities';
import { scanThenAttest } from '../workflows/scan';
import { registerImage } from '../src/core/scan/catalogue';
import { importFeed } from '../src/core/scan/feeds';
import { scanWorkflowId } from '../src/temporal/names';
import { createWorkerPair } from './support/queues';

/**
 * Durability: a worker stopped right after the SBOM is stored, and an activity that dies
 * after storing its attestation but before reporting success. The run resumes on a new
 * worker and leaves exactly one SBOM, one report and one attestation per predicate.
 */
let h: Harness;
let native: NativeConnection;
let fx: OciFixture;

beforeAll(async () => {
  h = await harness({ blob: 'fs', worker: false });
  native = await NativeConnection.connect({ address: h.ctx.cfg.temporal.address! });
  fx = await buildOciFixture({ ref: 'resume:1', layers: [await realSystemLayer()], archives: false });
  await registerImage(h.ctx, TENANT, 'resume:1', fx.dir, 'tester');
  await importFeed(h.ctx, TENANT, Buffer.from(JSON.stringify(realFacts().records)), { actor: 'tester' });
});
afterAll(async () => {
  await fx?.cleanup();
  await native?.close();
  await h?.close();
});

const bundle = () => ({ code: readFileSync(inject('workflowBundlePath'), 'utf8') });

describe('scanThenAttest resumes after a worker dies', () => {
  it('worker stopped after the SBOM is stored: a new worker finishes with no duplicate evidence', async () => {
    const taskQueue = h.ctx.cfg.temporal.taskQueue;
    const real = createActivities(h.ctx);
    let reachedMatch!: () => void;
    const reached = new Promise<void>((r) => (reachedMatch = r));
    // First worker: matching never finishes on its own (stands in for a crash mid-step).
    const w1 = await createWorkerPair({
      connection: native,
      taskQueue,
      workflowBundle: bundle(),
      shutdownGraceTime: '500ms',
      activities: {
        ...real,
        scanMatch: async () => {
          reachedMatch();
          await Context.current().cancelled;
          throw new Error('unreachable');
        },
      },
    });
    const run1 = w1.run();
    const wid = scanWorkflowId(TENANT, fx.digest);
    const handle = await h.client.workflow.start(scanThenAttest, {
      taskQueue,
      workflowId: wid,
      args: [{ tenant: TENANT, artifactDigest: fx.digest, imageRef: 'resume:1', requestedBy: 'tester', trigger: 'manual' }],
    });
    await reached;
    expect(await countEvidence(h)).toEqual({ sbom: 1 });
    w1.shutdown();
    await run1;

    // Second worker: real activities; for one attestation, die after storing it (before reporting).
    let crashedOnce = false;
    const w2 = await createWorkerPair({
      connection: native,
      taskQueue,
      workflowBundle: bundle(),
      activities: {
        ...real,
        scanAttest: async (...args: Parameters<typeof real.scanAttest>) => {
          const r = await real.scanAttest(...args);
          if (args[1] === 'vuln' && !crashedOnce) {
            crashedOnce = true;
            throw new Error('simulated crash after the attestation was stored');
          }
          return r;
        },
      },
    });
    const result = (await w2.runUntil(handle.result())) as any;
    expect(crashedOnce).toBe(true);
    expect(result.phase).toBe('done');
    expect(await countEvidence(h)).toEqual({ sbom: 1, 'scan-report': 1, attestation: 3, 'replay-bundle': 4 });
    expect(new Set(result.attestationIds).size).toBe(3);
    const runs = await h.ctx.db.query('SELECT status, attestation_ids, sbom_id FROM scan_runs WHERE tenant_id=$1 AND artifact_digest=$2', [TENANT, fx.digest]);
    expect(runs.rows).toHaveLength(1);
    expect(runs.rows[0].status).toBe('completed');
    expect(runs.rows[0].attestation_ids).toHaveLength(3);
    expect(runs.rows[0].sbom_id).toBe(result.sbomId);
    // The matching step ran more than once (first attempt died with the worker).
    const hist = await handle.fetchHistory();
    const failedOrRetried = (hist.events ?? []).filter((e) => e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 1) > 1);
    expect(failedOrRetried.length).toBeGreaterThanOrEqual(2);
  });
});
