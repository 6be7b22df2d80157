import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { AppContext } from '../context';
import { badInput } from '../../lib/errors';
import { audit } from '../audit';
import { createManifestTarStream, verifyManifestArchive, type ManifestTarStream, type ManifestProblem, type ArchiveManifest } from '../../archive';
import { startRun, purgeBatch, finishRun, countSkipped, getRun, type RetentionRunSummary } from './purge';
import { randomUUID } from 'node:crypto';

/**
 * `stella evidence archive`: a manifest archive (src/archive/manifest.ts) of every present item
 * older than N days. Layout: `items/sha256/<hex>` per item (path order = id order), then
 * manifest.json listing each entry's sha256/size with meta {id, kind, mediaType, createdAt,
 * subjects, tier}. Verifiable offline with `stella evidence verify --offline --input`.
 */
export const ARCHIVE_KIND = 'evidence-archive';
const PAGE = 500;

export const archivePath = (id: string) => `items/sha256/${id.slice(7)}`;

function scopeSql(includeReplay: boolean): string {
  return `tenant_id=$1 AND state='present' AND created_at < now() - make_interval(days => $2::int) ${includeReplay ? '' : `AND kind <> 'replay-bundle'`}`;
}

export async function archivePlan(ctx: AppContext, tenant: string, olderThanDays: number, includeReplay: boolean) {
  if (!Number.isInteger(olderThanDays) || olderThanDays < 0) throw badInput('older-than must be a whole number of days');
  const r = await ctx.db.query(`SELECT count(*)::int AS n, coalesce(sum(size_bytes),0)::bigint AS bytes FROM evidence_items WHERE ${scopeSql(includeReplay)}`, [
    tenant,
    olderThanDays,
  ]);
  const s = includeReplay
    ? { rows: [{ n: 0 }] }
    : await ctx.db.query(`SELECT count(*)::int AS n FROM evidence_items WHERE ${scopeSql(true)} AND kind = 'replay-bundle'`, [tenant, olderThanDays]);
  return { items: r.rows[0].n as number, bytes: Number(r.rows[0].bytes), skippedReplayBundles: s.rows[0].n as number };
}

/**
 * Streams the archive (uncompressed tar) for a tenant. Replay bundles are included only when
 * the caller may read them (replay:read); otherwise they are left out and counted in the
 * manifest meta. A blob that fails its digest check aborts the stream (never a silently bad archive).
 */
export function streamArchive(
  ctx: AppContext,
  q: { tenant: string; olderThanDays: number; includeReplay: boolean; skippedReplayBundles: number; onError?: (e: Error) => void },
): ManifestTarStream {
  const createdAt = new Date().toISOString();
  const w = createManifestTarStream({
    kind: ARCHIVE_KIND,
    createdAt,
    meta: { tenant: q.tenant, olderThanDays: q.olderThanDays, skippedReplayBundles: q.skippedReplayBundles },
  });
  void (async () => {
    let after = '';
    for (;;) {
      const r = await ctx.db.query(
        `SELECT id, kind, media_type, size_bytes, tier, created_at FROM evidence_items WHERE ${scopeSql(q.includeReplay)} AND id > $3 ORDER BY id LIMIT ${PAGE}`,
        [q.tenant, q.olderThanDays, after],
      );
      if (!r.rowCount) break;
      const subs = await ctx.db.query(
        'SELECT item_id, artifact_digest FROM evidence_subjects WHERE tenant_id=$1 AND item_id = ANY($2) ORDER BY artifact_digest',
        [q.tenant, r.rows.map((x) => x.id)],
      );
      for (const row of r.rows) {
        const stream = await ctx.evidence.storeOf(row).get(row.id);
        await w.addFile(archivePath(row.id), Number(row.size_bytes), stream, {
          sha256: row.id,
          mediaType: row.media_type,
          meta: {
            id: row.id,
            kind: row.kind,
            createdAt: new Date(row.created_at).toISOString(),
            tier: row.tier,
            subjects: subs.rows.filter((s) => s.item_id === row.id).map((s) => s.artifact_digest),
          },
        });
      }
      after = r.rows[r.rows.length - 1].id;
    }
    await w.finalize();
  })().catch((e: Error) => {
    q.onError?.(e);
    w.abort(e);
  });
  return w;
}

export interface OfflineArchiveVerification {
  ok: boolean;
  file: string;
  kind: string | null;
  items: number;
  manifestSha256: string | null;
  problems: (ManifestProblem & { item: string | null })[];
}

