import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { AppContext } from '../context';
import { badInput } from '../../lib/errors';
import { audit } from '../audit';
import { createManifestTarStream, type ManifestTarStream } from '../../archive';
import { archivePage, archiveScopeStats, notPurged } from '../evidence/queries/retention';
import { archiveDeleteRunId } from '../../temporal/names';
import { purgeBatch, countSkipped } from './purge';
import { startRun, finishRun, getRun, type RetentionRunSummary } from './runs';
import { randomUUID } from 'node:crypto';

export { verifyArchiveFile, type OfflineArchiveVerification } from './offline';

/**
 * `stella evidence archive`: a manifest archive (src/archive/manifest.ts) of every present item
 * older than N days. Layout: `items/sha256/<hex>` per item (path order = id order), then
 * manifest.json listing each entry's sha256/size with meta {id, kind, mediaType, createdAt,
 * subjects, tier}. Verifiable offline with `stella evidence verify --offline --input`.
 */
export const ARCHIVE_KIND = 'evidence-archive';
const PAGE = 500;

export const archivePath = (id: string) => `items/sha256/${id.slice(7)}`;

export async function archivePlan(ctx: AppContext, tenant: string, olderThanDays: number, includeReplay: boolean) {
  if (!Number.isInteger(olderThanDays) || olderThanDays < 0) throw badInput('older-than must be a whole number of days');
  const s = await archiveScopeStats(ctx.db, tenant, olderThanDays, includeReplay);
  return { items: s.items, bytes: s.bytes, skippedReplayBundles: includeReplay ? 0 : s.replayBundles };
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
      const rows = await archivePage(ctx.db, q.tenant, { olderThanDays: q.olderThanDays, includeReplay: q.includeReplay, after, limit: PAGE });
      if (!rows.length) break;
      for (const row of rows) {
        const stream = await ctx.evidence.storeOf(row).get(row.id);
        await w.addFile(archivePath(row.id), row.sizeBytes, stream, {
          sha256: row.id,
          mediaType: row.mediaType,
          meta: { id: row.id, kind: row.kind, createdAt: row.createdAt, tier: row.tier, subjects: row.subjects },
        });
      }
      after = rows[rows.length - 1]!.id;
    }
    await w.finalize();
  })().catch((e: Error) => {
    q.onError?.(e);
    w.abort(e);
  });
  return w;
}

/**
 * `archive --delete-archived`: purges exactly the named items (verified into an archive by the
 * caller), respecting legal holds, policy-level holds and open promotions; audited per item.
 */
export async function deleteArchived(
  ctx: AppContext,
  q: { tenant: string; ids: string[]; actor: string; manifestSha256: string; protectedArtifacts?: string[] },
): Promise<RetentionRunSummary & { keptIds: string[] }> {
  const runId = archiveDeleteRunId(new Date(), randomUUID().slice(0, 8));
  await startRun(ctx.db, {
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
  const kept = await notPurged(ctx.db, q.tenant, q.ids);
  await finishRun(ctx.db, runId);
  await audit(ctx.db, {
    tenant: q.tenant,
    actor: q.actor,
    action: 'evidence.archive.deleted',
    target: q.manifestSha256,
    reason: 'archive --delete-archived',
    details: { runId, requested: q.ids.length, kept: kept.length },
  });
  return { ...(await getRun(ctx.db, runId)), keptIds: kept };
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
