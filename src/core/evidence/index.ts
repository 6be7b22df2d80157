import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Db } from '../db/pool';
import { withTransaction } from '../db/pool';
import type { BlobStores } from '../blob';
import { BlobNotFoundError } from '../blob';
import { canonicalJson } from '../lib/canonical';
import { isDigest, sha256Digest } from '../lib/hash';
import { badInput, notFound, integrity, StellaError } from '../lib/errors';
import { audit } from './audit';
import { ingestMany } from './locker/batch-ingest';
import { encodeLeaf } from '../merkle/leaf';

export const EVIDENCE_KINDS = ['sbom', 'scan-report', 'vex', 'attestation', 'replay-bundle', 'log', 'other'] as const;
export type EvidenceKind = (typeof EVIDENCE_KINDS)[number];

export interface IngestInput {
  tenant: string;
  /** Either the bytes or a local file with them (streamed). */
  data?: Buffer;
  filePath?: string;
  /** When given, the content must hash to this digest or nothing is stored. */
  expectedDigest?: string;
  mediaType: string;
  kind: EvidenceKind;
  subjects: string[];
  predicateType?: string;
  producer?: Record<string, unknown>;
  parents?: { id: string; relation?: string }[];
  labels?: Record<string, string>;
}

export interface IngestResult {
  id: string;
  size: number;
  /** false when the same bytes were already indexed for this tenant (idempotent ingest). */
  created: boolean;
  alreadyPresent: boolean;
  logSeq: number | null;
}

export interface EvidenceItem {
  tenant: string;
  id: string;
  mediaType: string;
  kind: EvidenceKind;
  predicateType: string | null;
  size: number;
  producer: Record<string, unknown>;
  labels: Record<string, string>;
  tier: string;
  state: string;
  stateReason: string | null;
  createdAt: string;
  subjects: string[];
  parents: { id: string; relation: string }[];
  children: { id: string; relation: string }[];
  logSeq: number | null;
}

export type EvidenceHead = Pick<EvidenceItem, 'id' | 'kind' | 'mediaType' | 'size' | 'state' | 'stateReason' | 'tier'>;

export function validateDigest(d: string, what = 'digest'): string {
  if (!isDigest(d)) throw badInput(`malformed ${what} ${JSON.stringify(d)}: expected sha256:<64 lowercase hex>`);
  return d;
}

export function validateKind(k: string): EvidenceKind {
  if (!(EVIDENCE_KINDS as readonly string[]).includes(k))
    throw badInput(`unknown evidence kind ${JSON.stringify(k)}: expected one of ${EVIDENCE_KINDS.join(', ')}`);
  return k as EvidenceKind;
}

/** Leaf bytes for the evidence Merkle log: the Merkle library's one canonical leaf encoding. */
export function evidenceLeaf(e: { id: string; kind: string; subjects: string[]; tenant: string; time: string }): Buffer {
  return encodeLeaf(e);
}

async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

type Row = Record<string, any>;

function toItem(r: Row, subjects: string[], parents: Row[], children: Row[]): EvidenceItem {
  return {
    tenant: r.tenant_id,
    id: r.id,
    mediaType: r.media_type,
    kind: r.kind,
    predicateType: r.predicate_type,
    size: Number(r.size_bytes),
    producer: r.producer,
    labels: r.labels,
    tier: r.tier,
    state: r.state,
    stateReason: r.state_reason,
    createdAt: new Date(r.created_at).toISOString(),
    subjects,
    parents: parents.map((p) => ({ id: p.parent_id, relation: p.relation })),
    children: children.map((c) => ({ id: c.child_id, relation: c.relation })),
    logSeq: r.seq ?? null,
  };
}

export class EvidenceService {
  constructor(
    private readonly db: Db,
    private readonly blobs: BlobStores,
  ) {}

