import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { AppContext } from '../../context';
import { BlobNotFoundError, type BlobStore } from '../../../blob';
import { validateDigest, EVIDENCE_KINDS, type IngestInput, transitionItems } from '../index';
import { audit } from '../../audit';
import { badInput, integrity, StellaError } from '../../../lib/errors';
import { sha256Digest } from '../../../lib/hash';
import { opStart, opFinish } from './index-ops';
import { spoolDir, tierStore } from './storage';
import { reasonOf, recordAck, resolveAcks } from './lifecycle';
import { REPLAY_COPY_PREFIX } from './verify';
import { isReplayCopy, replayArea } from '../../replay/queries/evidence';

/**
 * INC-001 (no replica): flag an item corrupted so gates and readers stop trusting it, and
 * acknowledge the failure (reason and who), so later verifications list it without failing. Audited.
 */
export async function markCorrupted(ctx: AppContext, tenant: string, id: string, reason: string, actor: string) {
  validateDigest(id, 'evidence id');
  const why = reasonOf(reason);
  const before = await ctx.evidence.get(tenant, id);
  await ctx.evidence.setState(tenant, id, 'corrupted', why, actor);
  await recordAck(ctx.db, tenant, id, why, actor);
  return { id, previousState: before.state, state: 'corrupted', reason: why, acknowledged: true };
}

/**
 * Streams `id` from `source` into a private temp file, verifying its digest on the way
 * (the replica's copy must be proven good before it may overwrite anything).
 */
async function fetchVerified(ctx: AppContext, source: BlobStore, id: string, label = 'replica'): Promise<{ path: string; size: number }> {
  const dir = join(spoolDir(ctx), 'recover');
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `recover-${Date.now()}-${randomBytes(6).toString('hex')}.part`);
  let stream: Readable;
  try {
    stream = await source.get(id);
  } catch (e) {
    if (e instanceof BlobNotFoundError) throw integrity(`the ${label} (${source.location}) has no copy of ${id}; nothing changed`);
    throw new StellaError('UNAVAILABLE', `cannot read the ${label} ${source.location}: ${(e as Error).message}`);
  }
  // Consume at once (no await in between): the verifying stream may fail as soon as it has
  // seen the last byte, and that error must land in this pipeline, not go unhandled.
  let size = 0;
  const counted = stream.on('data', (c: Buffer) => (size += c.length));
  try {
    await pipeline(counted, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
  } catch (e) {
    await fsp.rm(path, { force: true });
    if ((e as { code?: string }).code === 'DIGEST_MISMATCH')
      throw integrity(`the ${label} copy of ${id} is also damaged (${(e as Error).message}); nothing changed`);
    throw e;
  }
  return { path, size };
}

/**
 * INC-001: restore a corrupted or missing blob from the replica. The replica copy is hashed
 * first; only then is it written to the primary (atomic replace), re-verified there, and the
 * item set present again. Audited with the previous state.
 */
export async function recover(ctx: AppContext, tenant: string, id: string, source: string, actor: string) {
  if (id.startsWith(REPLAY_COPY_PREFIX)) return recoverReplayCopy(ctx, tenant, id.slice(REPLAY_COPY_PREFIX.length), source, actor);
  validateDigest(id, 'evidence id');
  if (source !== 'replica') throw badInput(`unknown recovery source ${JSON.stringify(source)}: expected replica`);
  const item = await ctx.evidence.get(tenant, id);
  const replica = ctx.blobs.replica;
  if (!replica)
    throw badInput(
      'no replica store is configured (set STELLA_REPLICA_PATH or STELLA_REPLICA_BUCKET); mark it instead: stella evidence mark-corrupted --id <id> --reason "hash-mismatch"',
    );
  const primary = tierStore(ctx, item.tier);
  const before = await primary.hash(id).catch(() => null);
  const primaryWas = !before ? 'missing' : before.actual === id ? 'intact' : 'hash-mismatch';
  const copy = await fetchVerified(ctx, replica, id);
  try {
    if (copy.size !== item.size) throw integrity(`the replica copy of ${id} has ${copy.size} bytes but the index says ${item.size}; nothing changed`);
    await primary.putFile(id, copy.path);
  } finally {
    await fsp.rm(copy.path, { force: true });
  }
  const after = await primary.hash(id);
  if (after?.actual !== id)
    throw integrity(`wrote the replica copy of ${id} but the primary still reads back ${after?.actual ?? 'nothing'}; check the primary store`);
  await transitionItems(ctx.db, tenant, [id], { from: ['present', 'corrupted', 'quarantined', 'purged'], to: 'present', reason: null });
  await resolveAcks(ctx.db, tenant, [id], 'repaired');
  await audit(ctx.db, {
    tenant,
    actor,
    action: 'evidence.recover',
    target: id,
    reason: `restored from replica (primary was ${primaryWas})`,
    details: { source: replica.location, previousState: item.state, primaryWas, bytes: copy.size },
  });
  return { id, recovered: true, source: 'replica', replica: replica.location, previousState: item.state, primaryWas, state: 'present', bytes: copy.size };
}

