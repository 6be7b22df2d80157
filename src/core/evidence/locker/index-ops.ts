import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../context';
import type { Db } from '../../../db/pool';
import { DigestMismatchError, FsBlobStore, S3BlobStore, type BlobStore } from '../../../blob';
import { transitionItems, validateDigest } from '../index';
import { audit } from '../../audit';
import { notFound } from '../../../lib/errors';
import { mapLimit } from '../../../lib/concurrency';
import { tierStore } from './storage';
import { resolveAcks } from './lifecycle';
import { type Viewer, visibleTenants } from '../viewer';

/**
 * Subject recorded for blobs that `index rebuild` finds without an index row: the artifact they
 * were evidence for is unknown, so they are filed under this sentinel (all zeros, never a real
 * digest) and quarantined until an operator attributes or purges them.
 */
export const UNKNOWN_SUBJECT = `sha256:${'0'.repeat(64)}`;
export const QUARANTINE_LABEL = 'stella.quarantine';

export type LockerOp = 'index.refresh' | 'index.rebuild' | 'index.optimize' | 'retry-store' | 'ingest';

export async function opStart(db: Db, o: { id?: string; tenant: string; op: LockerOp; actor: string; workflowId?: string | null }): Promise<string> {
  const id = o.id ?? `${o.op.replace('.', '-')}-${new Date().toISOString().replace(/[:.]/g, '')}-${randomUUID().slice(0, 8)}`;
  await db.query('INSERT INTO locker_ops (id, tenant_id, op, actor, workflow_id) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (id) DO NOTHING', [
    id,
    o.tenant,
    o.op,
    o.actor,
    o.workflowId ?? null,
  ]);
  return id;
}

export async function opFinish(db: Db, id: string, status: 'succeeded' | 'failed', result: Record<string, unknown>): Promise<void> {
  await db.query('UPDATE locker_ops SET status=$2, result = result || $3::jsonb, finished_at=now() WHERE id=$1', [id, status, JSON.stringify(result)]);
}

/** Where a resumable op (index rebuild) got to: the last digest it committed, or null. */
export async function opCursor(db: Db, opId: string): Promise<string | null> {
  const r = await db.query<{ cursor: string | null }>('SELECT cursor FROM locker_ops WHERE id=$1', [opId]);
  return r.rows[0]?.cursor ?? null;
}

export interface OpRecord {
  status: string;
  cursor: string | null;
  result: Record<string, unknown>;
  startedAt: string | null;
  finishedAt: string | null;
}

/**
 * One op of kind `op` that `viewer` may see (its tenant's; all-tenant ops for admins), as the
 * status routes show it; NOT_FOUND otherwise, the same answer whether the id exists elsewhere or not.
 */
export async function getOp(db: Db, viewer: Viewer, op: LockerOp, opId: string, what: string): Promise<OpRecord> {
  const r = await db.query<{ status: string; cursor: string | null; result: Record<string, unknown>; started_at: Date; finished_at: Date | null }>(
    `SELECT status, cursor, result, started_at, finished_at FROM locker_ops WHERE id=$1 AND op=$2 AND tenant_id = ANY($3)`,
    [opId, op, visibleTenants(viewer)],
  );
  const x = r.rows[0];
  if (!x) throw notFound(`${what} ${opId} not found`);
  return {
    status: x.status,
    cursor: x.cursor,
    result: x.result ?? {},
    startedAt: x.started_at ? new Date(x.started_at).toISOString() : null,
    finishedAt: x.finished_at ? new Date(x.finished_at).toISOString() : null,
  };
}

/** Records a bulk ingest (and its tenant) before its workflow starts; its status resolves within the tenant. */
export async function recordIngest(db: Db, o: { id: string; tenant: string; actor: string }): Promise<void> {
  await opStart(db, { ...o, op: 'ingest', workflowId: o.id });
}

