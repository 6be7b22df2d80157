/** What the diagnostics bundle (src/core/backup) reads from the locker tables (owned by locker). */
import type { Queryable } from '../../evidence/state';

/** The latest integrity verification runs, all tenants (diagnostics). */
export async function recentVerifyRuns(q: Queryable, limit = 10): Promise<Record<string, unknown>[]> {
  const r = await q.query(
    'SELECT id, tenant_id, mode, status, total, checked, ok, failed, to_anchor, started_at, finished_at FROM verify_runs ORDER BY started_at DESC LIMIT $1',
    [limit],
  );
  return r.rows;
}

/** The latest locker operations (index rebuilds, repairs, bulk ingests), all tenants (diagnostics). */
export async function recentLockerOps(q: Queryable, limit = 20): Promise<Record<string, unknown>[]> {
  const r = await q.query('SELECT id, op, status, actor, started_at, finished_at FROM locker_ops ORDER BY started_at DESC LIMIT $1', [limit]);
  return r.rows;
}