/**
 * A damaged or missing copy in the replay area (verify-report names it `replay/<digest>`),
 * restored from a verified intact copy: the locker's own blob of the same digest (`locker`,
 * the default) or the replica. Audited; its acknowledgement is settled as repaired.
 */
export async function recoverReplayCopy(ctx: AppContext, tenant: string, id: string, source: string, actor: string) {
  validateDigest(id, 'evidence id');
  const src = source === 'replica' || source === 'locker' ? source : null;
  if (!src) throw badInput(`unknown recovery source ${JSON.stringify(source)} for a replay copy: expected locker or replica`);
  const item = await ctx.evidence.get(tenant, id);
  if (!(await isReplayCopy(ctx.db, tenant, id)))
    throw badInput(`${id} is not a replay copy of any replay run; recover the item itself: stella evidence recover --id ${id}`);
  const from = src === 'locker' ? tierStore(ctx, item.tier) : ctx.blobs.replica;
  if (!from) throw badInput('no replica store is configured (set STELLA_REPLICA_PATH or STELLA_REPLICA_BUCKET); use --source locker');
  const area = replayArea(ctx);
  const before = await area.hash(id).catch(() => null);
  const copyWas = !before ? 'missing' : before.actual === id ? 'intact' : 'hash-mismatch';
  const copy = await fetchVerified(ctx, from, id, src === 'locker' ? 'locker' : 'replica');
  try {
    await area.putFile(id, copy.path);
  } finally {
    await fsp.rm(copy.path, { force: true });
  }
  const after = await area.hash(id);
  if (after?.actual !== id)
    throw integrity(`wrote the ${src} copy of ${id} but the replay area still reads back ${after?.actual ?? 'nothing'}; check the store`);
  const name = `${REPLAY_COPY_PREFIX}${id}`;
  await resolveAcks(ctx.db, tenant, [name], 'repaired');
  await audit(ctx.db, {
    tenant,
    actor,
    action: 'evidence.recover.replay-copy',
    target: name,
    reason: `replay copy restored from the ${src} (was ${copyWas})`,
    details: { source: from.location, copyWas, bytes: copy.size },
  });
  return {
    id: name,
    recovered: true,
    source: src,
    replica: from.location,
    previousState: item.state,
    primaryWas: copyWas,
    state: item.state,
    bytes: copy.size,
  };
}

/** Evidence produced while the store was down, parked for `retry-store` (see spoolPendingEvidence). */
const pendingManifest = z.object({
  v: z.literal(1),
  tenant: z.string().min(1),
  kind: z.enum(EVIDENCE_KINDS),
  mediaType: z.string().min(1).max(255),
  subjects: z.array(z.string()).min(1),
  predicateType: z.string().optional(),
  producer: z.record(z.string(), z.unknown()).optional(),
  parents: z.array(z.object({ id: z.string(), relation: z.string().optional() })).optional(),
  labels: z.record(z.string(), z.string()).optional(),
  digest: z.string(),
  error: z.string().optional(),
  at: z.string(),
});
export type PendingManifest = z.infer<typeof pendingManifest>;

export function pendingDir(dataDir: string): string {
  return join(dataDir, 'spool', 'pending');
}

/**
 * For producers (scanner, attestor, …): when ingest fails because the store is unavailable,
 * park the bytes and metadata here; `stella evidence retry-store --artifact <d>` stores them later.
 */
export async function spoolPendingEvidence(dataDir: string, input: IngestInput & { data: Buffer }, error?: string): Promise<string> {
  const dir = pendingDir(dataDir);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const name = `${Date.now()}-${randomBytes(6).toString('hex')}`;
  const m: PendingManifest = {
    v: 1,
    tenant: input.tenant,
    kind: input.kind,
    mediaType: input.mediaType,
    subjects: input.subjects,
    predicateType: input.predicateType,
    producer: input.producer,
    parents: input.parents,
    labels: input.labels,
    digest: sha256Digest(input.data),
    error,
    at: new Date().toISOString(),
  };
  await fsp.writeFile(join(dir, `${name}.bin`), input.data, { mode: 0o600 });
  // Manifest last: a manifest always has its bytes next to it.
  await fsp.writeFile(join(dir, `${name}.json.tmp`), JSON.stringify(m), { mode: 0o600 });
  await fsp.rename(join(dir, `${name}.json.tmp`), join(dir, `${name}.json`));
  return name;
}

export interface RetryOutcome {
  id: string;
  action: 'restored-from-replica' | 'state-cleared' | 'ingested-from-spool' | 'replicated' | 'unrecoverable';
  detail: string;
}

