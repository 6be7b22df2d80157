/**
 * Restore (DR-001) and point-in-time restore (DR-002). The workflow drives these steps in
 * batches; every step is idempotent (batch markers for index rows, content addressing for
 * blobs), so a worker that dies mid-restore is simply replaced and the restore continues.
 */
import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AppContext } from '../context';
import { FsBlobStore, type BlobStore } from '../../blob';
import { appliedMigrations, migrate } from '../../db/migrate';
import { withTransaction } from '../../db/pool';
import { BATCH_ROWS, describeTables, importBatch, readLinesAt, resetSequences, type TableInfo } from '../../db/dump';
import { audit } from '../audit';
import { badInput, conflict, integrity, StellaError } from '../../lib/errors';
import { mapLimit } from '../../lib/concurrency';
import { COPY_CONCURRENCY, NOT_EXPORTED, backupBlobStore, backupPath, backupRoot, checkBackup, readBlobBatch, readSchema, type BackupSchema } from './backup';
import { anchorsTableExists, findAnchor, logRootAt, verifyAllAnchors } from './anchors';
import { freeSpace } from './provision';
import { recordRestoreFinish, recordRestoreProgress, recordRestoreStart, restoreBatchMarker, restoreRunExists } from './runs';
import { importTrust, trustedRootPack } from '../attest/attest';
import { anchorRoots, archiveAnchorsAfter } from '../anchoring/queries/backup';
import { blobsToRehash, countAllItems, evidenceLogSize, itemsLoggedFrom } from '../evidence/queries/backup';
import { transitionItems, type ItemState, type Queryable } from '../evidence/state';

export interface RestoreInput {
  restoreId: string;
  actor: string;
  /** Restore from this backup (DR-001); absent for a point-in-time restore of the live index. */
  backupId?: string | null;
  /** Backup root directory; default the configured backup directory. */
  backupDir?: string | null;
  /** Where blobs go (a directory); default the configured primary store. */
  target?: string | null;
  /** Point-in-time: cut back to exactly this anchor's log size (DR-002). */
  toAnchor?: string | null;
  /** Skip the verification phase (tests of resumption only). */
  skipVerify?: boolean;
}

export interface RestorePlan {
  restoreId: string;
  backupId: string | null;
  tables: { name: string; rows: number; batches: number }[];
  blobBatches: number;
  blobCount: number;
  blobBytes: number;
  itemCount: number;
  logSize: number;
  target: string;
  /** The verify child can check the target only when it is the store the workers serve from. */
  targetIsPrimary: boolean;
  anchors: BackupSchema['anchors'];
}

const schemaCache = new Map<string, BackupSchema>();
async function schemaOf(path: string): Promise<BackupSchema> {
  let s = schemaCache.get(path);
  if (!s) {
    s = await readSchema(path);
    schemaCache.set(path, s);
  }
  return s;
}

function pathOf(ctx: AppContext, input: RestoreInput): string {
  if (!input.backupId) throw badInput('no backup id');
  return backupPath(backupRoot(ctx, input.backupDir), input.backupId);
}

export function targetStore(ctx: AppContext, input: RestoreInput): BlobStore {
  if (!input.target) return ctx.blobs.primary;
  const t = resolve(input.target);
  if (ctx.blobs.primary instanceof FsBlobStore && resolve(ctx.blobs.primary.location) === t) return ctx.blobs.primary;
  return new FsBlobStore(t);
}

async function setProgress(ctx: AppContext, restoreId: string, phase: string, progress: Record<string, unknown>): Promise<void> {
  await recordRestoreProgress(ctx.db, restoreId, phase, progress).catch(() => {});
}

/**
 * Runs migrations (the database may be brand new), checks the backup and the target, refuses
 * a non-empty index, and records the run. A resumed run (row already there) skips the checks.
 */
