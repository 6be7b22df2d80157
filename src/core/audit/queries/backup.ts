/** What the diagnostics bundle (src/core/backup) reads from the audit log (owned by audit). */
import type { Queryable } from '../../evidence/state';

/** The newest audit entries of a tenant and of the whole locker ('*'), newest first. */
export async function recentAuditEntries(q: Queryable, tenant: string, limit: number): Promise<Record<string, unknown>[]> {
  const r = await q.query(
    `SELECT id, tenant_id, at, actor, action, target, reason, details FROM audit_log WHERE tenant_id IN ($1, '*') ORDER BY id DESC LIMIT $2`,
    [tenant, limit],
  );
  return r.rows;
}
