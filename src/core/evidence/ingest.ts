/**
 * The one evidence ingest: a single item is a batch of one (API upload, CLI, bulk-ingest
 * workflow, scan/attest/replay outputs). Blobs first (verified, fsynced, atomic, replica too,
 * bounded concurrency), then one transaction for the whole batch: index rows, subjects and edges
 * (one multi-row statement per table), then its Merkle leaves appended under the log's append
 * lock, which is held only through that commit, so parallel ingests never queue
 * behind each other's blob or index I/O. If the index write fails (PostgreSQL down mid-upload),
 * the blobs this call newly wrote are removed again; a crash between blobs and index leaves an
 * unindexed blob that the full verify reports and `index rebuild` adopts (re-running the ingest
 * converges); never an index row without its blob or its leaf.
 */
import { promises as fsp } from 'node:fs';
import type { BlobStore, BlobStores } from '../../blob';
import type { Db, DbClient } from '../../db/pool';
import { withTransaction } from '../../db/pool';
import { mapLimit } from '../../lib/concurrency';
import { badInput, StellaError } from '../../lib/errors';
import { sha256Digest, sha256File } from '../../lib/hash';
import { leafHash } from '../../merkle/hash';
import { evidenceLeaf, type IngestInput, type IngestResult, validateIngestInput } from './model';
import { transitionItems } from './state';

/** Files up to this size are read once: hashed and written from the same bytes. */
const READ_ONCE_BYTES = 1 << 20;

interface Prepared {
  input: IngestInput;
  tenant: string;
  id: string;
  size: number;
  /** `tenant NUL id`: the index row's key. */
  key: string;
  /** The content, when it is in memory (given, or a small file read once). */
  data?: Buffer;
}

const keyOf = (tenant: string, id: string) => `${tenant}\u0000${id}`;

/**
 * Ingests `inputs` (bytes or local files). Results are in input order; a digest repeated within
 * the batch is stored once (the second occurrence reports created=false). Rows are inserted in
 * (tenant, id) order so two concurrent batches can't deadlock on each other's unique keys, and
 * the log's append lock only after all of them. A purged item whose bytes come back is present
 * again, hot, with its blob in the hot store.
 */
export async function ingestBatch(db: Db, blobs: BlobStores, inputs: readonly IngestInput[], opts: { concurrency?: number } = {}): Promise<IngestResult[]> {
  for (const input of inputs) validateIngestInput(input);
  const concurrency = opts.concurrency ?? 32;
  const prepared = await mapLimit(inputs, concurrency, prepare);
  if (!prepared.length) return [];
  await checkParents(db, prepared);
  const written = await writeBlobs(db, blobs, prepared, concurrency);
  // The index rows and their Merkle leaves commit together (one commit per batch): the log's
  // append lock is taken last, after every row of the batch is written, and held only through
  // the commit, so concurrent batches overlap everything but the append and its commit.
  const keys = [...new Set(prepared.map((p) => p.key))];
  let results: IngestResult[];
  let seqOf: Map<string, number>;
  try {
    [results, seqOf] = await withTransaction(db, async (tx) => {
      const { results, leaves } = await indexBatch(tx, prepared);
      return [results, await appendLeaves(tx, keys, leaves)] as const;
    });
  } catch (e) {
    await removeWritten(blobs, written);
    throw e;
  }
  const unknown = prepared.filter((p) => !seqOf.has(p.key));
  if (unknown.length) for (const [k, v] of await logSeqs(db, unknown)) seqOf.set(k, v);
  return results.map((r, i) => ({ ...r, logSeq: seqOf.get(prepared[i]!.key) ?? null }));
}

/**
 * Group commit for single ingests: items submitted while earlier batches are in flight are
 * ingested together as the next batch (at most `inFlight` batches at once, `maxBatch` items each).
 * A batch refused for bad input (one item's digest, parent or metadata; refused before any byte
 * is stored) is retried item by item, so each caller gets its own answer; any other failure is
 * every caller's (nothing of theirs was indexed).
 */
export class Coalescer {
  private readonly queue: { input: IngestInput; resolve: (r: IngestResult) => void; reject: (e: unknown) => void }[] = [];
  private running = 0;

  constructor(
    private readonly ingest: (inputs: IngestInput[]) => Promise<IngestResult[]>,
    private readonly opts: { inFlight: number; maxBatch: number } = { inFlight: 2, maxBatch: 64 },
  ) {}

  submit(input: IngestInput): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.running < this.opts.inFlight) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running++;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.opts.maxBatch);
        try {
          const rs = await this.ingest(batch.map((b) => b.input));
          for (const [i, b] of batch.entries()) b.resolve(rs[i]!);
        } catch (e) {
          if (batch.length > 1 && e instanceof StellaError && e.code === 'BAD_INPUT') {
            await Promise.all(batch.map((b) => this.ingest([b.input]).then(([r]) => b.resolve(r!), b.reject)));
          } else for (const b of batch) b.reject(e);
        }
      }
    } finally {
      this.running--;
    }
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