  /**
   * Blob first (verified, atomic), then the index row, subjects, edges and Merkle log leaf in
   * one transaction. A crash between the two leaves an unindexed blob that `index rebuild`
   * finds; never an index row without its blob.
   */
  async ingest(input: IngestInput): Promise<IngestResult> {
    validateKind(input.kind);
    if (!input.subjects.length) throw badInput('at least one subject artifact digest is required');
    input.subjects.forEach((s) => validateDigest(s, 'artifact digest'));
    if (!input.mediaType || input.mediaType.length > 255) throw badInput('media type is required');
    for (const p of input.parents ?? []) validateDigest(p.id, 'parent id');
    let digest: string;
    let size: number;
    if (input.data) {
      digest = sha256Digest(input.data);
      size = input.data.length;
    } else if (input.filePath) {
      ({ digest, size } = await hashFile(input.filePath));
    } else throw badInput('no content given');
    if (input.expectedDigest && input.expectedDigest !== digest) {
      throw badInput(`digest mismatch: declared ${input.expectedDigest}, content hashes to ${digest}; nothing stored`);
    }

    const existing = await this.db.query('SELECT state FROM evidence_items WHERE tenant_id=$1 AND id=$2', [input.tenant, digest]);
    const needBlob = existing.rowCount === 0 || existing.rows[0].state !== 'present' || !(await this.blobs.primary.stat(digest));
    if (needBlob) {
      const put = (s: BlobStores['primary']) => (input.data ? s.put(digest, input.data) : s.putFile(digest, input.filePath!));
      await put(this.blobs.primary);
      if (this.blobs.replica) await put(this.blobs.replica);
    }

    return withTransaction(this.db, async (tx) => {
      const ins = await tx.query(
        `INSERT INTO evidence_items (tenant_id, id, media_type, kind, predicate_type, size_bytes, producer, labels)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (tenant_id, id) DO NOTHING RETURNING created_at`,
        [
          input.tenant,
          digest,
          input.mediaType,
          input.kind,
          input.predicateType ?? null,
          size,
          JSON.stringify(input.producer ?? {}),
          JSON.stringify(input.labels ?? {}),
        ],
      );
      const created = ins.rowCount === 1;
      if (!created) {
        // A purged item whose bytes come back is present again (the blob was just rewritten).
        await tx.query(
          `UPDATE evidence_items SET state='present', tier='hot', state_reason=NULL, state_changed_at=now() WHERE tenant_id=$1 AND id=$2 AND state='purged'`,
          [input.tenant, digest],
        );
      }
      for (const s of input.subjects) {
        await tx.query('INSERT INTO evidence_subjects (tenant_id, item_id, artifact_digest) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING', [
          input.tenant,
          digest,
          s,
        ]);
      }
      for (const p of input.parents ?? []) {
        await tx.query('INSERT INTO evidence_edges (tenant_id, child_id, parent_id, relation) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING', [
          input.tenant,
          digest,
          p.id,
          p.relation ?? 'derived-from',
        ]);
      }
      let logSeq: number | null = null;
      if (created) {
        const st = await tx.query('SELECT size FROM log_state WHERE id FOR UPDATE');
        logSeq = Number(st.rows[0].size);
        const leaf = evidenceLeaf({
          id: digest,
          kind: input.kind,
          subjects: input.subjects,
          tenant: input.tenant,
          time: new Date(ins.rows[0].created_at).toISOString(),
        });
        const leafHash = createHash('sha256')
          .update(Buffer.from([0]))
          .update(leaf)
          .digest();
        await tx.query('INSERT INTO evidence_log (seq, tenant_id, item_id, leaf, leaf_hash) VALUES ($1,$2,$3,$4,$5)', [
          logSeq,
          input.tenant,
          digest,
          leaf,
          leafHash,
        ]);
        await tx.query('UPDATE log_state SET size = size + 1 WHERE id');
      } else {
        const r = await tx.query('SELECT seq FROM evidence_log WHERE tenant_id=$1 AND item_id=$2', [input.tenant, digest]);
        logSeq = r.rows[0]?.seq ?? null;
      }
      return { id: digest, size, created, alreadyPresent: !created, logSeq };
    });
  }

