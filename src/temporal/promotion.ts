/**
 * The Temporal client side of promotions: start, locate, query, update and signal a promotion
 * workflow by reference (the workflow function and its define* objects), and list promotions
 * through Temporal visibility. The HTTP routes call these; the workflow itself is in workflows/.
 */
import { type Client, WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { PromotionAction } from '../crypto/action-tokens';
import type { KeyStore } from '../crypto/keys';
import { audit } from '../core/audit';
import { auditAction, mintPromotionActionToken } from '../core/promotion/actions';
import { findPromotion } from '../core/promotion/store';
import type { PromotionInput, PromotionStateName, PromotionStatus } from '../core/promotion/types';
import type { Db } from '../db/pool';
import { StellaError, type StellaCode, badInput, conflict, notFound } from '../lib/errors';
import {
  promotion,
  promotionAbortUpdate,
  promotionApproveUpdate,
  promotionRetrySignal,
  promotionRetryUpdate,
  promotionStateQuery,
} from '../../workflows/promotion';
import { SA, promotionWorkflowId, promotionWorkflowIdPrefix } from './names';
import { promotionStaticDetails, promotionStaticSummary, temporalUiWorkflowUrl } from './promotion-details';

export interface PromotionTemporal {
  client: Client;
  taskQueue: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A promotion run found in Temporal (the newest run of its workflow id, or the named run). */
export interface LocatedPromotion {
  handle: WorkflowHandle<typeof promotion>;
  workflowId: string;
  runId: string;
  running: boolean;
  status: string;
}

/** The answer about one promotion: the database record with the live state over it while it runs. */
export type PromotionView = Partial<PromotionStatus> &
  Pick<PromotionStatus, 'promotionId' | 'workflowId' | 'state' | 'gates' | 'attempts' | 'deadline' | 'approvals'> & {
    id?: string;
    temporalStatus: string;
    createdAt?: string;
    updatedAt?: string;
    finishedAt?: string | null;
    /** The run's page in the Temporal Web UI (STELLA_TEMPORAL_UI_URL). */
    temporalUiUrl?: string;
  };

export interface StartedPromotion {
  handle: WorkflowHandle<typeof promotion>;
  workflowId: string;
  runId: string;
  joined: boolean;
}

/**
 * Starts the promotion of `input.artifactDigest` into `input.toEnv`, or joins the one running
 * for the same tenant, artifact and target. A new start is audited.
 */
export async function startPromotion(t: PromotionTemporal, db: Db, input: PromotionInput): Promise<StartedPromotion> {
  const workflowId = promotionWorkflowId(input.tenant, input.toEnv, input.artifactDigest);
  try {
    const handle = await t.client.workflow.start(promotion, {
      taskQueue: t.taskQueue,
      workflowId,
      args: [input],
      // One promotion per (tenant, artifact, target env) at a time; a new one once it is closed.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      workflowIdConflictPolicy: 'FAIL',
      // What the Temporal UI shows on the list and the workflow page from the start.
      staticSummary: promotionStaticSummary(input),
      staticDetails: promotionStaticDetails(input, workflowId),
      // Set at start so the Temporal UI lists it before the first workflow task runs.
      typedSearchAttributes: [
        { key: SA.tenant, value: input.tenant },
        { key: SA.artifact, value: input.artifactDigest },
        { key: SA.environment, value: input.toEnv },
        { key: SA.promotionState, value: 'evaluating' },
      ],
    });
    const runId = handle.firstExecutionRunId;
    await audit(db, {
      tenant: input.tenant,
      actor: input.requestedBy,
      action: 'promotion.requested',
      target: input.artifactDigest,
      details: { workflowId, promotionId: runId, from: input.fromEnv, to: input.toEnv },
    });
    return { handle, workflowId, runId, joined: false };
  } catch (e) {
    if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    const d = await t.client.workflow.getHandle(workflowId).describe();
    return { handle: t.client.workflow.getHandle<typeof promotion>(workflowId, d.runId), workflowId, runId: d.runId, joined: true };
  }
}

/**
 * Finds a promotion by workflow id (`promotion-<tenant>-<env>-<hex>`, its newest run) or
 * by promotion id (the run id). The tenant must match the caller's.
 */
export async function locatePromotion(t: PromotionTemporal, db: Db, tenant: string, id: string): Promise<LocatedPromotion> {
  let workflowId: string;
  let runId: string | undefined;
  if (UUID_RE.test(id)) {
    const row = await findPromotion(db, tenant, id);
    if (!row) throw notFound(`promotion ${id} not found`);
    workflowId = row.workflowId;
    runId = row.promotionId;
  } else if (id.startsWith('promotion-') && id.length < 300) {
    workflowId = id;
  } else throw badInput(`malformed promotion id ${JSON.stringify(id)}: expected promotion-<tenant>-<env>-<digest hex> or a promotion (run) id`);
  try {
    const d = await t.client.workflow.getHandle(workflowId, runId).describe();
    const owner = d.typedSearchAttributes.get(SA.tenant);
    // Before its first workflow task a promotion may carry no tenant attribute yet: the id prefix decides then.
    const mine = owner !== undefined ? owner === tenant : workflowId.startsWith(promotionWorkflowIdPrefix(tenant));
    if (d.type !== promotion.name || !mine) throw notFound(`promotion ${id} not found`);
    return {
      handle: t.client.workflow.getHandle<typeof promotion>(workflowId, d.runId),
      workflowId,
      runId: d.runId,
      running: d.status.name === 'RUNNING',
      status: d.status.name,
    };
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw notFound(`promotion ${id} not found`);
    throw e;
  }
}

/** Live state by query while running, merged over the database record (which survives completion). */
export async function promotionView(db: Db, tenant: string, loc: LocatedPromotion, ui?: { baseUrl: string; namespace: string }): Promise<PromotionView> {
  const link = ui ? { temporalUiUrl: temporalUiWorkflowUrl(ui.baseUrl, ui.namespace, loc.workflowId, loc.runId) } : {};
  const live = loc.running ? await loc.handle.query(promotionStateQuery).catch(() => null) : null;
  const row = await findPromotion(db, tenant, loc.runId);
  if (!live && !row) {
    return {
      promotionId: loc.runId,
      workflowId: loc.workflowId,
      state: 'evaluating',
      gates: [],
      attempts: 0,
      deadline: null,
      approvals: [],
      temporalStatus: loc.status,
      ...link,
    };
  }
  const record = row ?? live!; // one of them exists
  return { ...record, ...(live ?? {}), id: loc.workflowId, temporalStatus: loc.status, ...link };
}

/** Long-poll: resolves true when the workflow closes, false after `seconds`, whichever is first. */
export async function waitForPromotion(handle: WorkflowHandle, seconds: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = handle.result().then(
    () => true,
    (e) => (e instanceof WorkflowFailedError ? true : Promise.reject(e)),
  );
  const timeout = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), seconds * 1000);
  });
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Required gates that did not pass, with the command that produces the missing evidence. */
export const missingOf = (s: Pick<PromotionStatus, 'gates'>) =>
  s.gates.filter((g) => g.required && !g.passed).map((g) => ({ gate: g.name, detail: g.detail, ...(g.missing ?? {}) }));

