import type { Db } from '../../db/pool';
import { withTransaction } from '../../db/pool';
import { audit, timelineEvent } from '../audit';
import type { Approval, GateResult, PromotionInput, PromotionStateName, PromotionStatus } from './types';
import { FINAL_STATES } from './types';

/** PostgreSQL side of promotions: the row per run, gate results per attempt, final record. */

export interface RecordEvaluation {
  promotionId: string;
  workflowId: string;
  input: PromotionInput;
  imageRef: string | null;
  policyEnv: string;
  policyVersion: number | null;
  policyChecksum: string;
  deadline: string;
  attempt: number;
  gates: GateResult[];
}

/**
 * One statement (atomic, one round trip): creates the promotion row on the first attempt,
 * refreshes its gate snapshot, and upserts this attempt's gate results. Idempotent: a
 * retried or replayed activity writes the same rows again.
 */
export async function recordEvaluation(db: Db, e: RecordEvaluation): Promise<void> {
  const gates = e.gates.map((g) => ({
    gate: g.name,
    required: g.required,
    passed: g.passed,
    detail: g.detail,
    evidence_id: g.evidenceId ?? null,
    missing: g.missing ?? null,
  }));
  await db.query(
    `WITH p AS (
       INSERT INTO promotions (tenant_id, id, workflow_id, artifact_digest, from_env, to_env, state, requested_by, image_ref, policy_env, policy_version, deadline, attempts, gate_snapshot, policy_checksum)
       VALUES ($1,$2,$3,$4,$5,$6,'evaluating',$7,$8,$9,$10,$11,$12,$13,$15)
       ON CONFLICT (tenant_id, id) DO UPDATE SET gate_snapshot=EXCLUDED.gate_snapshot, attempts=GREATEST(promotions.attempts, EXCLUDED.attempts),
         image_ref=COALESCE(EXCLUDED.image_ref, promotions.image_ref), updated_at=now(),
         -- the policy of the latest attempt (a retry may meet a newer version)
         policy_env=CASE WHEN EXCLUDED.attempts >= promotions.attempts THEN EXCLUDED.policy_env ELSE promotions.policy_env END,
         policy_version=CASE WHEN EXCLUDED.attempts >= promotions.attempts THEN EXCLUDED.policy_version ELSE promotions.policy_version END,
         policy_checksum=CASE WHEN EXCLUDED.attempts >= promotions.attempts THEN EXCLUDED.policy_checksum ELSE promotions.policy_checksum END
       RETURNING id)
     INSERT INTO promotion_gate_results (tenant_id, promotion_id, attempt, gate, required, passed, detail, evidence_id, missing)
     SELECT $1, (SELECT id FROM p), $12, g.gate, g.required, g.passed, g.detail, g.evidence_id, g.missing
     FROM jsonb_to_recordset($14::jsonb) AS g(gate text, required boolean, passed boolean, detail text, evidence_id text, missing jsonb)
     ON CONFLICT (tenant_id, promotion_id, attempt, gate) DO UPDATE SET required=EXCLUDED.required, passed=EXCLUDED.passed, detail=EXCLUDED.detail,
       evidence_id=EXCLUDED.evidence_id, missing=EXCLUDED.missing, evaluated_at=now()`,
    [
      e.input.tenant,
      e.promotionId,
      e.workflowId,
      e.input.artifactDigest,
      e.input.fromEnv,
      e.input.toEnv,
      e.input.requestedBy,
      e.imageRef,
      e.policyEnv,
      e.policyVersion,
      e.deadline,
      e.attempt,
      JSON.stringify(e.gates),
      JSON.stringify(gates),
      e.policyChecksum,
    ],
  );
}

/** Non-final state changes (evaluating, waiting-evidence, waiting-approval); never overwrites a final state. */
export async function setPromotionState(
  db: Db,
  q: { tenant: string; promotionId: string; state: PromotionStateName; reason?: string | null; approvals?: Approval[] },
): Promise<void> {
  await db.query(
    `UPDATE promotions SET state=$3, reason=$4, approvals=COALESCE($5, approvals), updated_at=now()
     WHERE tenant_id=$1 AND id=$2 AND state NOT IN ('promoted','failed','aborted')`,
    [q.tenant, q.promotionId, q.state, q.reason ?? null, q.approvals ? JSON.stringify(q.approvals) : null],
  );
}

export interface FinalizePromotion {
  tenant: string;
  promotionId: string;
  state: 'promoted' | 'failed' | 'aborted';
  actor: string;
  reason: string | null;
  gates: GateResult[];
  approvals: Approval[];
}

/**
 * The final record: row state + gate snapshot, an audit entry and a timeline event, in one
 * transaction. Idempotent: a retried activity finds the row already final and adds nothing.
 */