  /** Batched ingest with ingest()'s guarantees and one commit per batch (src/core/locker/batch-ingest.ts). */
  ingestMany(inputs: (IngestInput & { data: Buffer })[], opts?: { concurrency?: number }): Promise<IngestResult[]> {
    return ingestMany(this.db, this.blobs, inputs, opts);
  }

  async find(tenant: string, id: string): Promise<EvidenceItem | null> {
    validateDigest(id, 'evidence id');
    const r = await this.db.query(
      `SELECT i.*, l.seq FROM evidence_items i LEFT JOIN evidence_log l ON l.tenant_id=i.tenant_id AND l.item_id=i.id WHERE i.tenant_id=$1 AND i.id=$2`,
      [tenant, id],
    );
    if (!r.rowCount) return null;
    const [subs, parents, children] = await Promise.all([
      this.db.query('SELECT artifact_digest FROM evidence_subjects WHERE tenant_id=$1 AND item_id=$2 ORDER BY artifact_digest', [tenant, id]),
      this.db.query('SELECT parent_id, relation FROM evidence_edges WHERE tenant_id=$1 AND child_id=$2 ORDER BY parent_id', [tenant, id]),
      this.db.query('SELECT child_id, relation FROM evidence_edges WHERE tenant_id=$1 AND parent_id=$2 ORDER BY child_id', [tenant, id]),
    ]);
    return toItem(
      r.rows[0],
      subs.rows.map((s) => s.artifact_digest),
      parents.rows,
      children.rows,
    );
  }

  async get(tenant: string, id: string): Promise<EvidenceItem> {
    const item = await this.find(tenant, id);
    if (!item) throw notFound(`evidence ${id} not found`);
    return item;
  }

  async list(q: {
    tenant: string;
    artifact?: string;
    kind?: string;
    limit?: number;
    cursor?: string;
    includeAll?: boolean;
  }): Promise<{ items: EvidenceItem[]; nextCursor: string | null }> {
    if (q.artifact) validateDigest(q.artifact, 'artifact digest');
    if (q.kind) validateKind(q.kind);
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    const params: unknown[] = [q.tenant];
    const where = ['i.tenant_id=$1'];
    if (!q.includeAll) where.push(`i.state <> 'purged'`);
    if (q.artifact) {
      params.push(q.artifact);
      where.push(`EXISTS (SELECT 1 FROM evidence_subjects s WHERE s.tenant_id=i.tenant_id AND s.item_id=i.id AND s.artifact_digest=$${params.length})`);
    }
    if (q.kind) {
      params.push(q.kind);
      where.push(`i.kind=$${params.length}`);
    }
    if (q.cursor) {
      // Keyset pagination on (created_at, id): stable under concurrent inserts. The cursor keeps
      // PostgreSQL's microsecond timestamp text, since a JS Date would round to milliseconds.
      const [ts, id] = Buffer.from(q.cursor, 'base64url').toString().split('|');
      if (!ts || !id) throw badInput('malformed cursor');
      params.push(ts, id);
      where.push(`(i.created_at, i.id) > ($${params.length - 1}::timestamptz, $${params.length})`);
    }
    params.push(limit + 1);
    const r = await this.db.query(
      `SELECT i.*, i.created_at::text AS created_key, l.seq FROM evidence_items i LEFT JOIN evidence_log l ON l.tenant_id=i.tenant_id AND l.item_id=i.id
       WHERE ${where.join(' AND ')} ORDER BY i.created_at, i.id LIMIT $${params.length}`,
      params,
    );
    const rows = r.rows.slice(0, limit);
    const ids = rows.map((x) => x.id);
    const [subs, edges] = ids.length
      ? await Promise.all([
          this.db.query('SELECT item_id, artifact_digest FROM evidence_subjects WHERE tenant_id=$1 AND item_id = ANY($2) ORDER BY artifact_digest', [
            q.tenant,
            ids,
          ]),
          this.db.query('SELECT child_id, parent_id, relation FROM evidence_edges WHERE tenant_id=$1 AND (child_id = ANY($2) OR parent_id = ANY($2))', [
            q.tenant,
            ids,
          ]),
        ])
      : [{ rows: [] as Row[] }, { rows: [] as Row[] }];
    const items = rows.map((row) =>
      toItem(
        row,
        subs.rows.filter((s) => s.item_id === row.id).map((s) => s.artifact_digest),
        edges.rows.filter((e) => e.child_id === row.id),
        edges.rows.filter((e) => e.parent_id === row.id),
      ),
    );
    const last = rows[rows.length - 1];
    const nextCursor = r.rows.length > limit && last ? Buffer.from(`${last.created_key}|${last.id}`).toString('base64url') : null;
    return { items, nextCursor };
  }