/** Settles a recorded op once its workflow has finished (the status route sees the outcome first). */
export async function settleOp(db: Db, id: string, status: 'succeeded' | 'failed'): Promise<void> {
  await db.query(`UPDATE locker_ops SET status=$2, finished_at=now() WHERE id=$1 AND status='running'`, [id, status]);
}

export async function latestOp(db: Db, viewer: Viewer, op: LockerOp) {
  const r = await db.query(`SELECT * FROM locker_ops WHERE tenant_id = ANY($1) AND op=$2 ORDER BY started_at DESC LIMIT 1`, [visibleTenants(viewer), op]);
  const x = r.rows[0];
  return x
    ? {
        id: x.id as string,
        status: x.status as string,
        actor: x.actor as string,
        startedAt: new Date(x.started_at).toISOString(),
        finishedAt: x.finished_at ? new Date(x.finished_at).toISOString() : null,
        result: x.result as Record<string, unknown>,
      }
    : null;
}

const OUR_TABLES = ['evidence_items', 'evidence_subjects', 'evidence_edges', 'evidence_log', 'verify_runs', 'verify_results', 'audit_log', 'locker_ops'];

/** SP-002 step 1: row counts, dangling links, unindexed blobs (sampled unless full), last maintenance. */
export async function indexStatus(ctx: AppContext, viewer: Viewer, opts: { full?: boolean; sample?: number } = {}) {
  const { tenant } = viewer;
  const c = async (sql: string, params: unknown[] = [tenant]) => Number((await ctx.db.query(sql, params)).rows[0].n);
  const [items, subjects, edges, logEntries, danglingParents, danglingChildren, itemsWithoutSubjects, itemsWithoutLog, quarantined, corrupted, tableBytes] =
    await Promise.all([
      c('SELECT count(*) AS n FROM evidence_items WHERE tenant_id=$1'),
      c('SELECT count(*) AS n FROM evidence_subjects WHERE tenant_id=$1'),
      c('SELECT count(*) AS n FROM evidence_edges WHERE tenant_id=$1'),
      c('SELECT count(*) AS n FROM evidence_log WHERE tenant_id=$1'),
      c(
        'SELECT count(*) AS n FROM evidence_edges e WHERE e.tenant_id=$1 AND NOT EXISTS (SELECT 1 FROM evidence_items i WHERE i.tenant_id=e.tenant_id AND i.id=e.parent_id)',
      ),
      c(
        'SELECT count(*) AS n FROM evidence_edges e WHERE e.tenant_id=$1 AND NOT EXISTS (SELECT 1 FROM evidence_items i WHERE i.tenant_id=e.tenant_id AND i.id=e.child_id)',
      ),
      c(
        'SELECT count(*) AS n FROM evidence_items i WHERE i.tenant_id=$1 AND NOT EXISTS (SELECT 1 FROM evidence_subjects s WHERE s.tenant_id=i.tenant_id AND s.item_id=i.id)',
      ),
      c(
        'SELECT count(*) AS n FROM evidence_items i WHERE i.tenant_id=$1 AND NOT EXISTS (SELECT 1 FROM evidence_log l WHERE l.tenant_id=i.tenant_id AND l.item_id=i.id)',
      ),
      c(`SELECT count(*) AS n FROM evidence_items WHERE tenant_id=$1 AND state='quarantined'`),
      c(`SELECT count(*) AS n FROM evidence_items WHERE tenant_id=$1 AND state='corrupted'`),
      c(`SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))),0) AS n FROM unnest($1::text[]) t`, [OUR_TABLES]),
    ]);
  // Blobs with no index row in any tenant (content is shared across tenants).
  const limit = opts.full ? Infinity : Math.max(1, opts.sample ?? 1000);
  let scanned = 0;
  let unindexed = 0;
  let page: string[] = [];
  const flush = async () => {
    if (!page.length) return;
    const r = await ctx.db.query('SELECT DISTINCT id FROM evidence_items WHERE id = ANY($1)', [page]);
    unindexed += page.length - r.rowCount!;
    page = [];
  };
  for await (const b of ctx.blobs.primary.list()) {
    page.push(b.digest);
    scanned++;
    if (page.length >= 1000) await flush();
    if (scanned >= limit) break;
  }
  await flush();
  const [lastRebuild, lastRefresh, lastOptimize] = await Promise.all([
    latestOp(ctx.db, viewer, 'index.rebuild'),
    latestOp(ctx.db, viewer, 'index.refresh'),
    latestOp(ctx.db, viewer, 'index.optimize'),
  ]);
  const problems = danglingChildren + itemsWithoutSubjects + itemsWithoutLog + unindexed;
  return {
    tenant,
    healthy: problems === 0,
    rows: { items, subjects, edges, logEntries, quarantined, corrupted },
    danglingEdges: { parentNotIndexed: danglingParents, childNotIndexed: danglingChildren },
    itemsWithoutSubjects,
    itemsWithoutLogLeaf: itemsWithoutLog,
    blobs: { scanned, unindexed, mode: opts.full ? 'full' : 'sample', complete: opts.full || scanned < limit },
    indexBytes: tableBytes,
    lastRebuild,
    lastRefresh,
    lastOptimize,
  };
}