export async function restorePrepare(ctx: AppContext, input: RestoreInput, hb: () => void): Promise<RestorePlan> {
  await migrate(ctx.db);
  const store = targetStore(ctx, input);
  const targetIsPrimary = store === ctx.blobs.primary;
  if (!input.backupId) return prepareInPlace(ctx, input, store, targetIsPrimary);
  const path = pathOf(ctx, input);
  const schema = await schemaOf(path);
  const resumed = await restoreRunExists(ctx.db, input.restoreId);
  if (!resumed) await startFullRestore(ctx, input, input.backupId, { path, schema, store, hb });
  return {
    restoreId: input.restoreId,
    backupId: input.backupId,
    tables: schema.tables.map((t) => ({ name: t.name, rows: t.rows, batches: t.batchOffsets.length })),
    blobBatches: schema.blobBatchOffsets.length,
    blobCount: schema.blobCount,
    blobBytes: schema.blobBytes,
    itemCount: schema.itemCount,
    logSize: schema.logSize,
    target: store.location,
    targetIsPrimary,
    anchors: schema.anchors,
  };
}

/** Point-in-time restore of the live index: nothing to copy, only the run to record. */
async function prepareInPlace(ctx: AppContext, input: RestoreInput, store: BlobStore, targetIsPrimary: boolean): Promise<RestorePlan> {
  await recordRestoreStart(ctx.db, { id: input.restoreId, backupId: null, toAnchor: input.toAnchor ?? null, target: store.location, actor: input.actor });
  const logSize = await evidenceLogSize(ctx.db);
  const itemCount = await countAllItems(ctx.db);
  return {
    restoreId: input.restoreId,
    backupId: null,
    tables: [],
    blobBatches: 0,
    blobCount: 0,
    blobBytes: 0,
    itemCount,
    logSize,
    target: store.location,
    targetIsPrimary,
    anchors: [],
  };
}

/** A new full restore: the backup, this build's migrations, an empty index and room on the target; then trust, record and audit. */
async function startFullRestore(
  ctx: AppContext,
  input: RestoreInput,
  backupId: string,
  from: { path: string; schema: BackupSchema; store: BlobStore; hb: () => void },
): Promise<void> {
  const { path, schema, store, hb } = from;
  const check = await checkBackup(path, { hb });
  if (!check.ok) throw integrity(`backup ${backupId} is damaged: ${check.problems.map((p) => `${p.path}: ${p.problem}`).join('; ')}`);
  await checkRestorable(ctx, backupId, schema, store);
  // The keys that signed the anchors and attestations may be gone with the old host: trust
  // their public halves from the backup (merged into <dataDir>/trust/rootpack.json; merging
  // only ever narrows trust for a known key).
  await importTrust(ctx, '*', check.rootpack, input.actor);
  await recordRestoreStart(ctx.db, {
    id: input.restoreId,
    backupId,
    toAnchor: input.toAnchor ?? null,
    target: store.location,
    actor: input.actor,
  });
  await audit(ctx.db, {
    tenant: '*',
    actor: input.actor,
    action: 'evidence.restore.start',
    target: backupId,
    details: { restoreId: input.restoreId, target: store.location, toAnchor: input.toAnchor ?? null },
  });
}

/** This build knows every migration of the backup, the index is empty, and a directory target has room for the blobs. */
async function checkRestorable(ctx: AppContext, backupId: string, schema: BackupSchema, store: BlobStore): Promise<void> {
  // Forward-only migrations: this build must know every migration the backup was made with.
  const have = new Map((await appliedMigrations(ctx.db)).map((m) => [m.version, m.checksum]));
  for (const m of schema.migrations) {
    if (!have.has(m.version))
      throw conflict(`backup ${backupId} was made with migration ${m.version}_${m.name}, which this stella does not have; restore with a newer stella`);
  }
  const n = await countAllItems(ctx.db);
  if (n > 0)
    throw conflict(
      `the database already holds ${n} evidence items and a full restore never overwrites a live locker; restore into a new empty database and store instead ` +
        `(a drill stack: STELLA_DATA_DIR=<new dir> DATABASE_URL=<new empty database> stella serve, then against it: stella evidence restore --backup-id ${backupId} --backup-dir <backup root>; ` +
        'docs/runbooks/dr-drill.md); for point-in-time in this database use --to-anchor without --backup-id',
    );
  if (store instanceof FsBlobStore) {
    await fsp.mkdir(store.location, { recursive: true });
    const free = await freeSpace(store.location);
    if (free !== null && free < schema.blobBytes)
      throw new StellaError(
        'TOO_LARGE',
        `target ${store.location} has ${free} bytes free, the backup needs ${schema.blobBytes}; provision more (stella evidence storage provision --size …)`,
      );
  }
}