/** Hashes the content (once) and checks it against the declared digest. */
async function prepare(input: IngestInput): Promise<Prepared> {
  const { digest, size, data } = await hashContent(input);
  if (input.expectedDigest && input.expectedDigest !== digest)
    throw badInput(`digest mismatch: declared ${input.expectedDigest}, content hashes to ${digest}; nothing stored`);
  return { input, tenant: input.tenant, id: digest, size, key: keyOf(input.tenant, digest), ...(data ? { data } : {}) };
}

/**
 * Digest and size of the content: bytes in memory are hashed; a spooled upload was hashed while
 * it was written; a small file is read once (and its bytes kept for the write); a large file is
 * streamed (the store's verified copy reads it again).
 */
async function hashContent(input: IngestInput): Promise<{ digest: string; size: number; data?: Buffer }> {
  if (input.data) return { digest: sha256Digest(input.data), size: input.data.length, data: input.data };
  if (input.spooled) return input.spooled;
  const fh = await fsp.open(input.filePath!, 'r');
  try {
    const expected = (await fh.stat()).size;
    if (expected <= READ_ONCE_BYTES) {
      const buf = Buffer.allocUnsafe(expected + 1);
      const { bytesRead } = await fh.read(buf, 0, expected + 1, 0);
      // Read exactly what the stat said; a file that changed meanwhile is streamed instead.
      if (bytesRead === expected) {
        const data = buf.subarray(0, bytesRead);
        return { digest: sha256Digest(data), size: bytesRead, data };
      }
    }
  } finally {
    await fh.close();
  }
  return sha256File(input.filePath!);
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
  const byId = new Map<string, Prepared[]>();
  for (const p of prepared) byId.set(p.id, [...(byId.get(p.id) ?? []), p]);
  const groups = [...byId.values()];
  const existed = await mapLimit(groups, concurrency, async (g) => !!(await blobs.primary.stat(g[0]!.id)));
  // Only a blob already in the store can be skipped, so only those need their index rows looked up.
  const present = await presentKeys(db, groups.filter((_, i) => existed[i]).flat());
  const fresh: string[] = [];
  const synced = await mapLimit(groups, concurrency, async (group, i) => {
    const first = group[0]!;
    if (existed[i] && group.every((p) => present.has(p.key))) return [];
    const opts = { ...(first.input.spooled ? { trusted: true, size: first.size } : {}), ...(existed[i] ? {} : { absent: true }), syncDir: false };
    const put = (s: BlobStore, last: boolean) =>
      first.data ? s.put(first.id, first.data, opts) : s.putFile(first.id, first.input.filePath!, { ...opts, move: last && !!first.input.spooled });
    // A spooled upload is moved into the last store it goes to (renamed, not copied) and read no more.
    if (blobs.replica) await put(blobs.replica, false);
    await put(blobs.primary, true);
    if (!existed[i]) fresh.push(first.id);
    return [first.id];
  });
  // The renames of the batch made durable: one fsync per fan-out directory, not one per file.
  const ids = synced.flat();
  await Promise.all([blobs.primary.syncDirs(ids), blobs.replica?.syncDirs(ids)]);
  return fresh;
}

async function presentKeys(db: Db, prepared: Prepared[]): Promise<Set<string>> {
  if (!prepared.length) return new Set();
  const r = await db.query<{ tenant_id: string; id: string }>(
    `SELECT i.tenant_id, i.id FROM evidence_items i JOIN unnest($1::text[], $2::text[]) AS k(t, id) ON i.tenant_id = k.t AND i.id = k.id
      WHERE i.state = 'present'`,
    [prepared.map((p) => p.tenant), prepared.map((p) => p.id)],
  );
  return new Set(r.rows.map((x) => keyOf(x.tenant_id, x.id)));
}

