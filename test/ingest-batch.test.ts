/**
 * The one batched ingest path (issue 15) on real servers (PostgreSQL, Temporal, filesystem and
 * moto S3): idempotency, a crash mid-batch (before the index commit, and between the index commit
 * and the numbering of the Merkle leaves), concurrent duplicates, mixed tenants, and an upload
 * moved into the store from the spool.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobStore, BlobStores } from '../src/blob';
import type { Db } from '../src/db/pool';
import { ingestBatch } from '../src/core/evidence';
import { evidenceLeaf, type IngestInput } from '../src/core/evidence/model';
import { sha256Digest } from '../src/lib/hash';
import { leafHash } from '../src/merkle/hash';
import { decodeLeaf } from '../src/merkle/leaf';
import { apiFor, bearer } from './support/api';
import { type Harness, harness } from './support/context';

const ART = sha256Digest('registry.example/ingest-batch@1');
const item = (tenant: string, data: Buffer): IngestInput => ({ tenant, data, kind: 'other', mediaType: 'application/octet-stream', subjects: [ART] });
const contents = (n: number) => Array.from({ length: n }, () => randomBytes(600));

/** The whole log is consistent: dense seqs 0..size-1, one leaf per item, nothing waiting, every leaf naming its row. */
async function expectLogConsistent(db: Db): Promise<number> {
  const r = await db.query(
    `SELECT (SELECT size FROM log_state)::int AS size, count(*)::int AS n, coalesce(max(seq), -1)::int AS max,
            (SELECT count(*) FROM evidence_log_pending)::int AS pending,
            (SELECT count(*) FROM evidence_items i WHERE NOT EXISTS (SELECT 1 FROM evidence_log l WHERE l.tenant_id = i.tenant_id AND l.item_id = i.id))::int AS unlogged,
            (SELECT count(*) FROM evidence_log l WHERE NOT EXISTS (SELECT 1 FROM evidence_items i WHERE i.tenant_id = l.tenant_id AND i.id = l.item_id))::int AS orphans
       FROM evidence_log`,
  );
  const s = r.rows[0];
  expect(s).toMatchObject({ n: s.size, max: s.size - 1, pending: 0, unlogged: 0, orphans: 0 });
  return s.size;
}

/** Every index row's blob is in the store with the right bytes. */
async function expectBlobsIndexed(h: Harness, tenant: string): Promise<void> {
  const ids = (await h.ctx.db.query('SELECT id FROM evidence_items WHERE tenant_id = $1', [tenant])).rows.map((r) => r.id as string);
  for (const id of ids) expect((await h.ctx.blobs.primary.hash(id))?.actual).toBe(id);
}

/** A primary store whose writes fail ("the process died") after `okPuts` blobs. */
function dyingAfter(blobs: BlobStores, okPuts: number): BlobStores {
  let n = 0;
  const die = () => {
    if (++n > okPuts) throw new Error('simulated crash while writing blobs');
  };
  const primary = new Proxy(blobs.primary, {
    get(t, k, r) {
      if (k === 'put' || k === 'putFile')
        return async (...a: unknown[]) => {
          die();
          return (Reflect.get(t, k, r) as (...x: unknown[]) => Promise<unknown>).apply(t, a);
        };
      return Reflect.get(t, k, r);
    },
  }) as BlobStore;
  return { ...blobs, primary };
}

/** A database whose connection "dies" when the batch asks for the log's lock to number its leaves (or checks for waiting ones). */
function dyingBeforeNumbering(db: Db): Db {
  const dies = (text: unknown) => typeof text === 'string' && (text.includes('FROM evidence_log_pending') || text.includes('pg_advisory_xact_lock'));
  const failing = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(t, k, r) {
        if (k === 'query')
          return (text: unknown, ...a: unknown[]) => {
            if (dies(text)) return Promise.reject(new Error('simulated crash before numbering'));
            return (Reflect.get(t, k, r) as (...x: unknown[]) => unknown).call(t, text, ...a);
          };
        return Reflect.get(t, k, r);
      },
    });
  return new Proxy(db, {
    get(t, k, r) {
      if (k === 'query') return Reflect.get(failing(t), k, r);
      // Transactions: the client is unharmed until it asks for the log's lock.
      if (k === 'connect') return async () => failing(await t.connect());
      return Reflect.get(t, k, r);
    },
  });
}

