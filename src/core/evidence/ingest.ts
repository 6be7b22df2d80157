/**
 * The one evidence ingest: a single item is a batch of one. Blobs first (verified, atomic,
 * replica too, bounded concurrency), then the index rows, subjects, edges and Merkle log leaves
 * of the whole batch in one transaction. If the index write fails (PostgreSQL down mid-upload),
 * the blobs this call newly wrote are removed again; a crash between the two leaves an unindexed
 * blob that the full verify reports and `index rebuild` adopts; never an index row without its blob.
 */
import type { BlobStore, BlobStores } from '../../blob';
import type { Db, DbClient } from '../../db/pool';
import { withTransaction } from '../../db/pool';
import { mapLimit } from '../../lib/concurrency';
import { badInput } from '../../lib/errors';
import { sha256Digest, sha256File } from '../../lib/hash';
import { leafHash } from '../../merkle/hash';
import { evidenceLeaf, type IngestInput, type IngestResult, validateIngestInput } from './model';
import { transitionItems } from './state';

interface Prepared {
  input: IngestInput;
  tenant: string;
  id: string;
  size: number;
  /** `tenant NUL id`: the index row's key. */
  key: string;
}

const keyOf = (tenant: string, id: string) => `${tenant}\u0000${id}`;

/**
 * Ingests `inputs` (bytes or local files). Results are in input order; a digest repeated within
 * the batch is stored once (the second occurrence reports created=false). Rows are inserted in
 * (tenant, id) order so two concurrent batches can't deadlock on each other's unique keys; the
 * log_state lock is taken only after every insert. A purged item whose bytes come back is
 * present again, hot, with its blob in the hot store.
 */
export async function ingestBatch(db: Db, blobs: BlobStores, inputs: readonly IngestInput[], opts: { concurrency?: number } = {}): Promise<IngestResult[]> {
  for (const input of inputs) validateIngestInput(input);
  const concurrency = opts.concurrency ?? 32;
  const prepared = await mapLimit(inputs, concurrency, prepare);
  if (!prepared.length) return [];
  await checkParents(db, prepared);
  const written = await writeBlobs(db, blobs, prepared, concurrency);
  try {
    return await withTransaction(db, (tx) => indexBatch(tx, prepared));
  } catch (e) {
    await removeWritten(blobs, written);
    throw e;
  }
}

/**
 * Best effort: blobs that did not exist before this call and now have no index row. Blobs that
 * existed before (another tenant's row may name them) are never touched.
 */
async function removeWritten(blobs: BlobStores, written: readonly string[]): Promise<void> {
  const stores = [blobs.primary, ...(blobs.replica ? [blobs.replica] : [])];
  await mapLimit(written, 8, async (id) => {
    for (const s of stores) await s.delete(id).catch(() => false);
  });
}

/** Hashes the content and checks it against the declared digest. */
async function prepare(input: IngestInput): Promise<Prepared> {
  const { digest, size } = input.data ? { digest: sha256Digest(input.data), size: input.data.length } : await sha256File(input.filePath!);
  if (input.expectedDigest && input.expectedDigest !== digest)
    throw badInput(`digest mismatch: declared ${input.expectedDigest}, content hashes to ${digest}; nothing stored`);
  return { input, tenant: input.tenant, id: digest, size, key: keyOf(input.tenant, digest) };
}

/**
 * Every parent must be an item of the child's own tenant (not purged), or another item of the
 * same batch and tenant: an edge never points at another tenant's item or at nothing. Checked
 * before any byte is stored; the answer is the same whether the id exists in another tenant or not.
 */