/** Refuses an operation on a promotion that is already final, saying how it ended. */
async function requireRunning(db: Db, tenant: string, loc: LocatedPromotion, what: (s: PromotionView) => string): Promise<void> {
  if (loc.running) return;
  throw conflict(what(await promotionView(db, tenant, loc)));
}

/** Who acts, as the API verified them, and where their action tokens are signed. */
export interface PromotionActor {
  db: Db;
  keys: KeyStore;
  tenant: string;
  /** The API caller's token subject. */
  by: string;
}

const UPDATES = { approve: promotionApproveUpdate, abort: promotionAbortUpdate, retry: promotionRetryUpdate } as const;
const CODES: readonly string[] = ['BAD_INPUT', 'CONFLICT', 'FORBIDDEN'];

/** The action token for `op` by the caller on this promotion, and the payload that carries it. */
async function actionPayload(a: PromotionActor, loc: LocatedPromotion, op: PromotionAction, note: string | undefined) {
  const token = await mintPromotionActionToken(a.keys, { sub: a.by, tenant: a.tenant, promotionId: loc.runId, workflowId: loc.workflowId, action: op });
  return { token, by: a.by, ...(note ? (op === 'approve' ? { comment: note } : { reason: note }) : {}) };
}

/**
 * Approves, aborts or retries (re-evaluates the gates) through the workflow's update, which
 * answers with the resulting state. A refusal comes back as the StellaError it means (403, 409);
 * refusals by the update's validator are audited here (the workflow audits everything else).
 */