export async function finalizePromotion(db: Db, f: FinalizePromotion): Promise<{ changed: boolean }> {
  return withTransaction(db, async (tx) => {
    const r = await tx.query(
      `UPDATE promotions SET state=$3, reason=$4, gate_snapshot=$5, approvals=$6, updated_at=now(), finished_at=now()
       WHERE tenant_id=$1 AND id=$2 AND state NOT IN ('promoted','failed','aborted')
       RETURNING workflow_id, artifact_digest, from_env, to_env, requested_by, attempts, policy_env, policy_version, policy_checksum`,
      [f.tenant, f.promotionId, f.state, f.reason, JSON.stringify(f.gates), JSON.stringify(f.approvals)],
    );
    if (!r.rowCount) return { changed: false };
    const row = r.rows[0];
    const details = {
      promotionId: f.promotionId,
      workflowId: row.workflow_id,
      artifact: row.artifact_digest,
      from: row.from_env,
      to: row.to_env,
      requestedBy: row.requested_by,
      attempts: row.attempts,
      policy: row.policy_env ? { env: row.policy_env, version: row.policy_version, checksum: row.policy_checksum } : null,
      gates: f.gates.map((g) => ({ name: g.name, passed: g.passed, evidenceId: g.evidenceId ?? null })),
    };
    await audit(tx, { tenant: f.tenant, actor: f.actor, action: `promotion.${f.state}`, target: row.artifact_digest, reason: f.reason ?? undefined, details });
    await timelineEvent(tx, f.tenant, `promotion.${f.state}`, row.artifact_digest, { ...details, reason: f.reason });
    return { changed: true };
  });
}

/** A promotions row as pg returns it. */
interface Row {
  id: string;
  workflow_id: string;
  tenant_id: string;
  artifact_digest: string;
  from_env: string;
  to_env: string;
  requested_by: string;
  image_ref: string | null;
  state: PromotionStateName;
  gate_snapshot: GateResult[] | null;
  attempts: number;
  deadline: Date | string | null;
  approvals: Approval[] | null;
  policy_env: string | null;
  policy_version: number | null;
  policy_checksum: string | null;
  reason: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  finished_at: Date | string | null;
}

export function statusFromRow(row: Row): PromotionStatus {
  return {
    promotionId: row.id,
    workflowId: row.workflow_id,
    tenant: row.tenant_id,
    artifactDigest: row.artifact_digest,
    fromEnv: row.from_env,
    toEnv: row.to_env,
    requestedBy: row.requested_by,
    imageRef: row.image_ref,
    state: row.state,
    gates: row.gate_snapshot ?? [],
    attempts: row.attempts,
    deadline: row.deadline ? new Date(row.deadline).toISOString() : null,
    approvals: row.approvals ?? [],
    approvalsRequired: 0,
    autoGenerate: false,
    policy: row.policy_env ? { env: row.policy_env, version: row.policy_version, checksum: row.policy_checksum ?? '' } : null,
    reason: row.reason,
  };
}

/** By promotion id (run id) or by workflow id (its newest run). */
export async function findPromotion(
  db: Db,
  tenant: string,
  id: string,
): Promise<(PromotionStatus & { createdAt: string; updatedAt: string; finishedAt: string | null }) | null> {
  const r = await db.query<Row>(`SELECT * FROM promotions WHERE tenant_id=$1 AND (id=$2 OR workflow_id=$2) ORDER BY created_at DESC LIMIT 1`, [tenant, id]);
  if (!r.rowCount) return null;
  const row = r.rows[0];
  return {
    ...statusFromRow(row),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
    finishedAt: row.finished_at ? new Date(row.finished_at).toISOString() : null,
  };
}

export async function listPromotionRows(db: Db, q: { tenant: string; state?: string; artifact?: string; limit?: number; active?: boolean }) {
  const params: unknown[] = [q.tenant];
  const where = ['tenant_id=$1'];
  if (q.state) {
    params.push(q.state);
    where.push(`state=$${params.length}`);
  }
  if (q.artifact) {
    params.push(q.artifact);
    where.push(`artifact_digest=$${params.length}`);
  }
  if (q.active) where.push(`state NOT IN ('promoted','failed','aborted')`);
  params.push(Math.min(Math.max(q.limit ?? 50, 1), 500));
  const r = await db.query<Row>(`SELECT * FROM promotions WHERE ${where.join(' AND ')} ORDER BY updated_at DESC LIMIT $${params.length}`, params);
  return r.rows.map((row) => ({ ...statusFromRow(row), createdAt: new Date(row.created_at).toISOString(), updatedAt: new Date(row.updated_at).toISOString() }));
}

/** Promotions currently blocked on evidence, with what each one misses (doctor, gauge). */
export async function blockedOnEvidence(db: Db, tenant?: string) {
  const r = await db.query<Row>(
    `SELECT * FROM promotions WHERE state='waiting-evidence' ${tenant ? 'AND tenant_id=$1' : ''} ORDER BY updated_at`,
    tenant ? [tenant] : [],
  );
  return r.rows.map((row) => {
    const s = statusFromRow(row);
    return { ...s, waitingSince: new Date(row.updated_at).toISOString(), missing: s.gates.filter((g) => g.required && !g.passed) };
  });
}

export const isFinal = (s: string) => (FINAL_STATES as readonly string[]).includes(s);