async function checkParents(db: Db, prepared: Prepared[]): Promise<void> {
  const inBatch = new Set(prepared.map((p) => p.key));
  const wanted = [...new Set(prepared.flatMap((p) => (p.input.parents ?? []).map((e) => keyOf(p.tenant, e.id))))].filter((k) => !inBatch.has(k));
  if (!wanted.length) return;
  const split = wanted.map((k) => k.split('\u0000') as [string, string]);
  const r = await db.query<{ tenant_id: string; id: string }>(
    `SELECT i.tenant_id, i.id FROM evidence_items i JOIN unnest($1::text[], $2::text[]) AS k(t, id) ON i.tenant_id = k.t AND i.id = k.id
      WHERE i.state <> 'purged'`,
    [split.map((x) => x[0]), split.map((x) => x[1])],
  );
  const found = new Set(r.rows.map((x) => keyOf(x.tenant_id, x.id)));
  const missing = split.filter(([t, id]) => !found.has(keyOf(t, id)));
  if (missing.length)
    throw badInput(
      `parent ${missing.map((m) => m[1]).join(', ')} is not an evidence item of tenant ${missing[0]![0]}; upload the parent first; nothing stored`,
    );
}

/**
 * Writes each distinct blob unless every row naming it is present and the hot store has it.
 * Returns the ids whose blob did not exist in the primary store before (the ones to remove if
 * the index write fails).
 */
async function writeBlobs(db: Db, blobs: BlobStores, prepared: Prepared[], concurrency: number): Promise<string[]> {
  const present = await presentKeys(db, prepared);
  const byId = new Map<string, Prepared[]>();
  for (const p of prepared) byId.set(p.id, [...(byId.get(p.id) ?? []), p]);
  const fresh: string[] = [];
  await mapLimit([...byId.values()], concurrency, async (group) => {
    const first = group[0]!;
    const existed = await blobs.primary.stat(first.id);
    if (existed && group.every((p) => present.has(p.key))) return;
    const put = (s: BlobStore) => (first.input.data ? s.put(first.id, first.input.data) : s.putFile(first.id, first.input.filePath!));
    await put(blobs.primary);
    if (blobs.replica) await put(blobs.replica);
    if (!existed) fresh.push(first.id);
  });
  return fresh;
}

async function presentKeys(db: Db, prepared: Prepared[]): Promise<Set<string>> {
  const r = await db.query<{ tenant_id: string; id: string }>(
    `SELECT i.tenant_id, i.id FROM evidence_items i JOIN unnest($1::text[], $2::text[]) AS k(t, id) ON i.tenant_id = k.t AND i.id = k.id
      WHERE i.state = 'present'`,
    [prepared.map((p) => p.tenant), prepared.map((p) => p.id)],
  );
  return new Set(r.rows.map((x) => keyOf(x.tenant_id, x.id)));
}

/** Index rows, revivals, subjects, edges and log leaves of one batch, inside `tx`. */
async function indexBatch(tx: DbClient, prepared: Prepared[]): Promise<IngestResult[]> {
  const unique = new Map<string, Prepared>();
  for (const p of prepared) if (!unique.has(p.key)) unique.set(p.key, p);
  const inOrder = [...unique.values()];
  const rows = [...inOrder].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const createdAt = await insertItems(tx, rows);
  const notCreated = rows.filter((r) => !createdAt.has(r.key));
  await revivePurged(tx, notCreated);
  await insertSubjectsAndEdges(tx, prepared);
  const seqOf = await appendLeaves(tx, inOrder, createdAt);
  for (const [k, seq] of await existingSeqs(tx, notCreated)) seqOf.set(k, seq);
  const seen = new Set<string>();
  return prepared.map((p) => {
    const created = createdAt.has(p.key) && !seen.has(p.key);
    seen.add(p.key);
    return { id: p.id, size: p.size, created, alreadyPresent: !created, logSeq: seqOf.get(p.key) ?? null };
  });
}

/** Inserts the rows not yet indexed; returns their creation times by key. */
async function insertItems(tx: DbClient, rows: Prepared[]): Promise<Map<string, string>> {
  const ins = await tx.query<{ tenant_id: string; id: string; created_at: Date }>(
    `INSERT INTO evidence_items (tenant_id, id, media_type, kind, predicate_type, size_bytes, producer, labels, provenance, signer)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::jsonb[], $8::jsonb[], $9::text[], $10::text[])
     ON CONFLICT (tenant_id, id) DO NOTHING RETURNING tenant_id, id, created_at`,
    [
      rows.map((r) => r.tenant),
      rows.map((r) => r.id),
      rows.map((r) => r.input.mediaType),
      rows.map((r) => r.input.kind),
      rows.map((r) => r.input.predicateType ?? null),
      rows.map((r) => r.size),
      rows.map((r) => JSON.stringify(r.input.producer ?? {})),
      rows.map((r) => JSON.stringify(r.input.labels ?? {})),
      rows.map((r) => r.input.provenance?.kind ?? 'uploaded'),
      rows.map((r) => r.input.provenance?.signer ?? null),
    ],
  );
  return new Map(ins.rows.map((r) => [keyOf(r.tenant_id, r.id), new Date(r.created_at).toISOString()]));
}