export async function updatePromotion(a: PromotionActor, loc: LocatedPromotion, op: PromotionAction, note?: string): Promise<PromotionStatus> {
  await requireRunning(a.db, a.tenant, loc, (s) =>
    op === 'retry'
      ? `promotion ${loc.workflowId} is already ${s.state}${s.reason ? ` (${s.reason})` : ''}; start a new one with stella promotion start`
      : `promotion ${loc.workflowId} is already ${s.state}; nothing to ${op}`,
  );
  const payload = await actionPayload(a, loc, op, note);
  try {
    return await loc.handle.executeUpdate(UPDATES[op], { args: [payload] });
  } catch (e) {
    // Finished between the check above and the update.
    if (e instanceof WorkflowNotFoundError) throw conflict(`promotion ${loc.workflowId} has already finished; nothing to ${op}`);
    if (!(e instanceof WorkflowUpdateFailedError)) throw e;
    const cause = e.cause instanceof ApplicationFailure ? e.cause : undefined;
    const code = (cause?.type && CODES.includes(cause.type) ? cause.type : 'CONFLICT') as StellaCode;
    const reason = cause?.message ?? e.message;
    const audited = (cause?.details?.[0] as { audited?: boolean } | undefined)?.audited === true;
    if (!audited) {
      const state = (await promotionView(a.db, a.tenant, loc)).state;
      const r = { op, channel: 'update' as const, claimedBy: a.by, note, tenant: a.tenant, promotionId: loc.runId, workflowId: loc.workflowId, state };
      await auditAction(a.db, r, { ok: false, code: code === 'FORBIDDEN' ? 'FORBIDDEN' : 'CONFLICT', reason, verifiedAs: a.by });
    }
    throw new StellaError(code, `${op} refused: ${reason}`, { promotionId: loc.runId });
  }
}

/** Retry without waiting for the new results: a signal carrying the caller's action token. */
export async function signalRetry(a: PromotionActor, loc: LocatedPromotion): Promise<void> {
  await requireRunning(
    a.db,
    a.tenant,
    loc,
    (s) => `promotion ${loc.workflowId} is already ${s.state}${s.reason ? ` (${s.reason})` : ''}; start a new one with stella promotion start`,
  );
  await loc.handle.signal(promotionRetrySignal, await actionPayload(a, loc, 'retry', undefined));
}

export interface PromotionListFilter {
  state?: PromotionStateName;
  artifact?: string;
  env?: string;
}

export interface ListedPromotion {
  id: string;
  promotionId: string;
  status: string;
  state: string | null;
  artifact: string | null;
  env: string | null;
  startTime: string;
  closeTime: string | null;
}

/** A tenant's promotions as Temporal visibility lists them (what the Temporal UI shows). */
export async function listPromotionWorkflows(
  t: PromotionTemporal,
  tenant: string,
  f: PromotionListFilter,
  limit: number,
): Promise<{ query: string; items: ListedPromotion[] }> {
  // Callers validate the values (no quotes possible), so interpolation is safe.
  const parts = [`WorkflowType='${promotion.name}'`, `StellaTenant='${tenant}'`];
  if (f.state) parts.push(`StellaPromotionState='${f.state}'`);
  if (f.artifact) parts.push(`StellaArtifactDigest='${f.artifact}'`);
  if (f.env) parts.push(`StellaEnvironment='${f.env}'`);
  const query = parts.join(' AND ');
  const items: ListedPromotion[] = [];
  for await (const w of t.client.workflow.list({ query, pageSize: limit })) {
    items.push({
      id: w.workflowId,
      promotionId: w.runId,
      status: w.status.name,
      state: w.typedSearchAttributes.get(SA.promotionState) ?? null,
      artifact: w.typedSearchAttributes.get(SA.artifact) ?? null,
      env: w.typedSearchAttributes.get(SA.environment) ?? null,
      startTime: w.startTime.toISOString(),
      closeTime: w.closeTime?.toISOString() ?? null,
    });
    if (items.length >= limit) break;
  }
  return { query, items };
}
