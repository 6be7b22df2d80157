/** The audit log and the timeline: append-only records of who changed what. */
import type { Db, DbClient } from '../../db/pool';

export interface AuditEntry {
  tenant: string;
  actor: string;
  action: string;
  target?: string;
  reason?: string;
  details?: Record<string, unknown>;
}

/** Appends to the audit log; every destructive or state-changing action calls this. */
export async function audit(db: Db | DbClient, e: AuditEntry): Promise<void> {
  await db.query('INSERT INTO audit_log (tenant_id, actor, action, target, reason, details) VALUES ($1,$2,$3,$4,$5,$6)', [
    e.tenant,
    e.actor,
    e.action,
    e.target ?? null,
    e.reason ?? null,
    JSON.stringify(e.details ?? {}),
  ]);
}

export async function timelineEvent(db: Db | DbClient, tenant: string, type: string, subject: string | null, payload: Record<string, unknown>): Promise<void> {
  await db.query('INSERT INTO timeline_events (tenant_id, type, subject, payload) VALUES ($1,$2,$3,$4)', [tenant, type, subject, JSON.stringify(payload)]);
}

export interface AuditTrailEntry {
  at: Date;
  actor: string;
  action: string;
  reason: string | null;
  details: Record<string, unknown>;
}

/** The audit trail of one target (an evidence item id), oldest first. */
export async function auditTrailOf(db: Db | DbClient, tenant: string, target: string): Promise<AuditTrailEntry[]> {
  const r = await db.query<AuditTrailEntry>('SELECT at, actor, action, reason, details FROM audit_log WHERE tenant_id=$1 AND target=$2 ORDER BY id', [
    tenant,
    target,
  ]);
  return r.rows;
}
