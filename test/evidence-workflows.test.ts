import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { harness, type Harness } from './support/context';
import { sha256Digest } from '../src/lib/hash';
import { verifyReport } from '../src/core/evidence/locker/verify';

const ARTIFACT = sha256Digest('registry.example/app@1');

describe.each(['fs', 's3'] as const)('evidence on real Temporal + PostgreSQL + %s', (blob) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ blob });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('bulk-ingest workflow writes blobs and index rows, idempotently', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulk-'));
    const contents = Array.from({ length: 25 }, (_, i) => `{"n":${i},"r":"${randomBytes(4).toString('hex')}"}`);
    for (const [i, c] of contents.entries()) writeFileSync(join(dir, `item-${String(i).padStart(2, '0')}.json`), c);
    const src = { tenant: 'default', dir, kind: 'sbom' as const, artifact: ARTIFACT, actor: 'test' };
    const first = await h.client.workflow.execute('bulkIngest', {
      args: [src, 10],
      taskQueue: h.ctx.cfg.temporal.taskQueue,
      workflowId: `bulk-${randomBytes(4).toString('hex')}`,
    });
    expect(first).toMatchObject({ total: 25, done: 25, created: 25, present: 0 });
    const again = await h.client.workflow.execute('bulkIngest', {
      args: [src, 10],
      taskQueue: h.ctx.cfg.temporal.taskQueue,
      workflowId: `bulk-${randomBytes(4).toString('hex')}`,
    });
    expect(again).toMatchObject({ created: 0, present: 25 });
    // real rows in PostgreSQL, real blobs in the store
    const rows = await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items WHERE kind = $1', ['sbom']);
    expect(rows.rows[0].n).toBe(25);
    const log = await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_log');
    expect(log.rows[0].n).toBe(25);
    for (const c of contents.slice(0, 3)) expect((await h.ctx.blobs.primary.getBuffer(sha256Digest(c))).toString()).toBe(c);
    const listed = await h.ctx.evidence.list({ tenant: 'default', artifact: ARTIFACT, limit: 10 });
    expect(listed.items).toHaveLength(10);
    expect(listed.nextCursor).not.toBeNull();
    const page2 = await h.ctx.evidence.list({ tenant: 'default', artifact: ARTIFACT, limit: 100, cursor: listed.nextCursor! });
    expect(page2.items).toHaveLength(15);
  });

  it('full verify finds a flipped byte, a missing blob and an unindexed blob; quick verify samples', async () => {
    const mk = (s: string) =>
      h.ctx.evidence.ingest({ tenant: 'default', data: Buffer.from(s), kind: 'scan-report', mediaType: 'application/json', subjects: [ARTIFACT] });
    const a = await mk(`{"corrupt-me":"${randomBytes(4).toString('hex')}"}`);
    const b = await mk(`{"delete-me":"${randomBytes(4).toString('hex')}"}`);
    const orphan = Buffer.from(`orphan ${randomBytes(4).toString('hex')}`);
    await h.ctx.blobs.primary.put(sha256Digest(orphan), orphan);
    const bad = await h.ctx.blobs.primary.hash(a.id);
    expect(bad?.actual).toBe(a.id);
    const bytes = Buffer.from(`{"corrupt-me":"x"}`);
    await h.ctx.blobs.primary.writeRaw(a.id, bytes);
    await h.ctx.blobs.primary.delete(b.id);

    const runId = `verify-${randomBytes(4).toString('hex')}`;
    const summary = await h.client.workflow.execute('verifyEvidence', {
      args: [{ runId, mode: 'full', sampleRate: 1, batchSize: 7 }],
      taskQueue: h.ctx.cfg.temporal.taskQueue,
      workflowId: runId,
    });
    expect(summary.status).toBe('failed');
    const report = await verifyReport(h.ctx, { runId, failedOnly: true });
    const byId = Object.fromEntries(report!.results.map((r) => [r.id, r.result]));
    expect(byId[a.id]).toBe('hash-mismatch');
    expect(byId[b.id]).toBe('missing-blob');
    expect(byId[sha256Digest(orphan)]).toBe('unindexed-blob');
    expect(report!.results).toHaveLength(3);

    const q = `quick-${randomBytes(4).toString('hex')}`;
    const quick = await h.client.workflow.execute('verifyEvidence', {
      args: [{ runId: q, mode: 'quick', sampleRate: 0.5 }],
      taskQueue: h.ctx.cfg.temporal.taskQueue,
      workflowId: q,
    });
    expect(quick.checked).toBeGreaterThan(0);
    expect(quick.checked).toBeLessThan(quick.total);
  });
});