describe.each(['fs', 's3'] as const)('batched ingest on PostgreSQL + Temporal + %s', (blob) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ blob });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('is idempotent: the same batch twice gives the same ids and seqs, and no second leaf', async () => {
    const batch = contents(40).map((d) => item('default', d));
    const first = await ingestBatch(h.ctx.db, h.ctx.blobs, batch);
    const size = await expectLogConsistent(h.ctx.db);
    expect(first.every((r) => r.created && r.logSeq !== null)).toBe(true);
    const again = await ingestBatch(h.ctx.db, h.ctx.blobs, batch);
    expect(again.map((r) => [r.id, r.logSeq, r.created])).toEqual(first.map((r) => [r.id, r.logSeq, false]));
    expect(await expectLogConsistent(h.ctx.db)).toBe(size);
    await expectBlobsIndexed(h, 'default');
  });

  it('a crash while writing blobs (before the index commit) leaves no index row; the re-run converges', async () => {
    const t = `crash-${randomBytes(3).toString('hex')}`;
    const batch = contents(30).map((d) => item(t, d));
    await expect(ingestBatch(h.ctx.db, dyingAfter(h.ctx.blobs, 12), batch, { concurrency: 4 })).rejects.toThrow(/simulated crash/);
    expect((await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items WHERE tenant_id = $1', [t])).rows[0].n).toBe(0);
    const r = await ingestBatch(h.ctx.db, h.ctx.blobs, batch);
    expect(r.every((x) => x.created)).toBe(true);
    expect((await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items WHERE tenant_id = $1', [t])).rows[0].n).toBe(30);
    await expectLogConsistent(h.ctx.db);
    await expectBlobsIndexed(h, t);
  });

  it('a crash while numbering the leaves rolls the batch back (no row, no leaf, no new blob); the re-run converges', async () => {
    const t = `crash2-${randomBytes(3).toString('hex')}`;
    const batch = contents(20).map((d) => item(t, d));
    await expect(ingestBatch(dyingBeforeNumbering(h.ctx.db), h.ctx.blobs, batch)).rejects.toThrow(/before numbering/);
    const mid = await h.ctx.db.query(
      `SELECT (SELECT count(*) FROM evidence_items WHERE tenant_id = $1)::int AS items, (SELECT count(*) FROM evidence_log_pending WHERE tenant_id = $1)::int AS pending,
              (SELECT count(*) FROM evidence_log WHERE tenant_id = $1)::int AS logged`,
      [t],
    );
    expect(mid.rows[0]).toEqual({ items: 0, pending: 0, logged: 0 });
    const r = await ingestBatch(h.ctx.db, h.ctx.blobs, batch);
    expect(r.every((x) => x.created && x.logSeq !== null)).toBe(true);
    expect(new Set(r.map((x) => x.logSeq)).size).toBe(20);
    await expectLogConsistent(h.ctx.db);
    await expectBlobsIndexed(h, t);
  });

  it('leaves an earlier version left waiting (crash between its two commits) are numbered by the next ingest of them', async () => {
    const t = `leftover-${randomBytes(3).toString('hex')}`;
    const batch = contents(5).map((d) => item(t, d));
    // What the two-commit ingest left behind: blobs stored, rows committed, their leaves still waiting.
    for (const b of batch) {
      const id = sha256Digest(b.data!);
      await h.ctx.blobs.primary.put(id, b.data!);
      const row = await h.ctx.db.query(
        `INSERT INTO evidence_items (tenant_id, id, media_type, kind, size_bytes) VALUES ($1, $2, 'application/octet-stream', 'other', $3) RETURNING created_at`,
        [t, id, b.data!.length],
      );
      await h.ctx.db.query('INSERT INTO evidence_subjects (tenant_id, item_id, artifact_digest) VALUES ($1, $2, $3)', [t, id, ART]);
      const leaf = evidenceLeaf({ id, kind: 'other', subjects: [ART], tenant: t, time: new Date(row.rows[0].created_at).toISOString() });
      await h.ctx.db.query('INSERT INTO evidence_log_pending (tenant_id, item_id, leaf, leaf_hash) VALUES ($1, $2, $3, $4)', [t, id, leaf, leafHash(leaf)]);
    }
    const again = await ingestBatch(h.ctx.db, h.ctx.blobs, batch);
    expect(again.every((x) => !x.created && x.logSeq !== null)).toBe(true);
    expect(new Set(again.map((x) => x.logSeq)).size).toBe(5);
    await expectLogConsistent(h.ctx.db);
  });

  it('concurrent duplicates: the same content in 6 parallel batches is one item with one leaf', async () => {
    const t = `dup-${randomBytes(3).toString('hex')}`;
    const shared = contents(25);
    const runs = await Promise.all(
      Array.from({ length: 6 }, (_, k) =>
        ingestBatch(
          h.ctx.db,
          h.ctx.blobs,
          [...shared, ...contents(3)].map((d) => item(t, d)).sort(() => (k % 2 ? 1 : -1)),
        ),
      ),
    );
    const rows = await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items WHERE tenant_id = $1', [t]);
    expect(rows.rows[0].n).toBe(25 + 6 * 3);
    const leaves = await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_log WHERE tenant_id = $1', [t]);
    expect(leaves.rows[0].n).toBe(25 + 6 * 3);
    // Every batch reports the one seq of each shared item; exactly one batch created it.
    for (const d of shared) {
      const id = sha256Digest(d);
      const seen = runs.map((rs) => rs.find((x) => x.id === id)!);
      expect(new Set(seen.map((x) => x.logSeq)).size).toBe(1);
      expect(seen.filter((x) => x.created)).toHaveLength(1);
    }
    await expectLogConsistent(h.ctx.db);
    await expectBlobsIndexed(h, t);
  });

  it('mixed tenants in one batch stay isolated: same bytes, one row and one leaf per tenant', async () => {
    const [a, b] = [`ta-${randomBytes(3).toString('hex')}`, `tb-${randomBytes(3).toString('hex')}`];
    const same = contents(5);
    const r = await ingestBatch(h.ctx.db, h.ctx.blobs, [...same.map((d) => item(a, d)), ...same.map((d) => item(b, d)), ...contents(2).map((d) => item(b, d))]);
    expect(r.filter((x) => x.created)).toHaveLength(12);
    const leaves = await h.ctx.db.query('SELECT tenant_id, item_id, leaf FROM evidence_log WHERE tenant_id = ANY ($1)', [[a, b]]);
    expect(leaves.rows.filter((x) => x.tenant_id === a)).toHaveLength(5);
    expect(leaves.rows.filter((x) => x.tenant_id === b)).toHaveLength(7);
    for (const l of leaves.rows) expect(decodeLeaf(l.leaf)).toMatchObject({ tenant: l.tenant_id, id: l.item_id });
    expect((await h.ctx.evidence.list({ tenant: a, limit: 100 })).items).toHaveLength(5);
    // A parent of another tenant is refused for the whole batch: nothing stored.
    const child = { ...item(a, randomBytes(100)), parents: [{ id: r[10]!.id }] };
    await expect(ingestBatch(h.ctx.db, h.ctx.blobs, [item(a, randomBytes(100)), child])).rejects.toThrow(/not an evidence item of tenant/);
    expect((await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items WHERE tenant_id = $1', [a])).rows[0].n).toBe(5);
    await expectLogConsistent(h.ctx.db);
  });

  it('concurrent single ingests share batches, and one bad item fails only its own caller', async () => {
    const t = `single-${randomBytes(3).toString('hex')}`;
    const good = contents(12);
    const bad = { ...item(t, randomBytes(80)), parents: [{ id: sha256Digest('not-an-item') }] };
    const settled = await Promise.allSettled([
      ...good.slice(0, 6).map((d) => h.ctx.evidence.ingest(item(t, d))),
      h.ctx.evidence.ingest(bad),
      ...good.slice(6).map((d) => h.ctx.evidence.ingest(item(t, d))),
    ]);
    expect(settled.map((s) => s.status)).toEqual([...Array(6).fill('fulfilled'), 'rejected', ...Array(6).fill('fulfilled')]);
    expect(String((settled[6] as PromiseRejectedResult).reason)).toMatch(/not an evidence item of tenant/);
    const ok = settled
      .filter((s): s is PromiseFulfilledResult<Awaited<ReturnType<typeof h.ctx.evidence.ingest>>> => s.status === 'fulfilled')
      .map((s) => s.value);
    expect(ok.map((r) => r.id)).toEqual(good.map((d) => sha256Digest(d)));
    expect(ok.every((r) => r.created && r.logSeq !== null)).toBe(true);
    expect((await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items WHERE tenant_id = $1', [t])).rows[0].n).toBe(12);
    await expectLogConsistent(h.ctx.db);
  });

  it('POST /evidence reads the body once: the spooled file becomes the blob, nothing is left in the spool', async () => {
    const app = await apiFor(h);
    try {
      const auth = await bearer(h, ['evidence:write', 'evidence:read']);
      const bodies = contents(8);
      const res = await Promise.all(
        bodies.map((payload) =>
          app.inject({
            method: 'POST',
            url: `/evidence?kind=other&artifact=${ART}`,
            payload,
            headers: { ...auth, 'content-type': 'application/octet-stream' },
          }),
        ),
      );
      expect(res.map((x) => x.statusCode)).toEqual(bodies.map(() => 201));
      for (const [i, x] of res.entries()) {
        expect(x.json()).toMatchObject({ id: sha256Digest(bodies[i]!), created: true });
        expect(x.json().logSeq).toEqual(expect.any(Number));
        expect((await h.ctx.blobs.primary.getBuffer(x.json().id)).equals(bodies[i]!)).toBe(true);
      }
      expect(readdirSync(join(h.ctx.cfg.dataDir, 'spool'))).toEqual([]);
      // A declared digest that does not match stores nothing.
      const bad = await app.inject({
        method: 'POST',
        url: `/evidence?kind=other&artifact=${ART}`,
        payload: randomBytes(50),
        headers: { ...auth, 'content-type': 'application/octet-stream', 'x-stella-digest': sha256Digest('other') },
      });
      expect(bad.statusCode).toBe(400);
      expect(readdirSync(join(h.ctx.cfg.dataDir, 'spool'))).toEqual([]);
      await expectLogConsistent(h.ctx.db);
    } finally {
      await app.close();
    }
  });

  it('two bulk-ingest workflows over the same directory at once: one item and one leaf per file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulk-dup-'));
    const files = contents(60);
    for (const [i, c] of files.entries()) writeFileSync(join(dir, `f-${String(i).padStart(3, '0')}.bin`), c);
    const t = `bulk-${randomBytes(3).toString('hex')}`;
    const src = { tenant: t, dir, kind: 'other' as const, artifact: ART, actor: 'test' };
    const run = () =>
      h.client.workflow.execute('bulkIngest', {
        args: [src, 25],
        taskQueue: h.ctx.cfg.temporal.taskQueue,
        workflowId: `bulk-${randomBytes(4).toString('hex')}`,
      });
    const [x, y] = (await Promise.all([run(), run()])) as { created: number; present: number; done: number }[];
    expect(x!.done + y!.done).toBe(120);
    expect(x!.created + y!.created).toBe(60);
    expect((await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_log WHERE tenant_id = $1', [t])).rows[0].n).toBe(60);
    await expectLogConsistent(h.ctx.db);
    await expectBlobsIndexed(h, t);
  });
});
