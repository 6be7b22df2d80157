/**
 * Full verify's incremental unindexed-blob check (issue 15) on real PostgreSQL and a real
 * filesystem store: a run lists only the fan-out directories whose stamp changed since the last
 * listing, yet finds every blob no index row names: in a new directory, in a directory that
 * already held indexed blobs, and (remembered) in a directory that did not change since.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findUnindexed, startVerifyRun, verifyReport } from '../src/core/evidence/locker/verify';
import { sha256Digest } from '../src/lib/hash';
import { harness, type Harness } from './support/context';

const ART = sha256Digest('registry.example/incremental@1');
/** Longer than the racy window (2 s): stamps seen after this are trusted by the next run. */
const settle = () => new Promise((r) => setTimeout(r, 2300));

let h: Harness;
beforeAll(async () => {
  h = await harness({ worker: false, env: { STELLA_LOG_LEVEL: 'fatal' } });
});
afterAll(async () => {
  await h?.close();
});

let runs = 0;
/** One full run's unindexed phase; the ids it reports as unindexed blobs. */
async function unindexedRun(opts: { fullListing?: boolean } = {}): Promise<string[]> {
  const runId = `vr-incremental-${++runs}`;
  await startVerifyRun(h.ctx, { runId, mode: 'full', sampleRate: 1 }, runId);
  await findUnindexed(h.ctx, runId, () => {}, opts);
  const report = await verifyReport(h.ctx, { runId });
  return report!.results.filter((r) => r.result === 'unindexed-blob').map((r) => r.id);
}

/** Bytes whose digest starts with `hexPrefix` (a blob that lands in that fan-out directory). */
function contentIn(hexPrefix: string, tag: string): Buffer {
  for (let i = 0; ; i++) {
    const b = Buffer.from(`${tag} ${i}`);
    if (createHash('sha256').update(b).digest('hex').startsWith(hexPrefix)) return b;
  }
}

async function stray(data: Buffer): Promise<string> {
  const id = sha256Digest(data);
  await h.ctx.blobs.primary.put(id, data);
  return id;
}

describe('incremental unindexed-blob check (filesystem store)', () => {
  it('finds blobs written after the last listing in new and existing directories, and remembers them while their directory is unchanged', async () => {
    const indexed: string[] = [];
    for (let i = 0; i < 20; i++)
      indexed.push(
        (await h.ctx.evidence.ingest({ tenant: 'inc', data: Buffer.from(`indexed ${i}`), mediaType: 'text/plain', kind: 'sbom', subjects: [ART] })).id,
      );
    await settle();
    expect(await unindexedRun()).toEqual([]);
    const saved = await h.ctx.db.query('SELECT count(*)::int AS n, count(stamp)::int AS trusted FROM verify_store_dirs');
    expect(saved.rows[0].n).toBeGreaterThan(20); // sha256/, its first-level and its leaf directories
    expect(saved.rows[0].trusted).toBe(saved.rows[0].n);

    // After that listing: a blob in a directory no blob used before, and one next to an indexed blob.
    const taken = new Set(indexed.map((d) => d.slice(7, 9)));
    const freshPrefix = [...Array(256).keys()].map((i) => i.toString(16).padStart(2, '0')).find((p) => !taken.has(p))!;
    const inNewDir = await stray(contentIn(`${freshPrefix}00`, 'new-dir'));
    const inOldDir = await stray(contentIn(indexed[0]!.slice(7, 11), 'old-dir'));
    expect((await unindexedRun()).sort()).toEqual([inNewDir, inOldDir].sort());

    // Their directories unchanged (and past the racy window): not listed again, still reported.
    await settle();
    expect((await unindexedRun()).sort()).toEqual([inNewDir, inOldDir].sort());
    await settle();
    expect((await unindexedRun()).sort()).toEqual([inNewDir, inOldDir].sort());
    const remembered = await h.ctx.db.query(`SELECT dir FROM verify_store_dirs WHERE unindexed <> '{}' ORDER BY dir`);
    expect(remembered.rows.map((r) => r.dir)).toEqual([inNewDir, inOldDir].map((d) => `${d.slice(7, 9)}/${d.slice(9, 11)}`).sort());

    // Once indexed (as `index rebuild` does), it is no longer reported, and no longer remembered.
    await h.ctx.evidence.ingest({
      tenant: 'inc',
      data: contentIn(indexed[0]!.slice(7, 11), 'old-dir'),
      mediaType: 'text/plain',
      kind: 'sbom',
      subjects: [ART],
    });
    expect(await unindexedRun()).toEqual([inNewDir]);
  });

  it('a forced full listing finds a blob that the saved listing state does not show', async () => {
    const lost = await stray(contentIn('ffff', 'lost'));
    await settle();
    expect(await unindexedRun()).toContain(lost);
    // The saved state loses it (as if the directory had been listed before the blob arrived):
    // the incremental run trusts the unchanged directory, a full listing does not.
    await h.ctx.db.query(`UPDATE verify_store_dirs SET unindexed = '{}' WHERE dir = 'ff/ff'`);
    expect(await unindexedRun()).not.toContain(lost);
    expect(await unindexedRun({ fullListing: true })).toContain(lost);
    expect(await unindexedRun()).toContain(lost);
  });
});
