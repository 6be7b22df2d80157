import { proxyActivities, defineQuery, setHandler, workflowInfo, ApplicationFailure, log } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { heavyActivities } from './queues';
import type { ScanProgress, ScanThenAttestInput } from '../src/core/scan/types';

export type { ScanPhase, ScanProgress } from '../src/core/scan/types';

/**
 * scanThenAttest: resolve image → scan (SBOM) → store SBOM → match advisories → store
 * report → sign statements → store attestations (edges indexed with each item) → record
 * the run. Every step is an idempotent activity: ingest is idempotent by digest and the
 * scan time is fixed here (workflow time, replay-stable), so a retried step rebuilds the
 * same bytes; attestations are looked up by statement digest before signing. A worker
 * killed midway resumes on another worker without duplicate evidence.
 *
 * Workflow id: scanWorkflowId (src/temporal/names.ts), scan-<tenant>-<artifact hex> (callers
 * resolve the digest first), so concurrent requests for one artifact join one run.
 */

const retry = { initialInterval: '1s', maximumInterval: '30s', backoffCoefficient: 2, maximumAttempts: 10 };

const quick = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', retry });
// Reading layers of a large image takes a while; it heartbeats every 5 s.
const heavyOptions = { startToCloseTimeout: '60 minutes', heartbeatTimeout: '60 seconds', retry } as const;
/** The heavy task queue for new runs (see ./queues). */
const heavy = () => heavyActivities<Activities>(heavyOptions);

export const scanProgressQuery = defineQuery<ScanProgress>('progress');

export async function scanThenAttest(input: ScanThenAttestInput): Promise<ScanProgress> {
  const info = workflowInfo();
  const run = { scanId: info.runId, workflowId: info.workflowId };
  // Workflow time is recorded in history: stable across replays and worker restarts.
  const scanTime = new Date().toISOString();
  const p = initialProgress(run.scanId, input);
  setHandler(scanProgressQuery, () => p);

  try {
    const { ctx, reuse } = await quick.scanPrepare({ ...input, ...run, scanTime });
    p.artifactDigest = ctx.artifactDigest;
    p.imageRef = ctx.imageRef;
    p.feed = ctx.feed ? { version: ctx.feed.version, digest: ctx.feed.digest } : null;
    if (reuse) {
      // Evidence from an identical earlier run (same artifact, scanner, feed) is present: nothing to redo.
      Object.assign(p, { phase: 'reused', reusedFrom: reuse.scanId, sbomId: reuse.sbomId, components: reuse.components });
      if (!ctx.sbomOnly) Object.assign(p, { reportId: reuse.reportId, attestationIds: reuse.attestationIds, counts: reuse.counts });
      await quick.scanFinish({ tenant: input.tenant, ...run, input, status: 'reused' });
      return p;
    }

    p.phase = 'scanning';
    const sbom = await heavy().scanSbom(ctx);
    Object.assign(p, { sbomId: sbom.sbomId, components: sbom.components, ...(sbom.spdxId ? { spdxId: sbom.spdxId } : {}) });
    p.warnings.push(...sbom.warnings.slice(0, 20));
    const finishedAt = ctx.sbomOnly ? undefined : await matchAttestRecord(ctx, sbom.sbomId, p);
    // finishedAt is what the statements carry, so `attest create` later rebuilds identical statements (and reuses them).
    await quick.scanFinish({
      tenant: input.tenant,
      ...run,
      input,
      artifactDigest: ctx.artifactDigest,
      status: 'completed',
      ...(finishedAt ? { finishedAt } : {}),
    });
    p.phase = 'done';
    return p;
  } catch (e) {
    return await failScan(e, input, run, p);
  }
}

type ScanContext = Parameters<Activities['scanSbom']>[0];

function initialProgress(scanId: string, input: ScanThenAttestInput): ScanProgress {
  return {
    scanId,
    phase: 'resolving',
    artifactDigest: input.artifactDigest ?? null,
    imageRef: input.imageRef ?? null,
    sbomId: null,
    reportId: null,
    attestationIds: [],
    components: null,
    counts: null,
    feed: null,
    warnings: [],
    reusedFrom: null,
    error: null,
  };
}

/** match advisories → store report → sign statements → store attestations → record replay; the time the statements carry. */
async function matchAttestRecord(ctx: ScanContext, sbomId: string, p: ScanProgress): Promise<string> {
  p.phase = 'matching';
  const m = await heavy().scanMatch(ctx, sbomId);
  Object.assign(p, { reportId: m.reportId, counts: m.counts });
  p.warnings.push(...m.warnings);
  const finishedAt = new Date().toISOString();

  p.phase = 'attesting';
  const ids = { sbomId, reportId: m.reportId, finishedAt };
  for (const type of ['sbom', 'vuln', 'slsa-provenance'] as const) {
    const a = await quick.scanAttest(ctx, type, ids);
    p.attestationIds.push(a.id);
  }
  // Every full run records a signed replay manifest + bundles (replay runbook §2.1).
  const rp = await heavy().scanRecordReplay(ctx);
  p.replayManifest = rp.manifestDigest;
  return finishedAt;
}

/** Records the failed run (with the activity's own reason, not "Activity task failed") and fails the workflow. */
async function failScan(e: unknown, input: ScanThenAttestInput, run: { scanId: string; workflowId: string }, p: ScanProgress): Promise<never> {
  const cause = (e as { cause?: Error }).cause;
  p.error = cause?.message ?? (e as Error).message;
  p.phase = 'failed';
  log.warn('scanThenAttest failed', { error: p.error });
  await quick.scanFinish({
    tenant: input.tenant,
    ...run,
    input,
    ...(p.artifactDigest ? { artifactDigest: p.artifactDigest } : {}),
    status: 'failed',
    error: p.error,
  });
  const type = (cause as { type?: string } | undefined)?.type ?? 'ScanFailed';
  throw ApplicationFailure.create({ message: `scan failed: ${p.error}`, type, nonRetryable: true, details: [p] });
}
