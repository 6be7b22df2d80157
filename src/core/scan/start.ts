/** Starting (or joining) the scanThenAttest workflow for an image. */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, type QueryDefinition } from '@temporalio/common';
import type { AppContext } from '../context';
import { audit } from '../audit';
import { SA, scanWorkflowId } from '../../temporal/names';
import { resolveImage, type ResolvedImage } from './catalogue';
import { isPinnedReference } from './registry';
import type { SbomFormat, ScanProgress, ScanThenAttestInput, ScanTrigger } from './types';

/**
 * The Temporal side of scanning, handed in by the edge that owns the workflow module: the
 * workflow function and its progress query, so they are used by reference (core does not
 * import workflow code).
 */
export interface ScanWorkflows {
  client: Client;
  taskQueue: string;
  workflow: (input: ScanThenAttestInput) => Promise<ScanProgress>;
  progress: QueryDefinition<ScanProgress>;
}

export interface StartScanRequest {
  image: string;
  /** For a registry reference naming a multi-platform index: os/arch[/variant]. */
  platform?: string;
  /** Speak plain HTTP to this reference's registry host (that host only, this request only). */
  insecureRegistry?: boolean;
  sbomOnly?: boolean;
  sbomFormat?: SbomFormat;
  force?: boolean;
  requestedBy: string;
  trigger?: ScanTrigger;
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
export async function startScan(ctx: AppContext, t: ScanWorkflows, tenant: string, req: StartScanRequest): Promise<StartedScan> {
  const image = await resolveImage(ctx, tenant, req.image, {
    ...(req.platform ? { platform: req.platform } : {}),
    ...(req.insecureRegistry ? { insecure: true } : {}),
    upfront: true,
  });
  const workflowId = scanWorkflowId(tenant, image.digest);
  const input: ScanThenAttestInput = {
    tenant,
    artifactDigest: image.digest,
    // The name or path the caller gave (the worker resolves it the same way); for a digest, its catalogue name;
    // for a registry image, the pinned registry/repository@digest (a tag is resolved once, here, and never again).
    ...(image.source === 'registry' || (req.image.startsWith('sha256:') && isPinnedReference(image.path))
      ? { imageRef: image.path }
      : req.image.startsWith('sha256:')
        ? image.ref
          ? { imageRef: image.ref }
          : {}
        : { imageRef: req.image }),
    ...(req.insecureRegistry && isPinnedReference(image.path) ? { insecureRegistry: true } : {}),
    sbomOnly: !!req.sbomOnly,
    ...(req.sbomFormat === 'spdx' ? { sbomFormat: 'spdx' as const } : {}),
    force: !!req.force,
    requestedBy: req.requestedBy,
    trigger: req.trigger ?? 'manual',
  };
  const joined = (runId: string, superseded: string | null): StartedScan => ({
    workflowId,
    runId,
    artifactDigest: image.digest,
    imageRef: image.ref,
    image,
    joined: true,
    superseded,
    message: `a scan of ${image.digest} is already running (${workflowId}); joined it`,
  });
  let superseded: string | null = null;
  const running = await describeRunning(t.client, workflowId);
  if (running) {
    if (!req.force || running.forced) return joined(running.runId, null);
    await t.client.workflow.getHandle(workflowId, running.runId).terminate(`superseded by a --force scan requested by ${req.requestedBy}`);
    await audit(ctx.db, { tenant, actor: req.requestedBy, action: 'scan.superseded', target: image.digest, details: { workflowId, runId: running.runId } });
    superseded = running.runId;
  }
  try {
    const h = await t.client.workflow.start(t.workflow, {
      taskQueue: t.taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      workflowIdConflictPolicy: 'FAIL',
      memo: { force: !!req.force, sbomOnly: !!req.sbomOnly, image: input.imageRef ?? image.path },
      typedSearchAttributes: [
        { key: SA.tenant, value: tenant },
        { key: SA.artifact, value: image.digest },
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
    return joined(d.runId, superseded);
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

/** `stella scan image`: start or join the scan and audit the request. */
export async function requestScan(ctx: AppContext, t: ScanWorkflows, tenant: string, req: StartScanRequest): Promise<StartedScan> {
  const s = await startScan(ctx, t, tenant, req);
  await audit(ctx.db, {
    tenant,
    actor: req.requestedBy,
    action: 'scan.requested',
    target: s.artifactDigest,
    details: {
      workflowId: s.workflowId,
      runId: s.runId,
      joined: s.joined,
      force: !!req.force,
      sbomOnly: !!req.sbomOnly,
      image: req.image,
      ...(s.image.source === 'registry' ? { pinned: s.image.path } : {}),
    },
  });
  return s;
}
