/**
 * Counters add up (issue 17). Integrity verification: a retried or resumed batch, and blobs no
 * index row names, keep a run's checked = ok + failed (a summary once said 3,082 checked, 3,080 ok,
 * 3 failed). Bulk ingest: an activity resumed from its heartbeat keeps created + present = total.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvidenceActivities } from '../activities/evidence';
import { createVerifyActivities } from '../activities/verify';
import { sha256Hex } from '../src/lib/hash';
import { harness, type Harness } from './support/context';

const ART = `sha256:${'a'.repeat(64)}`;
let h: Harness;
beforeAll(async () => {
  h = await harness({ worker: false, env: { STELLA_LOG_LEVEL: 'fatal' } });
});
afterAll(async () => {
  await h?.close();
});

/** Runs an activity in a mock activity context; `crashAfter` heartbeats, the worker "dies" (the call throws). */
async function runActivity<T>(
  fn: () => Promise<T>,
  heartbeatDetails: unknown,
  crashAfter = Number.POSITIVE_INFINITY,
): Promise<{ result?: T; error?: Error; last: unknown }> {
  const env = new MockActivityEnvironment(heartbeatDetails === undefined ? {} : { heartbeatDetails });
  let last: unknown;
  let beats = 0;
  env.on('heartbeat', (d: unknown) => {
    last = d;
    if (++beats >= crashAfter) throw new Error('worker died');
  });
  try {
    return { result: (await env.run(fn)) as T, last };
  } catch (e) {
    return { error: e as Error, last };
  }
}

async function runRow(runId: string) {
  const r = await h.ctx.db.query('SELECT checked, ok, failed FROM verify_runs WHERE id = $1', [runId]);
  return r.rows[0] as { checked: number; ok: number; failed: number };
}

describe('integrity verification counters', () => {
  it('a retried batch, a resumed batch and unindexed blobs keep checked = ok + failed', async () => {
    const tenant = 'counters';
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await h.ctx.evidence.ingest({ tenant, data: Buffer.from(`item ${i}`), mediaType: 'text/plain', kind: 'sbom', subjects: [ART] });
      ids.push(r.id);
    }
    ids.sort();
    // One indexed item whose blob is gone (a failure), one blob no index row names (unindexed).
    await h.ctx.blobs.primary.delete(ids[3]!);
    const stray = Buffer.from('stray blob');
    await h.ctx.blobs.primary.put(`sha256:${sha256Hex(stray)}`, stray);

    const acts = createVerifyActivities(h.ctx);
    const input = { runId: 'vr-counters', tenant, mode: 'full' as const, sampleRate: 1, batchSize: 20 };
    await h.ctx.db.query(`INSERT INTO verify_runs (id, tenant_id, mode, total) VALUES ($1, $2, 'full', 30)`, [input.runId, tenant]);

    // Batch 1 completes, then is retried (its completion was lost): counted once.
    const b1 = await runActivity(() => acts.verifyBatch(input, null), undefined);
    expect(b1.result).toMatchObject({ checked: 20, ok: 19, failed: 1 });
    await runActivity(() => acts.verifyBatch(input, null), undefined);
    expect(await runRow(input.runId)).toEqual({ checked: 20, ok: 19, failed: 1 });

    // Batch 2: the worker dies after its first heartbeat; the retry resumes from the heartbeat.
    const after = b1.result!.nextAfter!;
    const crashed = await runActivity(() => acts.verifyBatch(input, after), undefined, 1);
    expect(crashed.error?.message).toMatch(/worker died/);
    const resumed = await runActivity(() => acts.verifyBatch(input, after), crashed.last);
    expect(resumed.result).toMatchObject({ checked: 10, ok: 10, failed: 0, nextAfter: null });
    expect(await runRow(input.runId)).toEqual({ checked: 30, ok: 29, failed: 1 });

    // Full mode's unindexed pass, twice (a retried activity): the stray blob counts once, as checked and failed.
    await runActivity(() => acts.verifyUnindexed(input.runId), undefined);
    expect((await runActivity(() => acts.verifyUnindexed(input.runId), undefined)).result).toBe(1);
    const row = await runRow(input.runId);
    expect(row).toEqual({ checked: 31, ok: 29, failed: 2 });
    expect(row.checked).toBe(row.ok + row.failed);
  });
});

describe('bulk ingest counters', () => {
  it('an activity resumed from its heartbeat details keeps created + present = total', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stella-bulk-resume-'));
    const files: string[] = [];
    for (let i = 0; i < 130; i++) {
      const name = `f${String(i).padStart(3, '0')}.json`;
      writeFileSync(join(dir, name), JSON.stringify({ i }));
      files.push(name);
    }
    const src = { tenant: 'bulk-resume', dir, kind: 'sbom' as const, artifact: ART, actor: 'test' };
    // Ten files already stored: the batch finds them present.
    for (const name of files.slice(120))
      await h.ctx.evidence.ingest({ tenant: src.tenant, filePath: join(dir, name), mediaType: 'application/json', kind: 'sbom', subjects: [ART] });

    const acts = createEvidenceActivities(h.ctx);
    const crashed = await runActivity(() => acts.bulkIngestBatch(src, files), undefined, 2);
    expect(crashed.error?.message).toMatch(/worker died/);
    expect(crashed.last).toMatchObject({ next: 100, created: 100, present: 0 });
    const resumed = await runActivity(() => acts.bulkIngestBatch(src, files), crashed.last);
    const r = resumed.result!;
    expect({ created: r.created, present: r.present }).toEqual({ created: 120, present: 10 });
    expect(r.created + r.present).toBe(files.length);
    expect(new Set(r.ids).size).toBe(files.length);
  });
});
