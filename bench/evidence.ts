/**
 * Evidence Locker benchmarks (issue 3): ingest rate, full-verify throughput relative to raw
 * sha256 over the same bytes on the same disk, and retrieval latency through the HTTP API.
 *
 *   npx tsx bench/evidence.ts            (starts its own PostgreSQL in /tmp)
 *   STELLA_BENCH_DATABASE_URL=postgres://… npx tsx bench/evidence.ts   (a fresh database on that server)
 *   STELLA_BENCH_ITEMS=2000 …            (smaller run)
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { createAppContext, closeAppContext, type AppContext } from '../src/core/context';
import { startLocalPostgres, stopLocalPostgres } from '../src/dev/postgres';
import { freePort } from '../src/dev/proc';
import type { FsBlobStore } from '../src/blob';
import { sha256Digest } from '../src/lib/hash';
import { startVerifyRun, verifyBatch, findUnindexed, finishVerifyRun } from '../src/core/evidence/locker/verify';
import { buildApi } from '../src/api/server';
import { createMetrics } from '../src/app/metrics';
import { doctorChecksOf, routesOf } from '../src/app/features';
import { cachedTokenJwks, TOKEN_PURPOSE } from '../src/core/keys';
import { mintToken } from '../src/crypto/tokens';

/** Flat (bench/run.ts prints one line per key); timings are from this run on this machine. */
export interface EvidenceBenchResult {
  items: number;
  item_bytes: number;
  ingest_batch_size: number;
  ingest_items_per_s: number;
  ingest_single_items_per_s: number;
  ingest_target_items_per_s: number;
  verify_mb_per_s: number;
  verify_items_phase_s: number;
  verify_unindexed_phase_s: number;
  raw_sha256_mb_per_s: number;
  verify_to_raw_ratio: number;
  verify_target_ratio: number;
  verify_failed: number;
  retrieval_requests: number;
  retrieval_p50_ms: number;
  retrieval_p99_ms: number;
  retrieval_target_p99_ms: number;
  pass: string;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const r2 = (n: number) => Math.round(n * 100) / 100;

async function database(): Promise<{ url: string; cleanup: () => Promise<void> }> {
  const name = `bench_${randomBytes(4).toString('hex')}`;
  const external = process.env.STELLA_BENCH_DATABASE_URL;
  if (external) {
    const admin = new pg.Client(external);
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(external);
    u.pathname = `/${name}`;
    return {
      url: u.toString(),
      cleanup: async () => {
        const a = new pg.Client(external);
        await a.connect();
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
        await a.end();
      },
    };
  }
  const dir = join('/tmp', `stella-bench-pg-${randomBytes(4).toString('hex')}`);
  const local = await startLocalPostgres({ dir, port: await freePort(), database: name });
  return {
    url: local.url,
    cleanup: async () => {
      stopLocalPostgres(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Raw baseline: read each blob file and sha256 it, sequentially, nothing else. */
async function rawSha256(store: FsBlobStore, ids: string[]): Promise<{ seconds: number; bytes: number }> {
  const t = performance.now();
  let bytes = 0;
  for (const id of ids) {
    const data = await fsp.readFile(store.pathFor(id));
    createHash('sha256').update(data).digest();
    bytes += data.length;
  }
  return { seconds: (performance.now() - t) / 1000, bytes };
}

/** Full verification through the same functions the verify workflow's activities run. */
async function fullVerify(ctx: AppContext): Promise<{ seconds: number; itemsPhase: number; unindexedPhase: number; failed: number }> {
  const runId = `bench-${randomBytes(4).toString('hex')}`;
  const input = { runId, mode: 'full' as const, sampleRate: 1, batchSize: 500 };
  const t = performance.now();
  await startVerifyRun(ctx, input, runId);
  let after: string | null = null;
  for (;;) {
    const r = await verifyBatch(ctx, input, after, null, () => {});
    if (!r.nextAfter) break;
    after = r.nextAfter;
  }
  const t2 = performance.now();
  await findUnindexed(ctx, runId, () => {});
  const s = await finishVerifyRun(ctx, runId);
  const end = performance.now();
  return { seconds: (end - t) / 1000, itemsPhase: (t2 - t) / 1000, unindexedPhase: (end - t2) / 1000, failed: s.failed };
}

export async function benchEvidence(
  opts: { items?: number; itemBytes?: number; batchSize?: number; log?: (s: string) => void } = {},
): Promise<EvidenceBenchResult> {
  const items = opts.items ?? Number(process.env.STELLA_BENCH_ITEMS ?? 10_000);
  const itemBytes = opts.itemBytes ?? 4096;
  const batchSize = opts.batchSize ?? 250;
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const dataDir = mkdtempSync(join(tmpdir(), 'stella-bench-'));
  const db = await database();
  let ctx: AppContext | undefined;
  try {
    const cfg = loadConfig({ STELLA_DATA_DIR: dataDir, DATABASE_URL: db.url, STELLA_LOG_LEVEL: 'warn', STELLA_SCHEDULES: 'false' } as NodeJS.ProcessEnv);
    ctx = await createAppContext(cfg);
    const store = ctx.blobs.primary as FsBlobStore;
    const artifact = sha256Digest('bench-artifact');

    // Reference: one item per call/transaction, 8 in flight (what the API path does per upload).
    const single = Array.from({ length: Math.min(1000, items) }, () => randomBytes(itemBytes));
    let next = 0;
    let t = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < single.length) {
          const data = single[next++]!;
          await ctx!.evidence.ingest({ tenant: 'default', data, kind: 'other', mediaType: 'application/octet-stream', subjects: [artifact] });
        }
      }),
    );
    const singleItemsPerSec = single.length / ((performance.now() - t) / 1000);
    log(`ingest (one per transaction, 8 in flight): ${single.length} items, ${singleItemsPerSec.toFixed(0)}/s`);

    // The measured path: EvidenceService.ingestMany, one transaction per batch.
    const payloads = Array.from({ length: items }, () => randomBytes(itemBytes));
    t = performance.now();
    for (let i = 0; i < items; i += batchSize) {
      await ctx.evidence.ingestMany(
        payloads
          .slice(i, i + batchSize)
          .map((data) => ({ tenant: 'default', data, kind: 'other' as const, mediaType: 'application/octet-stream', subjects: [artifact] })),
      );
    }
    const ingestSec = (performance.now() - t) / 1000;
    const itemsPerSec = items / ingestSec;
    log(`ingest (ingestMany, batches of ${batchSize}): ${items} × ${itemBytes} B in ${ingestSec.toFixed(2)} s = ${itemsPerSec.toFixed(0)}/s`);

    // Verify vs raw sha256 over the same blobs (every indexed id), warm cache for both.
    const ids = (await ctx.db.query('SELECT DISTINCT id FROM evidence_items ORDER BY id')).rows.map((r) => r.id as string);
    await rawSha256(store, ids); // warm-up read, not measured
    const raw1 = await rawSha256(store, ids);
    const v = await fullVerify(ctx);
    const raw2 = await rawSha256(store, ids);
    const rawSec = Math.min(raw1.seconds, raw2.seconds); // the faster baseline: the stricter ratio
    const mb = raw1.bytes / 1e6;
    const ratio = rawSec / v.seconds;
    log(`verify full: ${ids.length} blobs, ${mb.toFixed(1)} MB in ${v.seconds.toFixed(2)} s; raw sha256 ${rawSec.toFixed(2)} s; ratio ${ratio.toFixed(2)}`);

    // Retrieval through the API (fastify inject: routing, auth, DB lookup, verified read).
    const app = await buildApi(
      { ctx, temporal: null, metrics: createMetrics(ctx.db, { blobs: ctx.blobs }), doctorChecks: doctorChecksOf(), tokenKeys: cachedTokenJwks(ctx.keys) },
      await routesOf(),
    );
    const token = await mintToken(ctx.keys, { sub: 'bench', tenant: 'default', scopes: ['evidence:read'], ttlSeconds: 3600 }, { purpose: TOKEN_PURPOSE });
    const headers = { authorization: `Bearer ${token}` };
    const pick = () => ids[Math.floor(Math.random() * ids.length)]!;
    for (let i = 0; i < 200; i++) await app.inject({ method: 'GET', url: `/evidence/${pick()}`, headers });
    const lat: number[] = [];
    const requests = Math.min(5000, Math.max(1000, ids.length / 2));
    for (let i = 0; i < requests; i++) {
      const s = performance.now();
      const res = await app.inject({ method: 'GET', url: `/evidence/${pick()}`, headers });
      lat.push(performance.now() - s);
      if (res.statusCode !== 200 || res.rawPayload.length !== itemBytes) throw new Error(`retrieval failed: HTTP ${res.statusCode}`);
    }
    await app.close();
    lat.sort((a, b) => a - b);

    const p99 = pct(lat, 99);
    const passes = { ingest: itemsPerSec >= 1000, verify: ratio >= 0.8, retrieval: p99 < 10 };
    return {
      items,
      item_bytes: itemBytes,
      ingest_batch_size: batchSize,
      ingest_items_per_s: Math.round(itemsPerSec),
      ingest_single_items_per_s: Math.round(singleItemsPerSec),
      ingest_target_items_per_s: 1000,
      verify_mb_per_s: r2(mb / v.seconds),
      verify_items_phase_s: r2(v.itemsPhase),
      verify_unindexed_phase_s: r2(v.unindexedPhase),
      raw_sha256_mb_per_s: r2(mb / rawSec),
      verify_to_raw_ratio: r2(ratio),
      verify_target_ratio: 0.8,
      verify_failed: v.failed,
      retrieval_requests: requests,
      retrieval_p50_ms: r2(pct(lat, 50)),
      retrieval_p99_ms: r2(p99),
      retrieval_target_p99_ms: 10,
      pass: Object.entries(passes)
        .map(([k, ok]) => `${k}:${ok ? 'PASS' : 'MISS'}`)
        .join(' '),
    };
  } finally {
    if (ctx) await closeAppContext(ctx);
    await db.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function formatEvidenceBench(r: EvidenceBenchResult): string {
  const ok = (k: string) => (r.pass.includes(`${k}:PASS`) ? 'PASS' : 'MISS');
  const rows = [
    ['metric', 'value', 'target', 'result'],
    [
      `ingest ${r.items} × ${r.item_bytes / 1024} KiB (fs, ingestMany ×${r.ingest_batch_size})`,
      `${r.ingest_items_per_s} items/s`,
      '≥ 1000 items/s',
      ok('ingest'),
    ],
    ['ingest, one item per transaction (reference)', `${r.ingest_single_items_per_s} items/s`, '-', '-'],
    [
      `full verify (items ${r.verify_items_phase_s} s + unindexed scan ${r.verify_unindexed_phase_s} s)`,
      `${r.verify_mb_per_s} MB/s`,
      '-',
      r.verify_failed ? `${r.verify_failed} FAILED` : 'all ok',
    ],
    ['raw sha256, same blobs, same disk (sequential)', `${r.raw_sha256_mb_per_s} MB/s`, '-', '-'],
    ['verify / raw sha256 ratio', `${r.verify_to_raw_ratio}`, '≥ 0.8', ok('verify')],
    [`retrieval p50 (API, ${r.retrieval_requests} GETs)`, `${r.retrieval_p50_ms} ms`, '-', '-'],
    ['retrieval p99', `${r.retrieval_p99_ms} ms`, '< 10 ms', ok('retrieval')],
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map((row, j) =>
      [
        row
          .map((c, i) => c.padEnd(w[i]!))
          .join('  ')
          .trimEnd(),
        ...(j === 0 ? [w.map((x) => '-'.repeat(x)).join('  ')] : []),
      ].join('\n'),
    )
    .join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchEvidence()
    .then((r) => {
      process.stdout.write(`${formatEvidenceBench(r)}\n`);
      if (process.env.STELLA_BENCH_JSON) process.stdout.write(`${JSON.stringify(r)}\n`);
    })
    .catch((e) => {
      process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    });
}