export interface RefreshChange {
  id: string;
  from: string;
  to: string;
  reason: string;
}

/**
 * SP-002 incremental refresh: reconcile this tenant's index rows with the store by stat (cheap,
 * re-hashing only corrupted rows). A present row whose blob is gone or has the wrong size becomes
 * corrupted; a corrupted row (whatever flagged it: missing, size or hash mismatch, mark-corrupted)
 * whose blob is back and re-hashes intact becomes present again and its acknowledgement is settled
 * as repaired. Every state change is audited. Hash mismatches of present rows are left to verify.
 */
export async function indexRefresh(ctx: AppContext, tenant: string, actor: string, opts: { dryRun?: boolean } = {}) {
  const opId = opts.dryRun ? null : await opStart(ctx.db, { tenant, op: 'index.refresh', actor });
  const changes: RefreshChange[] = [];
  let checked = 0;
  let after = '';
  try {
    for (;;) {
      const r = await ctx.db.query(
        `SELECT id, size_bytes, state, state_reason, tier FROM evidence_items WHERE tenant_id=$1 AND state IN ('present','corrupted') AND id > $2 ORDER BY id LIMIT 500`,
        [tenant, after],
      );
      if (!r.rowCount) break;
      const found = await mapLimit(r.rows, 16, async (row) => ({ row, st: await tierStore(ctx, row.tier).stat(row.id) }));
      for (const { row, st } of found) {
        checked++;
        const size = Number(row.size_bytes);
        let change: RefreshChange | null = null;
        if (row.state === 'present') {
          if (!st) change = { id: row.id, from: 'present', to: 'corrupted', reason: 'missing-blob' };
          else if (st.size !== size) change = { id: row.id, from: 'present', to: 'corrupted', reason: `size-mismatch: index ${size}, store ${st.size}` };
        } else if (st && st.size === size) {
          // Whatever flagged it (missing, size, hash mismatch, an operator): after a repair the blob re-hashes intact.
          const h = await tierStore(ctx, row.tier).hash(row.id);
          if (h?.actual === row.id) change = { id: row.id, from: 'corrupted', to: 'present', reason: 'index refresh: blob present and intact again' };
        }
        if (change) {
          changes.push(change);
          if (!opts.dryRun) {
            await ctx.evidence.setState(tenant, change.id, change.to as 'present' | 'corrupted', change.reason, actor);
            if (change.to === 'present') await resolveAcks(ctx.db, tenant, [change.id], 'repaired');
          }
        }
      }
      after = r.rows[r.rows.length - 1].id;
    }
    const danglingEdges = Number(
      (
        await ctx.db.query(
          'SELECT count(*) AS n FROM evidence_edges e WHERE e.tenant_id=$1 AND NOT EXISTS (SELECT 1 FROM evidence_items i WHERE i.tenant_id=e.tenant_id AND i.id=e.parent_id)',
          [tenant],
        )
      ).rows[0].n,
    );
    if (!opts.dryRun) await ctx.db.query('ANALYZE evidence_items, evidence_subjects, evidence_edges');
    const result = {
      checked,
      changed: changes.length,
      markedCorrupted: changes.filter((c) => c.to === 'corrupted').length,
      restored: changes.filter((c) => c.to === 'present').length,
      danglingEdges,
    };
    if (opId) await opFinish(ctx.db, opId, 'succeeded', result);
    return { opId, dryRun: !!opts.dryRun, ...result, changes };
  } catch (e) {
    if (opId) await opFinish(ctx.db, opId, 'failed', { error: (e as Error).message, checked });
    throw e;
  }
}

