import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { AppContext } from '../../context';
import type { BlobStore } from '../../../blob';
import { sha256Digest } from '../../../lib/hash';
import { validateDigest } from '../index';
import { notFound, StellaError } from '../../../lib/errors';

/** Runs `fn` but gives up after `ms` (a hung NFS mount or S3 endpoint must not hang a status call). */
export async function withTimeout<T>(fn: () => Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The store namespace an item's blob lives in: retention moves cold-tier items under the primary
 * store's `cold` prefix (the replica keeps its flat layout).
 */
export function tierStore(ctx: AppContext, tier: string | null | undefined): BlobStore {
  return tier === 'cold' ? ctx.blobs.primary.withPrefix('cold') : ctx.blobs.primary;
}

export interface ProbeStep {
  op: 'write' | 'read' | 'delete';
  ok: boolean;
  ms: number;
  error?: string;
}
export interface StoreProbe {
  role: 'primary' | 'replica';
  kind: string;
  location: string;
  ok: boolean;
  connectivityMs: number | null;
  error?: string;
  steps: ProbeStep[];
}

/**
 * Connectivity check plus a write/read/delete of a random content-addressed probe blob through
 * the same put/get path evidence uses (so a permissions or checksum problem shows here).
 * The probe's digest is of fresh random bytes: it can never collide with real evidence.
 */
export async function probeStore(store: BlobStore, role: 'primary' | 'replica', timeoutMs = 5000): Promise<StoreProbe> {
  const out: StoreProbe = { role, kind: store.kind, location: store.location, ok: false, connectivityMs: null, steps: [] };
  let t = performance.now();
  try {
    await withTimeout(() => store.health(), timeoutMs, 'connectivity check');
    out.connectivityMs = round(performance.now() - t);
  } catch (e) {
    out.error = `unreachable: ${(e as Error).message}`;
    return out;
  }
  const data = Buffer.concat([Buffer.from('stella-probe '), randomBytes(32)]);
  const digest = sha256Digest(data);
  const step = async (op: ProbeStep['op'], fn: () => Promise<unknown>) => {
    t = performance.now();
    try {
      await withTimeout(fn, timeoutMs, op);
      out.steps.push({ op, ok: true, ms: round(performance.now() - t) });
      return true;
    } catch (e) {
      out.steps.push({ op, ok: false, ms: round(performance.now() - t), error: (e as Error).message });
      return false;
    }
  };
  const wrote = await step('write', () => store.put(digest, data));
  if (wrote) {
    await step('read', async () => {
      const back = await store.getBuffer(digest);
      if (!back.equals(data)) throw new Error('read back different bytes');
    });
  }
  // Always try to remove the probe, even after a failed read.
  if (wrote) await step('delete', () => store.delete(digest));
  out.ok = out.steps.length === 3 && out.steps.every((s) => s.ok);
  if (!out.ok) out.error = out.steps.find((s) => !s.ok)?.error ?? 'probe incomplete';
  return out;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/** `storage test`: the probe on each configured store. */
export async function storageTest(ctx: AppContext) {
  const probes = [await probeStore(ctx.blobs.primary, 'primary')];
  if (ctx.blobs.replica) probes.push(await probeStore(ctx.blobs.replica, 'replica'));
  return { ok: probes.every((x) => x.ok), stores: probes };
}

export async function storeHealth(ctx: AppContext) {
  const probes = [await probeStore(ctx.blobs.primary, 'primary')];
  if (ctx.blobs.replica) probes.push(await probeStore(ctx.blobs.replica, 'replica'));
  return { healthy: probes.every((p) => p.ok), replicaConfigured: !!ctx.blobs.replica, stores: probes };
}

/** Free/total bytes of the filesystem under an fs store (null for S3: no capacity to speak of). */
export async function capacity(store: BlobStore): Promise<{ totalBytes: number; availableBytes: number } | null> {
  if (store.kind !== 'fs') return null;
  let dir = store.location;
  // statfs needs an existing path: walk up until one exists.
  for (let i = 0; i < 10; i++) {
    try {
      const s = await fsp.statfs(dir);
      return { totalBytes: s.blocks * s.bsize, availableBytes: s.bavail * s.bsize };
    } catch {
      dir = join(dir, '..');
    }
  }
  return null;
}

async function dirStats(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        files++;
        bytes += (await fsp.stat(p).catch(() => ({ size: 0 }))).size;
      }
    }
  };
  await walk(dir);
  return { files, bytes };
}

export function spoolDir(ctx: AppContext): string {
  return join(ctx.cfg.dataDir, 'spool');
}

