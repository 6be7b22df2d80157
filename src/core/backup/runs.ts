/**
 * The backup feature's own tables: backup_runs and restore_runs (what ran here; the backup
 * directory stays authoritative) and restore_batches (exactly-once marks of restored index
 * batches). The only SQL on them.
 */
import type { DbClient } from '../../db/pool';
import type { BatchMarker } from '../../db/dump';
import type { Queryable } from '../evidence/state';

export async function recordBackupStart(q: Queryable, r: { id: string; location: string; actor: string; workflowId: string }): Promise<void> {
  await q.query(`INSERT INTO backup_runs (id, location, actor, workflow_id) VALUES ($1,$2,$3,$4) ON CONFLICT (id) DO NOTHING`, [
    r.id,
    r.location,
    r.actor,
    r.workflowId,
  ]);
}

export async function recordBackupSucceeded(q: Queryable, id: string, summary: unknown): Promise<void> {
  await q.query(`UPDATE backup_runs SET status='succeeded', summary=$2, finished_at=now() WHERE id=$1`, [id, JSON.stringify(summary)]);
}

export async function recordBackupUploaded(q: Queryable, id: string, location: string, summary: unknown): Promise<void> {
  await q.query(`UPDATE backup_runs SET location=$2, summary=$3 WHERE id=$1`, [id, location, JSON.stringify(summary)]);
}

export async function recordBackupFailed(q: Queryable, id: string, error: string): Promise<void> {
  await q.query(`UPDATE backup_runs SET status='failed', summary = summary || $2::jsonb, finished_at=now() WHERE id=$1`, [id, JSON.stringify({ error })]);
}

export async function restoreRunExists(q: Queryable, id: string): Promise<boolean> {
  return ((await q.query('SELECT 1 FROM restore_runs WHERE id=$1', [id])).rowCount ?? 0) > 0;
}

export async function recordRestoreStart(
  q: Queryable,
  r: { id: string; backupId: string | null; toAnchor: string | null; target: string; actor: string },
): Promise<void> {
  await q.query(`INSERT INTO restore_runs (id, backup_id, to_anchor, target, actor, workflow_id) VALUES ($1,$2,$3,$4,$5,$1) ON CONFLICT (id) DO NOTHING`, [
    r.id,
    r.backupId,
    r.toAnchor,
    r.target,
    r.actor,
  ]);
}

export async function recordRestoreProgress(q: Queryable, id: string, phase: string, progress: Record<string, unknown>): Promise<void> {
  await q.query(`UPDATE restore_runs SET phase=$2, progress=$3 WHERE id=$1`, [id, phase, JSON.stringify(progress)]);
}

export async function recordRestoreFinish(q: Queryable, id: string, succeeded: boolean, result: unknown): Promise<void> {
  await q.query(`UPDATE restore_runs SET status=$2, phase='done', result=$3, finished_at=now() WHERE id=$1`, [
    id,
    succeeded ? 'succeeded' : 'failed',
    JSON.stringify(result),
  ]);
}

/** The exactly-once mark of one restored index batch, written in the batch's transaction. */
export function restoreBatchMarker(restoreId: string, table: string, batchNo: number): BatchMarker {
  return {
    async applied(client: DbClient) {
      return (
        ((await client.query('SELECT 1 FROM restore_batches WHERE restore_id=$1 AND tbl=$2 AND batch_no=$3', [restoreId, table, batchNo])).rowCount ?? 0) > 0
      );
    },
    async record(client: DbClient, rows: number) {
      await client.query('INSERT INTO restore_batches (restore_id, tbl, batch_no, rows) VALUES ($1,$2,$3,$4)', [restoreId, table, batchNo, rows]);
    },
  };
}

/** The latest backup runs (diagnostics). */
export async function recentBackupRuns(q: Queryable, limit = 20): Promise<Record<string, unknown>[]> {
  return (await q.query('SELECT id, status, location, actor, started_at, finished_at, summary FROM backup_runs ORDER BY started_at DESC LIMIT $1', [limit]))
    .rows;
}

/** The latest restore runs (diagnostics). */
export async function recentRestoreRuns(q: Queryable, limit = 20): Promise<Record<string, unknown>[]> {
  return (
    await q.query(
      'SELECT id, backup_id, to_anchor, target, actor, status, phase, started_at, finished_at FROM restore_runs ORDER BY started_at DESC LIMIT $1',
      [limit],
    )
  ).rows;
}