/** Best-effort media type of bytes with no index row (index rebuild). */
export function sniffMediaType(data: Buffer): string {
  const head = data.subarray(0, 512);
  if (head[0] === 0x1f && head[1] === 0x8b) return 'application/gzip';
  if (head.readUInt32LE?.(0) === 0xfd2fb528) return 'application/zstd';
  if (head.subarray(0, 5).toString('latin1') === '%PDF-') return 'application/pdf';
  if (data.length > 262 && data.subarray(257, 262).toString('latin1') === 'ustar') return 'application/x-tar';
  const text = data.toString('utf8');
  const trimmed = text.trimStart();
  if ((trimmed.startsWith('{') || trimmed.startsWith('[')) && data.length <= 64 * 1024 * 1024) {
    try {
      const j = JSON.parse(text) as Record<string, unknown>;
      if (j && typeof j === 'object' && !Array.isArray(j)) {
        if (typeof j.payloadType === 'string' && typeof j.payload === 'string' && Array.isArray(j.signatures)) return 'application/vnd.dsse.envelope.v1+json';
        if (typeof j._type === 'string' && String(j._type).startsWith('https://in-toto.io/Statement')) return 'application/vnd.in-toto+json';
        if (j.bomFormat === 'CycloneDX') return 'application/vnd.cyclonedx+json';
        if (typeof j.spdxVersion === 'string') return 'application/spdx+json';
      }
      return 'application/json';
    } catch {
      /* not JSON after all */
    }
  }
  if (!head.includes(0) && Buffer.from(text, 'utf8').equals(data)) return 'text/plain';
  return 'application/octet-stream';
}

export interface RebuildInput {
  opId: string;
  tenant: string;
  actor: string;
}
export interface RebuildTotals {
  scanned: number;
  reindexed: number;
  alreadyIndexed: number;
  damaged: number;
  damagedIds: string[];
  reindexedIds: string[];
}

/**
 * SP-002 / INC-002 full rebuild: scan every blob in the primary store (sorted by digest) and
 * index those no tenant's index knows: kind `other`, sniffed media type, subject UNKNOWN_SUBJECT,
 * state quarantined, audited. A blob whose bytes do not hash to its name is reported as damaged
 * and not indexed. `resumeAfter` skips what a previous attempt did (activity heartbeats).
 */
export async function rebuildScan(
  ctx: AppContext,
  input: RebuildInput,
  resumeAfter: string | null,
  onProgress: (last: string, t: RebuildTotals) => void,
  tick: () => void = () => {},
): Promise<RebuildTotals> {
  const t = await resumedTotals(ctx, input.opId, resumeAfter);
  let page: string[] = [];
  const flush = async () => {
    if (!page.length) return;
    await indexPage(ctx, input, page, t);
    const last = page[page.length - 1]!;
    page = [];
    await ctx.db.query('UPDATE locker_ops SET cursor=$2, result = result || $3::jsonb WHERE id=$1', [input.opId, last, JSON.stringify(t)]);
    onProgress(last, t);
  };
  for await (const b of ctx.blobs.primary.list()) {
    tick();
    if (resumeAfter && b.digest <= resumeAfter) continue;
    page.push(b.digest);
    if (page.length >= 200) await flush();
  }
  await flush();
  return t;
}