/** Local verification of an archive / evidence pack: every body re-hashed against manifest.json. */
export async function verifyArchiveFile(file: string): Promise<OfflineArchiveVerification> {
  const st = await fsp.stat(file).catch(() => null);
  if (!st?.isFile()) throw badInput(`${file}: no such file`);
  // Archives of a whole locker are big: raise the reader's default limits (still bounded).
  const v = await verifyManifestArchive(file, { maxEntries: 10_000_000, maxTotalBytes: 16 * 1024 ** 4, maxEntryBytes: 1024 ** 4 });
  const byPath = new Map((v.manifest?.entries ?? []).map((e) => [e.path, e]));
  const itemOf = (path: string) => {
    const m = byPath.get(path)?.meta as { id?: string } | undefined;
    if (m?.id) return m.id;
    const x = /^items\/sha256\/([0-9a-f]{64})$/.exec(path);
    return x ? `sha256:${x[1]}` : null;
  };
  return {
    ok: v.ok,
    file,
    kind: (v.manifest as ArchiveManifest | null)?.kind ?? null,
    items: v.manifest?.entries.length ?? 0,
    manifestSha256: v.manifestSha256,
    problems: v.problems.map((p) => ({ ...p, item: itemOf(p.path) })),
  };
}

/**
 * `archive --delete-archived`: purges exactly the named items (verified into an archive by the
 * caller), respecting legal holds, policy-level holds and open promotions; audited per item.
 */
export async function deleteArchived(
  ctx: AppContext,
  q: { tenant: string; ids: string[]; actor: string; manifestSha256: string; protectedArtifacts?: string[] },
): Promise<RetentionRunSummary & { keptIds: string[] }> {
  const runId = `archive-delete-${new Date().toISOString().replace(/[:.]/g, '')}-${randomUUID().slice(0, 8)}`;
  await startRun(ctx, {
    runId,
    tenant: q.tenant,
    kind: 'archive-delete',
    actor: q.actor,
    reason: `archived in ${q.manifestSha256}`,
    protectedArtifacts: q.protectedArtifacts,
  });
  await countSkipped(ctx, runId, q.ids);
  for (;;) {
    const r = await purgeBatch(ctx, runId, { ids: q.ids, batchSize: 500 });
    if (!r.purged) break;
  }
  const held = await ctx.db.query(`SELECT i.id FROM evidence_items i WHERE i.tenant_id=$1 AND i.id = ANY($2) AND i.state <> 'purged' ORDER BY i.id`, [
    q.tenant,
    q.ids,
  ]);
  await finishRun(ctx, runId);
  await audit(ctx.db, {
    tenant: q.tenant,
    actor: q.actor,
    action: 'evidence.archive.deleted',
    target: q.manifestSha256,
    reason: 'archive --delete-archived',
    details: { runId, requested: q.ids.length, kept: held.rowCount },
  });
  return { ...(await getRun(ctx.db, runId)), keptIds: held.rows.map((x) => x.id as string) };
}

/** `cleanup --temp-only`: stale temp files / partial uploads (blob stores, S3 multipart, API spool). */
export async function cleanupTemp(ctx: AppContext, q: { tenant: string; actor: string; dryRun: boolean; olderThanMs?: number }) {
  const age = q.olderThanMs ?? 3_600_000;
  const stores = [
    { name: 'primary', store: ctx.blobs.primary },
    // The fs cold namespace has its own temp dir; S3 multipart listing of the bucket covers it.
    ...(ctx.blobs.primary.kind === 'fs' ? [{ name: 'cold', store: ctx.blobs.primary.withPrefix('cold') }] : []),
    ...(ctx.blobs.replica ? [{ name: 'replica', store: ctx.blobs.replica }] : []),
  ];
  const results: { where: string; removed: number; bytes: number }[] = [];
  for (const s of stores) results.push({ where: `${s.name} (${s.store.location})`, ...(await s.store.cleanupTemp(age, q.dryRun)) });
  const spool = join(ctx.cfg.dataDir, 'spool');
  let removed = 0;
  let bytes = 0;
  const cutoff = Date.now() - age;
  for (const f of await fsp.readdir(spool).catch(() => [] as string[])) {
    const p = join(spool, f);
    const st = await fsp.stat(p).catch(() => null);
    if (!st?.isFile() || st.mtimeMs > cutoff) continue;
    removed++;
    bytes += st.size;
    if (!q.dryRun) await fsp.rm(p, { force: true });
  }
  results.push({ where: `spool (${spool})`, removed, bytes });
  const total = { removed: results.reduce((a, r) => a + r.removed, 0), bytes: results.reduce((a, r) => a + r.bytes, 0) };
  if (!q.dryRun)
    await audit(ctx.db, {
      tenant: q.tenant,
      actor: q.actor,
      action: 'evidence.cleanup.temp',
      reason: `temp files older than ${Math.round(age / 60000)} min`,
      details: { results, ...total },
    });
  return { dryRun: q.dryRun, olderThanMs: age, results, ...total };
}