let tablesCache: { db: unknown; tables: Map<string, TableInfo> } | null = null;
async function targetTables(ctx: AppContext): Promise<Map<string, TableInfo>> {
  if (tablesCache?.db !== ctx.db) tablesCache = { db: ctx.db, tables: new Map((await describeTables(ctx.db, NOT_EXPORTED)).map((t) => [t.name, t])) };
  return tablesCache.tables;
}

/** One batch of one table's rows; exactly once (see importBatch). */
export async function restoreIndexBatch(
  ctx: AppContext,
  input: RestoreInput,
  table: string,
  batchNo: number,
): Promise<{ rows: number; inserted: number; skipped: boolean }> {
  const path = pathOf(ctx, input);
  const schema = await schemaOf(path);
  const t = schema.tables.find((x) => x.name === table);
  if (!t) throw badInput(`backup has no table ${table}`);
  let info = (await targetTables(ctx)).get(table);
  if (!info) {
    tablesCache = null;
    info = (await targetTables(ctx)).get(table);
  }
  if (!info) throw conflict(`table ${table} from the backup does not exist in this database`);
  const lines = await readLinesAt(join(path, 'index', t.file), t.batchOffsets[batchNo] ?? 0, BATCH_ROWS);
  const r = await importBatch(
    ctx.db,
    info,
    t.columns.map((c) => c.name),
    lines,
    restoreBatchMarker(input.restoreId, table, batchNo),
  );
  await setProgress(ctx, input.restoreId, 'index', { table, batchNo });
  return { rows: lines.length, ...r };
}

export async function restoreIndexFinish(ctx: AppContext, input: RestoreInput): Promise<{ sequences: number; items: number; logSize: number }> {
  const sequences = await resetSequences(ctx.db);
  const items = await countAllItems(ctx.db);
  const logSize = await evidenceLogSize(ctx.db);
  const schema = await schemaOf(pathOf(ctx, input));
  if (items !== schema.itemCount || logSize !== schema.logSize) {
    throw integrity(`index restore incomplete: ${items}/${schema.itemCount} items, log size ${logSize}/${schema.logSize}`);
  }
  return { sequences, items, logSize };
}

/** One batch of blobs into the target, each verified against its digest. Idempotent. */
export async function restoreBlobBatch(
  ctx: AppContext,
  input: RestoreInput,
  batchNo: number,
  hb: (i: number) => void,
): Promise<{ blobs: number; copied: number; bytes: number }> {
  const path = pathOf(ctx, input);
  const schema = await schemaOf(path);
  const src = backupBlobStore(path);
  const dest = targetStore(ctx, input);
  const replica = !input.target ? ctx.blobs.replica : undefined;
  const out = { blobs: 0, copied: 0, bytes: 0 };
  const batch = await readBlobBatch(path, schema, batchNo);
  let done = 0;
  await mapLimit(batch, COPY_CONCURRENCY, async (b) => {
    for (const store of replica ? [dest, replica] : [dest]) {
      if (await store.stat(b.digest)) continue;
      try {
        const r = await store.putFile(b.digest, src.pathFor(b.digest));
        if (store === dest && r.created) out.copied++;
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'ENOENT') throw integrity(`backup ${input.backupId} is missing the blob of ${b.digest}`);
        if (code === 'DIGEST_MISMATCH') throw integrity(`backup ${input.backupId} holds a damaged blob for ${b.digest}: ${(e as Error).message}`);
        throw e;
      }
    }
    out.blobs++;
    out.bytes += b.size;
    hb(++done);
  });
  await setProgress(ctx, input.restoreId, 'blobs', { batchNo });
  return out;
}