/** Index rows, revivals, subjects, edges and log leaves of one batch, inside `tx`. */
async function indexBatch(tx: DbClient, prepared: Prepared[]): Promise<{ results: IngestResult[]; leaves: NewLeaf[] }> {
  const unique = new Map<string, Prepared>();
  for (const p of prepared) if (!unique.has(p.key)) unique.set(p.key, p);
  const inOrder = [...unique.values()];
  const rows = [...inOrder].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const createdAt = await insertItems(tx, rows);
  const notCreated = rows.filter((r) => !createdAt.has(r.key));
  await revivePurged(tx, notCreated);
  await insertSubjectsAndEdges(tx, prepared);
  const seen = new Set<string>();
  const results = prepared.map((p) => {
    const created = createdAt.has(p.key) && !seen.has(p.key);
    seen.add(p.key);
    return { id: p.id, size: p.size, created, alreadyPresent: !created, logSeq: null };
  });
  return { results, leaves: newLeaves(inOrder, createdAt) };
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

/** A new row's Merkle leaf, to be appended to the log. */
interface NewLeaf {
  tenant: string;
  id: string;
  leaf: Buffer;
}

/** The Merkle log leaves of the rows just created, in input order. */
function newLeaves(inOrder: Prepared[], createdAt: Map<string, string>): NewLeaf[] {
  return inOrder
    .filter((p) => createdAt.has(p.key))
    .map((p) => ({
      tenant: p.tenant,
      id: p.id,
      leaf: evidenceLeaf({ id: p.id, kind: p.input.kind, subjects: p.input.subjects, tenant: p.tenant, time: createdAt.get(p.key)! }),
    }));
}

/** The log's append lock (an advisory lock: waiting for it writes nothing, unlike a row lock). */
const LOG_APPEND_LOCK = 0x5354_4c4c; // "STLL"

/**
 * Appends the batch's new leaves to the log under its append lock, inside `tx` (dense seqs after
 * log_state.size, in input order), after any leaves an earlier version left waiting in
 * evidence_log_pending (a crash between its two commits). A batch with no new leaf takes the lock
 * only when one of `mine` (its `tenant NUL id` keys) still waits there, so an idempotent re-run
 * takes none. Returns the seq each leaf appended here got (by `tenant NUL id`).
 */
async function appendLeaves(tx: DbClient, mine: readonly string[], fresh: readonly NewLeaf[]): Promise<Map<string, number>> {
  if (!fresh.length && !(await anyPending(tx, mine))) return new Map();
  await tx.query('SELECT pg_advisory_xact_lock($1)', [LOG_APPEND_LOCK]);
  const r = await tx.query<{ tenant_id: string; item_id: string; seq: string }>(
    `WITH base AS (SELECT size FROM log_state WHERE id),
          moved AS (DELETE FROM evidence_log_pending RETURNING n, tenant_id, item_id, leaf, leaf_hash),
          queued AS (SELECT 0 AS src, n AS ord, tenant_id, item_id, leaf, leaf_hash FROM moved
                     UNION ALL
                     SELECT 1, x.ord, x.t, x.id, x.leaf, x.h FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[]) WITH ORDINALITY AS x(t, id, leaf, h, ord)),
          ins AS (INSERT INTO evidence_log (seq, tenant_id, item_id, leaf, leaf_hash)
                  SELECT (SELECT size FROM base) + row_number() OVER (ORDER BY q.src, q.ord) - 1, q.tenant_id, q.item_id, q.leaf, q.leaf_hash FROM queued q
                   -- an item that already has its leaf (its row was re-created) keeps that one
                   WHERE NOT EXISTS (SELECT 1 FROM evidence_log l WHERE l.tenant_id = q.tenant_id AND l.item_id = q.item_id)
                  RETURNING seq, tenant_id, item_id),
          upd AS (UPDATE log_state SET size = (SELECT size FROM base) + (SELECT count(*) FROM ins) WHERE id AND EXISTS (SELECT 1 FROM ins) RETURNING size)
     SELECT tenant_id, item_id, seq FROM ins, upd`,
    [fresh.map((l) => l.tenant), fresh.map((l) => l.id), fresh.map((l) => l.leaf), fresh.map((l) => leafHash(l.leaf))],
  );
  return new Map(r.rows.map((x) => [keyOf(x.tenant_id, x.item_id), Number(x.seq)]));
}

async function anyPending(q: DbClient, mine: readonly string[]): Promise<boolean> {
  if (!mine.length) return false;
  const split = mine.map((k) => k.split('\u0000'));
  const r = await q.query(
    'SELECT 1 FROM evidence_log_pending p JOIN unnest($1::text[], $2::text[]) AS k(t, id) ON p.tenant_id = k.t AND p.item_id = k.id LIMIT 1',
    [split.map((x) => x[0]), split.map((x) => x[1])],
  );
  return !!r.rowCount;
}

/** The log seq of each row of the batch that has one. */
async function logSeqs(db: Db, rows: Prepared[]): Promise<Map<string, number>> {
  if (!rows.length) return new Map();
  const r = await db.query<{ tenant_id: string; item_id: string; seq: number }>(
    'SELECT l.tenant_id, l.item_id, l.seq FROM evidence_log l JOIN unnest($1::text[], $2::text[]) AS k(t, id) ON l.tenant_id = k.t AND l.item_id = k.id',
    [rows.map((x) => x.tenant), rows.map((x) => x.id)],
  );
  return new Map(r.rows.map((x) => [keyOf(x.tenant_id, x.item_id), Number(x.seq)]));
}