/** A purged item whose bytes just came back is present (and hot) again. */
async function revivePurged(tx: DbClient, rows: Prepared[]): Promise<void> {
  const byTenant = new Map<string, string[]>();
  for (const r of rows) byTenant.set(r.tenant, [...(byTenant.get(r.tenant) ?? []), r.id]);
  for (const [tenant, ids] of byTenant) await transitionItems(tx, tenant, ids, { from: ['purged'], to: 'present', reason: null });
}

async function insertSubjectsAndEdges(tx: DbClient, prepared: Prepared[]): Promise<void> {
  const subj = prepared.flatMap((p) => p.input.subjects.map((s) => [p.tenant, p.id, s] as const));
  const edges = prepared.flatMap((p) => (p.input.parents ?? []).map((e) => [p.tenant, p.id, e.id, e.relation ?? 'derived-from'] as const));
  if (subj.length) {
    await tx.query(
      `INSERT INTO evidence_subjects (tenant_id, item_id, artifact_digest) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
      [subj.map((s) => s[0]), subj.map((s) => s[1]), subj.map((s) => s[2])],
    );
  }
  if (edges.length) {
    await tx.query(
      `INSERT INTO evidence_edges (tenant_id, child_id, parent_id, relation) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`,
      [edges.map((e) => e[0]), edges.map((e) => e[1]), edges.map((e) => e[2]), edges.map((e) => e[3])],
    );
  }
}

/** Merkle log leaves for the new rows, in input order, dense seqs under the log_state lock. */
async function appendLeaves(tx: DbClient, inOrder: Prepared[], createdAt: Map<string, string>): Promise<Map<string, number>> {
  const seqOf = new Map<string, number>();
  const fresh = inOrder.filter((p) => createdAt.has(p.key));
  if (!fresh.length) return seqOf;
  const st = await tx.query<{ size: number }>('SELECT size FROM log_state WHERE id FOR UPDATE');
  const base = Number(st.rows[0]!.size);
  const leaves = fresh.map((p, i) => {
    const leaf = evidenceLeaf({ id: p.id, kind: p.input.kind, subjects: p.input.subjects, tenant: p.tenant, time: createdAt.get(p.key)! });
    seqOf.set(p.key, base + i);
    return { seq: base + i, tenant: p.tenant, id: p.id, leaf, hash: leafHash(leaf) };
  });
  await tx.query(
    `INSERT INTO evidence_log (seq, tenant_id, item_id, leaf, leaf_hash) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::bytea[])`,
    [leaves.map((l) => l.seq), leaves.map((l) => l.tenant), leaves.map((l) => l.id), leaves.map((l) => l.leaf), leaves.map((l) => l.hash)],
  );
  await tx.query('UPDATE log_state SET size = size + $1 WHERE id', [fresh.length]);
  return seqOf;
}

async function existingSeqs(tx: DbClient, rows: Prepared[]): Promise<Map<string, number>> {
  if (!rows.length) return new Map();
  const r = await tx.query<{ tenant_id: string; item_id: string; seq: number }>(
    'SELECT l.tenant_id, l.item_id, l.seq FROM evidence_log l JOIN unnest($1::text[], $2::text[]) AS k(t, id) ON l.tenant_id = k.t AND l.item_id = k.id',
    [rows.map((x) => x.tenant), rows.map((x) => x.id)],
  );
  return new Map(r.rows.map((x) => [keyOf(x.tenant_id, x.item_id), Number(x.seq)]));
}