/** When blobs went to a directory the workers do not serve from yet: re-hash them there. */
export async function restoreVerifyTarget(
  ctx: AppContext,
  input: RestoreInput,
  hb: () => void,
): Promise<{ checked: number; ok: number; failed: number; failures: { id: string; result: string }[] }> {
  const store = targetStore(ctx, input);
  const out = { checked: 0, ok: 0, failed: 0, failures: [] as { id: string; result: string }[] };
  for (const row of await blobsToRehash(ctx.db)) {
    out.checked++;
    const h = await store.hash(row.id);
    const result = !h ? 'missing-blob' : h.actual !== row.id ? 'hash-mismatch' : h.size !== row.size ? 'size-mismatch' : 'ok';
    if (result === 'ok') out.ok++;
    else {
      out.failed++;
      if (out.failures.length < 100) out.failures.push({ id: row.id, result });
    }
    if (out.checked % 200 === 0) hb();
  }
  return out;
}

export type AnchorCheck = {
  ok: boolean;
  anchors: number;
  checked: number;
  firstBreak: unknown;
  chains: { id: string; status: string; anchors: number; checked: number; ok: boolean }[];
  /** Every anchor in the backup is back with the same root and log size, and the restored log reproduces that root. */
  rootsMatchBackup: boolean | null;
  mismatches: string[];
};

/** anchor verify --all (anchoring module) against the restored log, and roots identical to the backup's. */
export async function restoreAnchorCheck(ctx: AppContext, input: RestoreInput): Promise<AnchorCheck> {
  let backupAnchors: BackupSchema['anchors'] = [];
  if (input.backupId) backupAnchors = (await schemaOf(pathOf(ctx, input))).anchors;
  // Own keys plus every imported RootPack (the backup's was imported by restorePrepare).
  const rootpack = await trustedRootPack(ctx);
  if (!(await anchorsTableExists(ctx.db)))
    return { ok: true, anchors: 0, checked: 0, firstBreak: null, chains: [], rootsMatchBackup: backupAnchors.length ? false : null, mismatches: [] };
  const v = await verifyAllAnchors(ctx, rootpack);
  const mismatches: string[] = [];
  const rows = await anchorRoots(ctx.db);
  const roots = new Map<number, string>();
  for (const a of backupAnchors) {
    const now = rows.get(a.id);
    if (!now) mismatches.push(`${a.id}: missing after restore`);
    else if (now.rootHash !== a.rootHash || now.logSize !== a.logSize)
      mismatches.push(`${a.id}: root ${now.rootHash}@${now.logSize}, backup ${a.rootHash}@${a.logSize}`);
    else {
      if (!roots.has(a.logSize)) roots.set(a.logSize, await logRootAt(ctx.db, a.logSize));
      if (roots.get(a.logSize) !== a.rootHash)
        mismatches.push(`${a.id}: restored log root at size ${a.logSize} is ${roots.get(a.logSize)}, anchored ${a.rootHash}`);
    }
  }
  return {
    ok: v.ok && mismatches.length === 0,
    anchors: v.total,
    checked: v.checked,
    firstBreak: v.firstBreak,
    chains: v.chains.map((c) => ({ id: c.id, status: c.status, anchors: c.anchors, checked: c.checked, ok: c.ok })),
    rootsMatchBackup: input.backupId ? mismatches.length === 0 : null,
    mismatches,
  };
}

export type PitResult = {
  anchorId: string;
  logSize: number;
  rootHash: string;
  quarantined: number;
  alreadyQuarantined: number;
  anchorsArchived: number;
};