/** Step 1: parked evidence in the spool naming the artifact is ingested, then removed. */
async function ingestParked(ctx: AppContext, tenant: string, artifact: string, actor: string, opId: string): Promise<RetryOutcome[]> {
  const out: RetryOutcome[] = [];
  const dir = pendingDir(ctx.cfg.dataDir);
  for (const f of (await fsp.readdir(dir).catch(() => [] as string[])).filter((x) => x.endsWith('.json')).sort()) {
    const base = f.slice(0, -5);
    let m: PendingManifest;
    try {
      m = pendingManifest.parse(JSON.parse(await fsp.readFile(join(dir, f), 'utf8')));
    } catch (e) {
      out.push({ id: base, action: 'unrecoverable', detail: `spool manifest ${f} is invalid: ${(e as Error).message.split('\n')[0]}` });
      continue;
    }
    if (m.tenant !== tenant || !m.subjects.includes(artifact)) continue;
    try {
      const r = await ctx.evidence.ingest({
        tenant,
        filePath: join(dir, `${base}.bin`),
        expectedDigest: m.digest,
        kind: m.kind,
        mediaType: m.mediaType,
        subjects: m.subjects,
        predicateType: m.predicateType,
        producer: m.producer,
        parents: m.parents,
        labels: m.labels,
      });
      await audit(ctx.db, {
        tenant,
        actor,
        action: 'evidence.retry-store.ingested',
        target: r.id,
        reason: 'parked evidence stored',
        details: { opId, spool: base, created: r.created },
      });
      await fsp.rm(join(dir, f), { force: true });
      await fsp.rm(join(dir, `${base}.bin`), { force: true });
      out.push({ id: r.id, action: 'ingested-from-spool', detail: `${m.kind} from spool ${base}${r.created ? '' : ' (already indexed)'}` });
    } catch (e) {
      out.push({ id: m.digest, action: 'unrecoverable', detail: `spool ${base}: ${(e as Error).message}` });
    }
  }
  return out;
}

/** Steps 2 and 3: indexed items with a bad primary blob are restored; intact ones missing from the replica are copied. */
async function repairIndexed(ctx: AppContext, tenant: string, artifact: string, actor: string, opId: string) {
  const out: RetryOutcome[] = [];
  const rows = await ctx.db.query(
    `SELECT i.id, i.state, i.size_bytes, i.tier FROM evidence_items i JOIN evidence_subjects s ON s.tenant_id=i.tenant_id AND s.item_id=i.id
     WHERE i.tenant_id=$1 AND s.artifact_digest=$2 AND i.state IN ('present','corrupted') ORDER BY i.id`,
    [tenant, artifact],
  );
  for (const row of rows.rows) {
    const h = await tierStore(ctx, row.tier).hash(row.id);
    const primaryOk = h?.actual === row.id;
    if (!primaryOk || row.state === 'corrupted') {
      if (primaryOk) {
        // Blob is fine now (e.g. restored out of band): clear the flag.
        await ctx.evidence.setState(tenant, row.id, 'present', 'retry-store: primary blob verified intact', actor);
        await resolveAcks(ctx.db, tenant, [row.id], 'repaired');
        out.push({ id: row.id, action: 'state-cleared', detail: 'primary blob verified intact; corrupted flag cleared' });
        continue;
      }
      try {
        await recover(ctx, tenant, row.id, 'replica', actor);
        out.push({ id: row.id, action: 'restored-from-replica', detail: h ? `primary hashed to ${h.actual}` : 'primary blob was missing' });
      } catch (e) {
        out.push({ id: row.id, action: 'unrecoverable', detail: (e as Error).message });
      }
      continue;
    }
    if (ctx.blobs.replica && !(await ctx.blobs.replica.stat(row.id))) {
      await ctx.blobs.replica.put(row.id, await tierStore(ctx, row.tier).getBuffer(row.id));
      await audit(ctx.db, { tenant, actor, action: 'evidence.retry-store.replicated', target: row.id, details: { opId, replica: ctx.blobs.replica.location } });
      out.push({ id: row.id, action: 'replicated', detail: `copied to ${ctx.blobs.replica.location}` });
    }
  }
  return { checked: rows.rowCount ?? 0, out };
}

/**
 * Runbook 000 "evidence was generated but not stored": re-drive storage for one artifact.
 *  1. parked evidence in <dataDir>/spool/pending naming the artifact → ingested, then removed;
 *  2. index rows whose primary blob is missing or damaged → restored from a verified replica copy;
 *  3. intact items missing from the replica → copied there.
 * Every action is audited; what could not be fixed is reported as unrecoverable.
 */
export async function retryStore(ctx: AppContext, tenant: string, artifact: string, actor: string) {
  validateDigest(artifact, 'artifact digest');
  const opId = await opStart(ctx.db, { tenant, op: 'retry-store', actor });
  const parked = await ingestParked(ctx, tenant, artifact, actor, opId);
  const indexed = await repairIndexed(ctx, tenant, artifact, actor, opId);
  const out = [...parked, ...indexed.out];
  const summary = {
    artifact,
    checked: indexed.checked,
    retried: out.filter((o) => o.action !== 'unrecoverable').length,
    unrecoverable: out.filter((o) => o.action === 'unrecoverable').length,
  };
  await opFinish(ctx.db, opId, summary.unrecoverable ? 'failed' : 'succeeded', { ...summary, outcomes: out.slice(0, 500) });
  return { opId, ...summary, outcomes: out };
}
