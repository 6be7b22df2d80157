/**
 * Benchmarks. Every figure is reported against a baseline measured in the same run (raw
 * sha256, write+fsync, a bare node:http server, an empty workflow, `node -e 0`), so results
 * compare across machines; nothing here asserts a timing.
 *
 *   npm run bench                 # issue 15's table: builds, starts the stack, a few minutes on 2 cores
 *   npm run bench -- merkle scanner evidence promotion backup   # the detailed per-area benches
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { renderTable, type Row } from './table';

const BENCHES: Record<string, { module: string; fn: string }> = {
  merkle: { module: './merkle', fn: 'benchMerkle' },
  scanner: { module: './scanner', fn: 'benchScanner' },
  evidence: { module: './evidence', fn: 'benchEvidence' },
  promotion: { module: './promotion', fn: 'benchPromotion' },
  backup: { module: './backup', fn: 'benchBackup' },
};

const log = (s: string) => process.stderr.write(`${s}\n`);
/** STELLA_BENCH_ONLY=cli,get runs only those rows of the table. */
const ONLY = process.env.STELLA_BENCH_ONLY?.split(',');

/** Runs one table step; a failing step becomes a row saying why, the others still run. */
async function step(rows: Row[], what: string, fn: () => Promise<Row | Row[]>): Promise<void> {
  if (ONLY && !ONLY.includes(what)) return;
  log(`\n## ${what}`);
  try {
    const r = await fn();
    rows.push(...(Array.isArray(r) ? r : [r]));
  } catch (e) {
    log(`${what} failed: ${(e as Error).stack ?? e}`);
    rows.push({ what, measured: 'failed', baseline: '-', ratio: null, target: '-', why: (e as Error).message.split('\n')[0]!.slice(0, 160) });
  }
}

async function issueTable(): Promise<number> {
  // The CLI and the workflow bundle as `npm ci` builds them, from the current sources.
  execFileSync(process.execPath, [resolve(import.meta.dirname, '..', 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const b = await import('./issue15');
  const { startStack } = await import('./stack');
  const rows: Row[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'stella-bench-'));
  const stack = await startStack(log);
  try {
    await step(rows, 'cli', () => b.cliRow(stack, log));
    await step(rows, 'ingest', () => b.ingestRows(stack, scratch, log));
    const { ids, paths } = await b.storedBlobs(stack);
    if (ids.length) {
      await step(rows, 'verify', () => b.verifyRows(stack, ids, paths, log));
      await step(rows, 'get', () => b.getRow(stack, ids, paths, log));
    }
    await step(rows, 'promotion', () => b.promotionRow(stack, log));
    await step(rows, 'purge', () => b.purgeRow(stack, log));
  } finally {
    await stack.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  await step(rows, 'merkle', () => b.merkleRow(log));
  await step(rows, 'scan', () => b.scanRow(log));
  await step(rows, 'registry-scan', async () => (await import('./registry-scan')).registryScanRow(log));
  process.stdout.write(`\n${renderTable(rows)}\n`);
  return rows.some((r) => r.measured === 'failed') ? 1 : 0;
}

async function detailed(names: string[]): Promise<number> {
  let failed = 0;
  for (const name of names) {
    const b = BENCHES[name];
    if (!b) {
      console.error(`unknown bench ${name}; known: ${Object.keys(BENCHES).join(', ')}`);
      return 2;
    }
    console.log(`\n## ${name}`);
    try {
      const mod = (await import(b.module)) as Record<string, (o?: unknown) => Promise<Record<string, unknown>>>;
      const fn = mod[b.fn];
      if (!fn) throw new Error(`${b.module} exports no ${b.fn}`);
      const result = await fn();
      const w = Math.max(...Object.keys(result).map((k) => k.length));
      for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(w)}  ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(3)) : v}`);
    } catch (e) {
      failed++;
      console.error(`${name}: ${(e as Error).message}`);
    }
  }
  return failed ? 1 : 0;
}

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
process.exit(wanted.length ? await detailed(wanted) : await issueTable());