  /** Streams a present item's bytes; the stream fails at the end if the blob is damaged. */
  /** What retrieval needs, in one query (no subjects or edges): the hot path of GET /evidence/:id. */
  async head(tenant: string, id: string): Promise<EvidenceHead> {
    validateDigest(id, 'evidence id');
    const r = await this.db.query('SELECT id, kind, media_type, size_bytes, state, state_reason, tier FROM evidence_items WHERE tenant_id=$1 AND id=$2', [
      tenant,
      id,
    ]);
    if (!r.rowCount) throw notFound(`evidence ${id} not found`);
    const x = r.rows[0];
    return { id: x.id, kind: x.kind, mediaType: x.media_type, size: Number(x.size_bytes), state: x.state, stateReason: x.state_reason, tier: x.tier };
  }

  async open<T extends EvidenceHead = EvidenceItem>(tenant: string, id: string, known?: T): Promise<{ item: T; stream: Readable }> {
    const item = (known ?? (await this.get(tenant, id))) as T;
    if (item.state === 'purged') throw notFound(`evidence ${id} was purged (${item.stateReason ?? 'retention'})`);
    try {
      return { item, stream: await this.storeOf(item).get(id) };
    } catch (e) {
      if (e instanceof BlobNotFoundError) throw integrity(`evidence ${id} is indexed but its blob is missing from ${this.blobs.primary.location}`);
      throw e;
    }
  }

  async read(tenant: string, id: string, known?: EvidenceHead): Promise<Buffer> {
    const item = known ?? (await this.head(tenant, id));
    if (item.state === 'purged') throw notFound(`evidence ${id} was purged`);
    try {
      return await this.storeOf(item).getBuffer(id);
    } catch (e) {
      if (e instanceof BlobNotFoundError) throw integrity(`evidence ${id} is indexed but its blob is missing`);
      if ((e as { code?: string }).code === 'DIGEST_MISMATCH') throw integrity(`evidence ${id} failed its integrity check: ${(e as Error).message}`);
      throw e;
    }
  }

  /** Cold-tier items live under the `cold` namespace of the primary store (retention tier move). */
  storeOf(item: Pick<EvidenceHead, 'tier'>) {
    return item.tier === 'cold' ? this.blobs.primary.withPrefix('cold') : this.blobs.primary;
  }

  async setState(tenant: string, id: string, state: 'present' | 'corrupted' | 'purged' | 'quarantined', reason: string, actor: string): Promise<void> {
    const r = await this.db.query('UPDATE evidence_items SET state=$3, state_reason=$4, state_changed_at=now() WHERE tenant_id=$1 AND id=$2', [
      tenant,
      id,
      state,
      reason,
    ]);
    if (!r.rowCount) throw notFound(`evidence ${id} not found`);
    await audit(this.db, { tenant, actor, action: `evidence.state.${state}`, target: id, reason });
  }
}

export function isStellaError(e: unknown): e is StellaError {
  return e instanceof StellaError;
}
