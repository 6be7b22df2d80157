import { createHash } from 'node:crypto';
import type { Db } from '../../db/pool';
import { withTransaction } from '../../db/pool';
import type { BlobStores } from '../../blob';
import { sha256Digest } from '../../lib/hash';
import { badInput } from '../../lib/errors';
import { mapLimit } from '../../lib/concurrency';
export { mapLimit };
import { evidenceLeaf, validateDigest, validateKind, type IngestInput, type IngestResult } from '../evidence';

interface Prepared {
  input: IngestInput & { data: Buffer };
  tenant: string;
  id: string;
  size: number;
  key: string;
}

/**
 * Batched ingest with the same guarantees as EvidenceService.ingest: every blob is written
 * (verified, atomic, replica too) before the index transaction, and the index rows, subjects,
 * edges and Merkle log leaves of the whole batch commit together. What it saves is one
 * PostgreSQL commit (WAL fsync) and one log_state lock per item, and it overlaps the blob
 * fsyncs — which is what caps one-at-a-time ingest at a few hundred items/s.
 *
 * Rows are inserted in (tenant, id) order so two concurrent batches can't deadlock on each
 * other's unique keys; the log_state lock is taken only after every insert, as in ingest().
 * Results are in input order; a digest repeated within the batch is stored once
 * (the second occurrence reports created=false).
 */
export async function ingestMany(
  db: Db,
  blobs: BlobStores,
  inputs: (IngestInput & { data: Buffer })[],
  opts: { concurrency?: number } = {},
): Promise<IngestResult[]> {
  const prepared: Prepared[] = inputs.map((input) => {
    validateKind(input.kind);
    if (!input.data) throw badInput('ingestMany needs in-memory data for every item');
    if (!input.subjects.length) throw badInput('at least one subject artifact digest is required');
    input.subjects.forEach((s) => validateDigest(s, 'artifact digest'));
    if (!input.mediaType || input.mediaType.length > 255) throw badInput('media type is required');
    for (const p of input.parents ?? []) validateDigest(p.id, 'parent id');
    const id = sha256Digest(input.data);
    if (input.expectedDigest && input.expectedDigest !== id)
      throw badInput(`digest mismatch: declared ${input.expectedDigest}, content hashes to ${id}; nothing stored`);
    return { input, tenant: input.tenant, id, size: input.data.length, key: `${input.tenant}\u0000${id}` };
  });
  if (!prepared.length) return [];

  // Blobs first. Skip the write only when the item is indexed as present AND its blob exists.
  const ids = [...new Set(prepared.map((p) => p.id))];
  const existing = await db.query('SELECT tenant_id, id, state FROM evidence_items WHERE id = ANY($1)', [ids]);
  const presentIds = new Set(existing.rows.filter((r) => r.state === 'present').map((r) => r.id as string));
  const byId = new Map(prepared.map((p) => [p.id, p]));
  await mapLimit([...byId.values()], opts.concurrency ?? 32, async (p) => {
    if (presentIds.has(p.id) && (await blobs.primary.stat(p.id))) return;
    await blobs.primary.put(p.id, p.input.data);
    if (blobs.replica) await blobs.replica.put(p.id, p.input.data);
  });

  // Unique (tenant, id) rows in key order; first occurrence wins the metadata.
  const unique = new Map<string, Prepared>();
  for (const p of prepared) if (!unique.has(p.key)) unique.set(p.key, p);
  const rows = [...unique.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  return withTransaction(db, async (tx) => {
    const ins = await tx.query(
      `INSERT INTO evidence_items (tenant_id, id, media_type, kind, predicate_type, size_bytes, producer, labels)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::jsonb[], $8::jsonb[])
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
      ],
    );
    const createdAt = new Map(ins.rows.map((r) => [`${r.tenant_id}\u0000${r.id}`, new Date(r.created_at).toISOString()]));
    const notCreated = rows.filter((r) => !createdAt.has(r.key));
    if (notCreated.length) {
      // As in ingest(): a purged item whose bytes come back is present again.
      await tx.query(
        `UPDATE evidence_items i SET state='present', state_reason=NULL, state_changed_at=now()
         FROM unnest($1::text[], $2::text[]) AS k(t, id) WHERE i.tenant_id=k.t AND i.id=k.id AND i.state='purged'`,
        [notCreated.map((r) => r.tenant), notCreated.map((r) => r.id)],
      );
    }
    const subj: [string, string, string][] = [];
    const edges: [string, string, string, string][] = [];
    for (const p of prepared) {
      for (const s of p.input.subjects) subj.push([p.tenant, p.id, s]);
      for (const e of p.input.parents ?? []) edges.push([p.tenant, p.id, e.id, e.relation ?? 'derived-from']);
    }
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

    // Merkle log leaves for the new rows, in input order, dense seqs under the log_state lock.
    const seqOf = new Map<string, number>();
    const fresh = [...new Map(prepared.filter((p) => createdAt.has(p.key)).map((p) => [p.key, p])).values()];
    if (fresh.length) {
      const st = await tx.query('SELECT size FROM log_state WHERE id FOR UPDATE');
      const base = Number(st.rows[0].size);
      const leaves = fresh.map((p, i) => {
        const leaf = evidenceLeaf({ id: p.id, kind: p.input.kind, subjects: p.input.subjects, tenant: p.tenant, time: createdAt.get(p.key)! });
        seqOf.set(p.key, base + i);
        return {
          seq: base + i,
          tenant: p.tenant,
          id: p.id,
          leaf,
          hash: createHash('sha256')
            .update(Buffer.from([0]))
            .update(leaf)
            .digest(),
        };
      });
      await tx.query(
        `INSERT INTO evidence_log (seq, tenant_id, item_id, leaf, leaf_hash) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::bytea[])`,
        [leaves.map((l) => l.seq), leaves.map((l) => l.tenant), leaves.map((l) => l.id), leaves.map((l) => l.leaf), leaves.map((l) => l.hash)],
      );
      await tx.query('UPDATE log_state SET size = size + $1 WHERE id', [fresh.length]);
    }
    const old = notCreated.length
      ? await tx.query(
          'SELECT l.tenant_id, l.item_id, l.seq FROM evidence_log l JOIN unnest($1::text[], $2::text[]) AS k(t, id) ON l.tenant_id=k.t AND l.item_id=k.id',
          [notCreated.map((r) => r.tenant), notCreated.map((r) => r.id)],
        )
      : { rows: [] as Record<string, any>[] };
    for (const r of old.rows) seqOf.set(`${r.tenant_id}\u0000${r.item_id}`, Number(r.seq));

    const seen = new Set<string>();
    return prepared.map((p) => {
      const created = createdAt.has(p.key) && !seen.has(p.key);
      seen.add(p.key);
      return { id: p.id, size: p.size, created, alreadyPresent: !created, logSeq: seqOf.get(p.key) ?? null };
    });
  });
}