/** Totals a previous attempt committed (when resuming after its cursor), or zeros. */
async function resumedTotals(ctx: AppContext, opId: string, resumeAfter: string | null): Promise<RebuildTotals> {
  const zero: RebuildTotals = { scanned: 0, reindexed: 0, alreadyIndexed: 0, damaged: 0, damagedIds: [], reindexedIds: [] };
  if (!resumeAfter) return zero;
  const prev = await ctx.db.query('SELECT result FROM locker_ops WHERE id=$1', [opId]);
  const base = (prev.rows[0]?.result ?? {}) as Partial<RebuildTotals>;
  return { ...zero, ...Object.fromEntries(Object.entries(base).filter(([k]) => k in zero)) } as RebuildTotals;
}

/** One page of store digests: those no tenant indexes are ingested quarantined (damaged ones only counted). */
async function indexPage(ctx: AppContext, input: RebuildInput, page: string[], t: RebuildTotals): Promise<void> {
  const r = await ctx.db.query('SELECT DISTINCT id FROM evidence_items WHERE id = ANY($1)', [page]);
  const known = new Set(r.rows.map((x) => x.id as string));
  for (const d of page) {
    t.scanned++;
    if (known.has(d)) {
      t.alreadyIndexed++;
      continue;
    }
    const data = await readUnlessDamaged(ctx, d);
    if (!data) {
      t.damaged++;
      if (t.damagedIds.length < 1000) t.damagedIds.push(d);
      continue;
    }
    if (await quarantineUnindexed(ctx, input, d, data)) {
      t.reindexed++;
      if (t.reindexedIds.length < 1000) t.reindexedIds.push(d);
    } else t.alreadyIndexed++;
  }
}

/** A blob's bytes, or null when they do not hash to its name. */
async function readUnlessDamaged(ctx: AppContext, d: string): Promise<Buffer | null> {
  try {
    return await ctx.blobs.primary.getBuffer(d);
  } catch (e) {
    if (e instanceof DigestMismatchError || (e as { code?: string }).code === 'DIGEST_MISMATCH') return null;
    throw e;
  }
}

/** Indexes an unindexed blob under the unknown subject, quarantined; true when this call created the row. */
async function quarantineUnindexed(ctx: AppContext, input: RebuildInput, d: string, data: Buffer): Promise<boolean> {
  const mediaType = sniffMediaType(data);
  const res = await ctx.evidence.ingest({
    tenant: input.tenant,
    data,
    kind: 'other',
    mediaType,
    subjects: [UNKNOWN_SUBJECT],
    labels: { [QUARANTINE_LABEL]: 'index-rebuild', 'stella.rebuild-op': input.opId },
    producer: { type: 'index-rebuild', op: input.opId, actor: input.actor },
  });
  await transitionItems(ctx.db, input.tenant, [d], {
    from: ['present'],
    to: 'quarantined',
    reason: 'index rebuild: blob was in the store without an index row; subject unknown',
  });
  // Audit once: a retried page finds the row already created.
  if (!res.created) return false;
  await audit(ctx.db, {
    tenant: input.tenant,
    actor: input.actor,
    action: 'evidence.index.rebuild.reindexed',
    target: d,
    reason: 'blob present but not indexed',
    details: { opId: input.opId, mediaType, size: data.length, subject: UNKNOWN_SUBJECT },
  });
  return true;
}

export async function rebuildFinish(ctx: AppContext, input: RebuildInput, t: RebuildTotals) {
  await opFinish(ctx.db, input.opId, 'succeeded', { ...t });
  await audit(ctx.db, {
    tenant: input.tenant,
    actor: input.actor,
    action: 'evidence.index.rebuild',
    target: input.opId,
    details: { scanned: t.scanned, reindexed: t.reindexed, damaged: t.damaged },
  });
  return { opId: input.opId, ...t };
}