/**
 * DR-002: cut the locker back to exactly the anchor's log size. The log is append-only and
 * stays whole; every item whose leaf is at seq ≥ logSize is QUARANTINED (never deleted) with
 * an audit entry, and anchors beyond the point are archived. Idempotent.
 */
export async function pointInTimeApply(ctx: AppContext, input: RestoreInput): Promise<PitResult> {
  if (!input.toAnchor) throw badInput('no anchor given');
  const a = await findAnchor(ctx.db, input.toAnchor);
  if (a.status === 'archived') throw conflict(`anchor ${a.id} is archived (a later point-in-time restore went before it)`);
  const root = await logRootAt(ctx.db, a.logSize).catch((e) => {
    throw integrity(`cannot recompute the log root at size ${a.logSize}: ${(e as Error).message}`);
  });
  if (root !== a.rootHash)
    throw integrity(`anchor ${a.id} root ${a.rootHash} does not match the log at size ${a.logSize} (${root}); refusing to restore to it`);
  const reason = `point-in-time restore to anchor ${a.id} (log size ${a.logSize})`;
  return withTransaction(ctx.db, async (tx) => {
    const quarantined = await quarantineLoggedFrom(tx, a.logSize, reason);
    for (const r of quarantined) {
      await audit(tx, {
        tenant: r.tenant,
        actor: input.actor,
        action: 'evidence.state.quarantined',
        target: r.id,
        reason,
        details: { restoreId: input.restoreId, anchorId: a.id, logSeq: r.seq },
      });
    }
    const already = (await itemsLoggedFrom(tx, a.logSize, ['quarantined'])).length - quarantined.length;
    const archived = await archiveAnchorsAfter(tx, a.chainId, a.seq, a.logSize);
    for (const id of archived)
      await audit(tx, { tenant: '*', actor: input.actor, action: 'anchor.archived', target: id, reason, details: { restoreId: input.restoreId } });
    await audit(tx, {
      tenant: '*',
      actor: input.actor,
      action: 'evidence.restore.to-anchor',
      target: a.id,
      reason,
      details: { restoreId: input.restoreId, quarantined: quarantined.length, anchorsArchived: archived.length },
    });
    return {
      anchorId: a.id,
      logSize: a.logSize,
      rootHash: a.rootHash,
      quarantined: quarantined.length,
      alreadyQuarantined: already,
      anchorsArchived: archived.length,
    };
  });
}

/** States an item leaves when a point-in-time restore quarantines it (purged items have no bytes to keep). */
const QUARANTINABLE: readonly ItemState[] = ['present', 'corrupted'];

/** Quarantines (through the one state-transition function) every item logged at seq ≥ logSize; returns the ones that changed. */
async function quarantineLoggedFrom(tx: Queryable, logSize: number, reason: string): Promise<{ tenant: string; id: string; seq: number }[]> {
  const candidates = await itemsLoggedFrom(tx, logSize, QUARANTINABLE);
  const byTenant = new Map<string, typeof candidates>();
  for (const c of candidates) byTenant.set(c.tenant, [...(byTenant.get(c.tenant) ?? []), c]);
  const out: typeof candidates = [];
  for (const [tenant, rows] of byTenant) {
    const changed = new Set(
      await transitionItems(
        tx,
        tenant,
        rows.map((r) => r.id),
        { from: QUARANTINABLE, to: 'quarantined', reason },
      ),
    );
    out.push(...rows.filter((r) => changed.has(r.id)));
  }
  return out;
}

export async function restoreFinish(ctx: AppContext, input: RestoreInput, result: { outcome: string }): Promise<void> {
  await recordRestoreFinish(ctx.db, input.restoreId, result.outcome === 'passed', result);
  await audit(ctx.db, {
    tenant: '*',
    actor: input.actor,
    action: 'evidence.restore.finish',
    target: input.backupId ?? input.toAnchor ?? input.restoreId,
    details: { restoreId: input.restoreId, outcome: result.outcome },
  });
}