/** SP-004 / INC-004: what the locker holds, by kind, tier, tenant and state, and what is left over. */
export async function storageStats(ctx: AppContext, tenant: string, allTenants: boolean) {
  const where = allTenants ? 'TRUE' : 'tenant_id = $1';
  const params = allTenants ? [] : [tenant];
  const q = (group: string) =>
    ctx.db.query(
      `SELECT ${group} AS k, count(*)::int AS items, coalesce(sum(size_bytes),0)::bigint AS bytes FROM evidence_items WHERE ${where} AND state <> 'purged' GROUP BY 1 ORDER BY 1`,
      params,
    );
  const [byKind, byTier, byTenant, byState, total] = await Promise.all([
    q('kind'),
    q('tier'),
    q('tenant_id'),
    ctx.db.query(
      `SELECT state AS k, count(*)::int AS items, coalesce(sum(size_bytes),0)::bigint AS bytes FROM evidence_items WHERE ${where} GROUP BY 1 ORDER BY 1`,
      params,
    ),
    // Distinct blobs: the same bytes held by two tenants are stored once.
    ctx.db.query(
      `SELECT count(DISTINCT id)::int AS blobs, coalesce(sum(size_bytes) FILTER (WHERE rn = 1),0)::bigint AS bytes FROM (SELECT id, size_bytes, row_number() OVER (PARTITION BY id) rn FROM evidence_items WHERE ${where} AND state <> 'purged') x`,
      params,
    ),
  ]);
  const shape = (r: { rows: Record<string, any>[] }) => r.rows.map((x) => ({ key: x.k as string, items: x.items as number, bytes: Number(x.bytes) }));
  const temp = await ctx.blobs.primary.cleanupTemp(0, true).catch(() => ({ removed: 0, bytes: 0 }));
  const spool = await dirStats(spoolDir(ctx));
  return {
    scope: allTenants ? '*' : tenant,
    store: { kind: ctx.blobs.primary.kind, location: ctx.blobs.primary.location, capacity: await capacity(ctx.blobs.primary) },
    replica: ctx.blobs.replica ? { kind: ctx.blobs.replica.kind, location: ctx.blobs.replica.location } : null,
    totals: { blobs: total.rows[0].blobs as number, bytes: Number(total.rows[0].bytes) },
    byKind: shape(byKind),
    byTier: shape(byTier),
    byTenant: shape(byTenant),
    byState: shape(byState),
    tempFiles: { count: temp.removed, bytes: temp.bytes },
    spool: { dir: spoolDir(ctx), files: spool.files, bytes: spool.bytes },
  };
}

export type BlobCheck = 'ok' | 'missing' | 'hash-mismatch' | 'size-mismatch' | 'error';

async function checkOne(store: BlobStore, id: string, indexedSize: number | null) {
  try {
    const st = await store.stat(id);
    if (!st) return { location: store.location, result: 'missing' as BlobCheck, size: null, actual: null };
    const h = await store.hash(id);
    if (!h) return { location: store.location, result: 'missing' as BlobCheck, size: null, actual: null };
    const result: BlobCheck = h.actual !== id ? 'hash-mismatch' : indexedSize !== null && h.size !== indexedSize ? 'size-mismatch' : 'ok';
    return { location: store.location, result, size: h.size, actual: h.actual, modifiedAt: st.modifiedAt?.toISOString() ?? null };
  } catch (e) {
    return { location: store.location, result: 'error' as BlobCheck, size: null, actual: null, error: (e as Error).message };
  }
}

/**
 * INC-002: stat and re-hash one blob (primary and replica) and compare to its index row. A tenant sees only its own items (NOT_FOUND otherwise,
 * whether or not another tenant holds the blob); `allTenants` (admins) also checks blobs that only
 * another tenant's row, or no row at all, names.
 */
export async function storageCheck(ctx: AppContext, tenant: string, id: string, opts: { allTenants?: boolean } = {}) {
  validateDigest(id, 'evidence id');
  const row = opts.allTenants
    ? await ctx.db.query('SELECT size_bytes, state, state_reason, tier FROM evidence_items WHERE id=$2 ORDER BY tenant_id = $1 DESC, tenant_id LIMIT 1', [
        tenant,
        id,
      ])
    : await ctx.db.query('SELECT size_bytes, state, state_reason, tier FROM evidence_items WHERE tenant_id=$1 AND id=$2', [tenant, id]);
  if (!row.rowCount && !opts.allTenants) throw notFound(`evidence ${id} not found in the index or the store`);
  const indexed = row.rowCount
    ? {
        size: Number(row.rows[0].size_bytes),
        state: row.rows[0].state as string,
        stateReason: row.rows[0].state_reason as string | null,
        tier: row.rows[0].tier as string,
      }
    : null;
  const primary = await checkOne(tierStore(ctx, indexed?.tier), id, indexed?.size ?? null);
  // Not in this tenant's index and not in the store: nothing to talk about.
  if (!indexed && primary.result === 'missing') throw notFound(`evidence ${id} not found in the index or the store`);
  const replica = ctx.blobs.replica ? await checkOne(ctx.blobs.replica, id, indexed?.size ?? null) : null;
  const ok = !!indexed && primary.result === 'ok';
  return { id, ok, indexed, primary, replica };
}

/** INC-004: the largest or oldest items, to decide what to archive. */
export async function storageAnalyze(ctx: AppContext, tenant: string, q: { sort: 'size' | 'age'; limit: number; allTenants: boolean }) {
  const order = q.sort === 'size' ? 'size_bytes DESC, created_at' : 'created_at ASC, id';
  const params: unknown[] = [q.limit];
  let where = `state <> 'purged'`;
  if (!q.allTenants) {
    params.push(tenant);
    where += ` AND tenant_id = $2`;
  }
  const r = await ctx.db.query(
    `SELECT tenant_id, id, kind, media_type, size_bytes, tier, state, created_at FROM evidence_items WHERE ${where} ORDER BY ${order} LIMIT $1`,
    params,
  );
  return {
    sort: q.sort,
    limit: q.limit,
    items: r.rows.map((x) => ({
      tenant: x.tenant_id,
      id: x.id,
      kind: x.kind,
      mediaType: x.media_type,
      size: Number(x.size_bytes),
      tier: x.tier,
      state: x.state,
      createdAt: new Date(x.created_at).toISOString(),
    })),
  };
}

/** Work directories are named by the workflow and always resolved inside <dataDir>/spool/ingest. */
export function spoolWorkDir(dataDir: string, name: string): string {
  const base = resolve(dataDir, 'spool', 'ingest');
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new StellaError('BAD_INPUT', `bad work directory name ${JSON.stringify(name)}`);
  const dir = join(base, name);
  if (!dir.startsWith(base + sep)) throw new StellaError('BAD_INPUT', 'work directory escapes the spool');
  return dir;
}
