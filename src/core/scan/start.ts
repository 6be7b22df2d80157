import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { AppContext } from '../context';
import { audit } from '../audit';
import { resolveImage, type ResolvedImage } from './catalogue';

export const scanWorkflowId = (tenant: string, digest: string) => `scan-${tenant}-${digest.replace(/^sha256:/, '')}`;

export const SCAN_SA = {
  tenant: defineSearchAttributeKey('StellaTenant', SearchAttributeType.KEYWORD),
  artifact: defineSearchAttributeKey('StellaArtifactDigest', SearchAttributeType.KEYWORD),
};

export interface StartScanRequest {
  image: string;
  sbomOnly?: boolean;
  force?: boolean;
  requestedBy: string;
  trigger?: 'promote' | 'push' | 'manual';
}
export interface StartedScan {
  workflowId: string;
  runId: string;
  artifactDigest: string;
  imageRef: string | null;
  image: ResolvedImage;
  joined: boolean;
  superseded: string | null;
  message: string;
}

/**
 * Start (or join) the scanThenAttest run for an image. The image is resolved to its digest
 * first so every request for one artifact maps to the same workflow id.
 *
 * Conflict policy (documented in the report/README):
 *  - a run for the artifact is in progress → join it (no second scan), unless --force is
 *    asked and the running one was not forced: then the running one is terminated
 *    ("superseded by --force") and a fresh forced run starts under the same id;
 *  - no run in progress → start one (WorkflowIdReusePolicy ALLOW_DUPLICATE, so closed runs
 *    never block a new one). Without --force the workflow reuses the evidence of an
 *    identical completed run (same artifact, scanner and feed) instead of re-scanning;
 *    --force always scans again and stores fresh evidence.
 */
export async function startScan(ctx: AppContext, t: { client: Client; taskQueue: string }, tenant: string, req: StartScanRequest): Promise<StartedScan> {
  const image = await resolveImage(ctx, tenant, req.image);
  const workflowId = scanWorkflowId(tenant, image.digest);
  const input = {
    tenant,
    artifactDigest: image.digest,
    // The name or path the caller gave (the worker resolves it the same way); for a digest, its catalogue name.
    imageRef: req.image.startsWith('sha256:') ? (image.ref ?? undefined) : req.image,
    sbomOnly: !!req.sbomOnly,
    force: !!req.force,
    requestedBy: req.requestedBy,
    trigger: req.trigger ?? 'manual',
  };
  let superseded: string | null = null;
  const running = await describeRunning(t.client, workflowId);
  if (running) {
    if (!req.force || running.forced) {
      return {
        workflowId,
        runId: running.runId,
        artifactDigest: image.digest,
        imageRef: image.ref,
        image,
        joined: true,
        superseded: null,
        message: `a scan of ${image.digest} is already running (${workflowId}); joined it`,
      };
    }
    await t.client.workflow.getHandle(workflowId, running.runId).terminate(`superseded by a --force scan requested by ${req.requestedBy}`);
    await audit(ctx.db, { tenant, actor: req.requestedBy, action: 'scan.superseded', target: image.digest, details: { workflowId, runId: running.runId } });
    superseded = running.runId;
  }
  try {
    const h = await t.client.workflow.start('scanThenAttest', {
      taskQueue: t.taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      workflowIdConflictPolicy: 'FAIL',
      memo: { force: !!req.force, sbomOnly: !!req.sbomOnly, image: input.imageRef ?? image.path },
      typedSearchAttributes: [
        { key: SCAN_SA.tenant, value: tenant },
        { key: SCAN_SA.artifact, value: image.digest },
      ],
    });
    return {
      workflowId,
      runId: h.firstExecutionRunId,
      artifactDigest: image.digest,
      imageRef: image.ref,
      image,
      joined: false,
      superseded,
      message: `scan ${workflowId} started`,
    };
  } catch (e) {
    if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    // Lost a race with a concurrent request: join the run it started.
    const d = await t.client.workflow.getHandle(workflowId).describe();
    return {
      workflowId,
      runId: d.runId,
      artifactDigest: image.digest,
      imageRef: image.ref,
      image,
      joined: true,
      superseded,
      message: `a scan of ${image.digest} is already running (${workflowId}); joined it`,
    };
  }
}

async function describeRunning(client: Client, workflowId: string): Promise<{ runId: string; forced: boolean } | null> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    if (d.status.name !== 'RUNNING') return null;
    const memo = (d.memo ?? {}) as { force?: boolean };
    return { runId: d.runId, forced: memo.force === true };
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return null;
    throw e;
  }
}