/** SP-002 step 3: VACUUM ANALYZE and REINDEX our tables (outside a transaction, as PostgreSQL requires). */
export async function indexOptimize(ctx: AppContext, tenant: string, actor: string) {
  const opId = await opStart(ctx.db, { tenant: '*', op: 'index.optimize', actor });
  const before = Number(
    (await ctx.db.query(`SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))),0) AS n FROM unnest($1::text[]) t`, [OUR_TABLES])).rows[0].n,
  );
  const steps: { table: string; ms: number }[] = [];
  try {
    for (const t of OUR_TABLES) {
      const started = performance.now();
      await ctx.db.query(`VACUUM (ANALYZE) ${t}`);
      await ctx.db.query(`REINDEX TABLE ${t}`);
      steps.push({ table: t, ms: Math.round(performance.now() - started) });
    }
  } catch (e) {
    await opFinish(ctx.db, opId, 'failed', { error: (e as Error).message });
    throw e;
  }
  const after = Number(
    (await ctx.db.query(`SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))),0) AS n FROM unnest($1::text[]) t`, [OUR_TABLES])).rows[0].n,
  );
  const result = { tables: steps, bytesBefore: before, bytesAfter: after };
  await opFinish(ctx.db, opId, 'succeeded', result);
  await audit(ctx.db, { tenant, actor, action: 'evidence.index.optimize', target: opId, details: result });
  return { opId, ...result };
}

export function blobLocation(store: BlobStore, id: string): string {
  if (store instanceof FsBlobStore) return store.pathFor(id);
  if (store instanceof S3BlobStore) return `s3://${/^s3:\/\/([^/]+)/.exec(store.location)?.[1] ?? '?'}/${store.keyFor(id)}`;
  return `${store.location}/${id}`;
}

/** INC-002: the index row(s) for an id — every tenant's for admins (`'*'`) — and where the blob lives; NOT_FOUND without a row of `tenants`. */
export async function indexLookup(ctx: AppContext, id: string, tenants: string[] | '*') {
  validateDigest(id, 'evidence id');
  const r =
    tenants === '*'
      ? await ctx.db.query(
          'SELECT i.*, l.seq FROM evidence_items i LEFT JOIN evidence_log l ON l.tenant_id=i.tenant_id AND l.item_id=i.id WHERE i.id=$1 ORDER BY i.tenant_id',
          [id],
        )
      : await ctx.db.query(
          'SELECT i.*, l.seq FROM evidence_items i LEFT JOIN evidence_log l ON l.tenant_id=i.tenant_id AND l.item_id=i.id WHERE i.id=$1 AND i.tenant_id = ANY($2) ORDER BY i.tenant_id',
          [id, tenants],
        );
  // Blobs are shared across tenants: without an index row of its own tenants a caller learns nothing about the store.
  if (!r.rowCount && tenants !== '*') throw notFound(`evidence ${id} is not in the index or the store`);
  const primary = tierStore(ctx, r.rows[0]?.tier);
  const [pst, rst] = await Promise.all([primary.stat(id), ctx.blobs.replica?.stat(id) ?? Promise.resolve(null)]);
  if (!r.rowCount && !pst) throw notFound(`evidence ${id} is not in the index or the store`);
  return {
    id,
    indexed: r.rowCount! > 0,
    rows: r.rows.map((x) => ({
      tenant: x.tenant_id,
      kind: x.kind,
      mediaType: x.media_type,
      size: Number(x.size_bytes),
      state: x.state,
      stateReason: x.state_reason,
      tier: x.tier,
      createdAt: new Date(x.created_at).toISOString(),
      logSeq: x.seq ?? null,
    })),
    blob: { location: blobLocation(primary, id), present: !!pst, size: pst?.size ?? null, modifiedAt: pst?.modifiedAt?.toISOString() ?? null },
    replica: ctx.blobs.replica ? { location: blobLocation(ctx.blobs.replica, id), present: !!rst, size: rst?.size ?? null } : null,
  };
}
