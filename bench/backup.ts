/**
 * Backup / restore benchmark (issue 9): throughput of `backup create` and `evidence restore`
 * for 10,000 items, as ratios to a plain copy (copyFile) of the same blob files in the same run.
 * Runs the same functions the workflow activities run (no Temporal in the loop).
 *
 *   npx tsx bench/backup.ts                      (starts its own PostgreSQL in /tmp)
 *   STELLA_BENCH_DATABASE_URL=postgres://… npx tsx bench/backup.ts
 *   STELLA_BENCH_ITEMS=2000 npx tsx bench/backup.ts
 */
import { randomBytes } from 'node:crypto';
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
import { createAnchor } from '../src/core/anchoring';
import { backupExport, backupCopyBlobs, backupFinalize, newBackupId } from '../src/core/backup/backup';
import { restorePrepare, restoreIndexBatch, restoreIndexFinish, restoreBlobBatch, type RestoreInput } from '../src/core/backup/restore';

export interface BackupBenchResult {
  items: number;
  item_bytes: number;
  total_mb: number;
  plain_copy_mb_per_s: number;
  plain_copy_items_per_s: number;
  backup_s: number;
  backup_mb_per_s: number;
  backup_items_per_s: number;
  backup_to_copy_ratio: number;
  restore_s: number;
  restore_index_s: number;
  restore_blobs_s: number;
  restore_mb_per_s: number;
  restore_items_per_s: number;
  restore_to_copy_ratio: number;
}

async function databases(): Promise<{ urls: [string, string]; cleanup: () => Promise<void> }> {
  const names = [`bench_bk_${randomBytes(4).toString('hex')}`, `bench_rs_${randomBytes(4).toString('hex')}`] as const;
  let admin = process.env.STELLA_BENCH_DATABASE_URL;
  let stop = async () => {};
  if (!admin) {
    const dir = join('/tmp', `stella-bench-pg-${randomBytes(4).toString('hex')}`);
    const local = await startLocalPostgres({ dir, port: await freePort(), database: 'postgres' });
    admin = local.url;
    stop = async () => {
      stopLocalPostgres(dir);
      rmSync(dir, { recursive: true, force: true });
    };
  }
  const a = new pg.Client(admin);
  await a.connect();
  for (const n of names) await a.query(`CREATE DATABASE ${n}`);
  await a.end();
  const url = (n: string) => {
    const u = new URL(admin!);
    u.pathname = `/${n}`;
    return u.toString();
  };
  return {
    urls: [url(names[0]), url(names[1])],
    cleanup: async () => {
      const c = new pg.Client(admin!);
      await c.connect();
      for (const n of names) await c.query(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`).catch(() => {});
      await c.end();
      await stop();
    },
  };
}

const mb = (b: number) => b / 1e6;
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

export async function benchBackup(opts: { items?: number; itemBytes?: number; log?: (s: string) => void } = {}): Promise<BackupBenchResult> {
  const items = opts.items ?? Number(process.env.STELLA_BENCH_ITEMS ?? 10_000);
  const itemBytes = opts.itemBytes ?? 4096;
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const scratch = mkdtempSync(join(tmpdir(), 'stella-bench-backup-'));
  const dbs = await databases();
  const env = (url: string, data: string) => ({ STELLA_DATA_DIR: data, DATABASE_URL: url, STELLA_LOG_LEVEL: 'warn', STELLA_SCHEDULES: 'false' });
  let src: AppContext | undefined;
  let dst: AppContext | undefined;
  try {
    src = await createAppContext(loadConfig(env(dbs.urls[0], join(scratch, 'src'))));
    log(`ingesting ${items} items of ${itemBytes} bytes`);
    const art = sha256Digest('bench/backup');
    for (let i = 0; i < items; i += 500) {
      const n = Math.min(500, items - i);
      await src.evidence.ingestMany(
        Array.from({ length: n }, () => ({
          tenant: 'default',
          data: randomBytes(itemBytes),
          kind: 'other' as const,
          mediaType: 'application/octet-stream',
          subjects: [art],
        })),
      );
    }
    await createAnchor(src, { reason: 'bench' });
    const ids = (await src.db.query('SELECT id FROM evidence_items ORDER BY id')).rows.map((r) => r.id as string);
    const store = src.blobs.primary as FsBlobStore;

    // Baseline: a plain copy of the same blob files, same disk, same run.
    const copyDir = join(scratch, 'plain-copy');
    await fsp.mkdir(copyDir, { recursive: true });
    let t = performance.now();
    let bytes = 0;
    for (const id of ids) {
      const dest = join(copyDir, id.slice(7, 9), id.slice(7));
      await fsp.mkdir(join(copyDir, id.slice(7, 9)), { recursive: true });
      await fsp.copyFile(store.pathFor(id), dest);
      bytes += itemBytes;
    }
    const copyS = (performance.now() - t) / 1000;

    // Backup: snapshot export + verified blob copy + manifest, as the workflow runs it.
    const backupId = newBackupId();
    const input = { backupId, dir: join(scratch, 'backups'), actor: 'bench' };
    t = performance.now();
    const schema = await backupExport(src, input, () => {});
    for (let b = 0; b < schema.blobBatchOffsets.length; b++) await backupCopyBlobs(src, input, b, () => {});
    const summary = await backupFinalize(src, input, []);
    const backupS = (performance.now() - t) / 1000;
    log(`backup ${summary.id}: ${summary.items} items, ${summary.blobs} blobs in ${round(backupS)} s`);

    // Restore into an empty database and an empty target directory.
    dst = await createAppContext(loadConfig({ ...env(dbs.urls[1], join(scratch, 'dst')), STELLA_BACKUP_DIR: input.dir }));
    const rin: RestoreInput = { restoreId: `bench-${randomBytes(3).toString('hex')}`, actor: 'bench', backupId, backupDir: input.dir, target: null };
    t = performance.now();
    const plan = await restorePrepare(dst, rin, () => {});
    for (const tb of plan.tables) for (let b = 0; b < tb.batches; b++) await restoreIndexBatch(dst, rin, tb.name, b);
    const fin = await restoreIndexFinish(dst, rin);
    const tIndex = performance.now();
    for (let b = 0; b < plan.blobBatches; b++) await restoreBlobBatch(dst, rin, b, () => {});
    const restoreS = (performance.now() - t) / 1000;
    const restoreBlobsS = (performance.now() - tIndex) / 1000;
    if (fin.items !== items) throw new Error(`restored ${fin.items} items, expected ${items}`);

    const copyMBps = mb(bytes) / copyS;
    return {
      items,
      item_bytes: itemBytes,
      total_mb: round(mb(bytes)),
      plain_copy_mb_per_s: round(copyMBps),
      plain_copy_items_per_s: Math.round(items / copyS),
      backup_s: round(backupS),
      backup_mb_per_s: round(mb(bytes) / backupS),
      backup_items_per_s: Math.round(items / backupS),
      backup_to_copy_ratio: round(copyS / backupS, 3),
      restore_s: round(restoreS),
      restore_index_s: round(restoreS - restoreBlobsS),
      restore_blobs_s: round(restoreBlobsS),
      restore_mb_per_s: round(mb(bytes) / restoreS),
      restore_items_per_s: Math.round(items / restoreS),
      restore_to_copy_ratio: round(copyS / restoreS, 3),
    };
  } finally {
    if (src) await closeAppContext(src).catch(() => {});
    if (dst) await closeAppContext(dst).catch(() => {});
    await dbs.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchBackup()
    .then((r) => {
      for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(24)} ${v}\n`);
    })
    .catch((e) => {
      process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    });
}
