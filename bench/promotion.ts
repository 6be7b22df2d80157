/**
 * Promotion benchmark (issue 5): promotions per second with all evidence present, as a ratio
 * to an empty workflow on the same Temporal server in the same run (target >= 0.8, issue 15), and
 * gate-evaluation latency (policy + evidence lookup + blob reads + DSSE verification).
 *
 *   npx tsx bench/promotion.ts                 (starts its own PostgreSQL and Temporal dev server)
 *   STELLA_BENCH_DATABASE_URL=postgres://… STELLA_BENCH_TEMPORAL_ADDRESS=127.0.0.1:7233 npx tsx bench/promotion.ts
 *   STELLA_BENCH_PROMOTIONS=300 STELLA_BENCH_CONCURRENCY=30 …
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { loadConfig } from '../src/config';
import { createAppContext, closeAppContext } from '../src/core/context';
import { startLocalPostgres, stopLocalPostgres } from '../src/dev/postgres';
import { findTemporalBin, startTemporalDevServer } from '../src/dev/temporal';
import { freePort, stopPid } from '../src/dev/proc';
import { ensureSearchAttributes } from '../src/temporal/client';
import { sha256Digest } from '../src/lib/hash';
import { createActivities } from '../activities';
import { evaluateGates } from '../src/core/promotion/evaluate';
import { DEFAULT_POLICY } from '../src/core/promotion/policy';
import { currentRootPack } from '../src/core/promotion/gather';
import { storeAllEvidence } from '../test/support/promotion';

export interface PromotionBenchOptions {
  promotions?: number;
  concurrency?: number;
  databaseUrl?: string;
  temporalAddress?: string;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
const r2 = (n: number) => Math.round(n * 100) / 100;

/** Runs `total` jobs with at most `concurrency` in flight; returns the wall time in seconds. */
async function pool(total: number, concurrency: number, job: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) await job(next++);
    }),
  );
  return (performance.now() - t) / 1000;
}

/** CPU seconds (user+system) of a process and all its descendants, from /proc (Linux); 0 when unreadable. */
function treeCpuSeconds(root: number): number {
  const kids = new Map<number, number[]>();
  const cpu = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      cpu.set(Number(d), (Number(f[11]) + Number(f[12])) / 100);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(d)]);
    } catch {
      /* exited */
    }
  }
  let total = 0;
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    total += cpu.get(p) ?? 0;
    todo.push(...(kids.get(p) ?? []));
  }
  return total;
}

export async function benchPromotion(opts: PromotionBenchOptions = {}): Promise<Record<string, number | string>> {
  const n = opts.promotions ?? Number(process.env.STELLA_BENCH_PROMOTIONS ?? 200);
  const concurrency = opts.concurrency ?? Number(process.env.STELLA_BENCH_CONCURRENCY ?? 20);
  const cleanups: (() => Promise<void> | void)[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'stella-bench-promo-'));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  /** Processes whose CPU is counted per phase (only the servers this bench started). */
  const servers: { postgres?: number; temporal?: number } = {};
  try {
    // Servers: the ones given, else our own (as test/support/global-setup.ts does).
    let dbUrl = opts.databaseUrl ?? process.env.STELLA_BENCH_DATABASE_URL;
    const dbName = `bench_promo_${randomBytes(4).toString('hex')}`;
    if (dbUrl) {
      const admin = new pg.Client(dbUrl);
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      await admin.end();
      const u = new URL(dbUrl);
      const base = dbUrl;
      u.pathname = `/${dbName}`;
      dbUrl = u.toString();
      cleanups.push(async () => {
        const a = new pg.Client(base);
        await a.connect();
        await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
        await a.end();
      });
    } else {
      const dir = join('/tmp', `stella-bench-pg-${randomBytes(4).toString('hex')}`);
      const local = await startLocalPostgres({ dir, port: await freePort(), database: dbName });
      dbUrl = local.url;
      servers.postgres = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      cleanups.push(() => {
        stopLocalPostgres(dir);
        rmSync(dir, { recursive: true, force: true });
      });
    }
    let address = opts.temporalAddress ?? process.env.STELLA_BENCH_TEMPORAL_ADDRESS;
    if (!address) {
      const t = await startTemporalDevServer({
        bin: findTemporalBin(process.env.STELLA_TEMPORAL_BIN, false),
        dbFile: join(scratch, 'temporal.db'),
        port: await freePort(),
        logFile: join(scratch, 'temporal.log'),
      });
      address = t.address;
      servers.temporal = t.pid;
      cleanups.push(() => stopPid(t.pid));
    }

    const taskQueue = `bench-promo-${randomBytes(4).toString('hex')}`;
    const cfg = loadConfig({
      STELLA_DATA_DIR: join(scratch, 'data'),
      DATABASE_URL: dbUrl,
      STELLA_TEMPORAL_ADDRESS: address,
      STELLA_TASK_QUEUE: taskQueue,
      STELLA_LOG_LEVEL: 'warn',
      STELLA_SCHEDULES: 'false',
    });
    const ctx = await createAppContext(cfg);
    cleanups.push(() => closeAppContext(ctx));
    const connection = await Connection.connect({ address });
    cleanups.push(() => connection.close());
    await ensureSearchAttributes(connection, cfg.temporal.namespace);
    const client = new Client({ connection, namespace: cfg.temporal.namespace });

    // All evidence present for every artifact (SBOM, scan report, signed SLSA provenance).
    const artifacts = Array.from({ length: n + 20 }, (_, i) => sha256Digest(`bench/app@${i}-${randomBytes(6).toString('hex')}`));
    for (const a of artifacts) await storeAllEvidence(ctx, 'default', a);
    // Planner statistics, as autovacuum keeps them on a running server: on a fresh database the
    // tables are new and unanalyzed until autovacuum's next round (a minute), and whether it ran
    // before or during the measurement changed the evidence lookup's plan (1 ms vs 115 ms a query).
    await ctx.db.query('ANALYZE');

    // Gate-evaluation latency, measured directly (same code the activity runs).
    // Own keys plus imported trust (the builder key signing the bench evidence), as the promotion activity uses.
    const rootPack = await currentRootPack(ctx);
    const lat: number[] = [];
    for (const a of artifacts.slice(0, Math.min(100, n))) {
      const t = performance.now();
      const gates = await evaluateGates(ctx, { tenant: 'default', artifactDigest: a, imageRef: null, policy: DEFAULT_POLICY, rootPack });
      lat.push(performance.now() - t);
      if (!gates.every((g) => g.passed)) throw new Error(`bench evidence did not pass the gates: ${JSON.stringify(gates)}`);
    }
    lat.sort((x, y) => x - y);

    // Worker with only the promotion workflows (bundled from workflows/promotion.ts) and the activities
    // the production worker registers (workers/worker.ts: createActivities), so the local activities the
    // promotion calls (evaluateGates, promotionFinalize, publishAfterPromotion, …) all run as in production.
    try {
      Runtime.install({
        logger: new DefaultLogger('WARN'),
        shutdownSignals: [],
        telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
      });
    } catch {
      /* already installed */
    }
    const bundle = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('../workflows/promotion.ts', import.meta.url)),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error } as never,
    });
    const native = await NativeConnection.connect({ address });
    const worker = await Worker.create({
      connection: native,
      taskQueue,
      workflowBundle: bundle,
      activities: createActivities(ctx),
      maxConcurrentWorkflowTaskExecutions: 40,
      maxConcurrentLocalActivityExecutions: 40,
    });
    const running = worker.run();
    cleanups.unshift(async () => {
      worker.shutdown();
      await running;
      await native.close();
    });

    const noop = (i: number, tag: string) =>
      client.workflow.execute('promotionBenchNoop', { taskQueue, workflowId: `bench-noop-${tag}-${i}-${randomBytes(3).toString('hex')}` });
    let k = 0;
    const promote = async () => {
      const a = artifacts[k++]!;
      const r = await client.workflow.execute('promotion', {
        taskQueue,
        workflowId: `promotion-default-prod-${a.slice(7)}`,
        args: [{ tenant: 'default', artifactDigest: a, fromEnv: 'staging', toEnv: 'prod', requestedBy: 'bench' }],
      });
      if ((r as { state: string }).state !== 'promoted') throw new Error(`promotion ended ${(r as { state: string }).state}`);
    };
    // Warm-up both (bundle load, connections, JIT), then measure back to back.
    await pool(20, concurrency, (i) => noop(i, 'warm'));
    await pool(20, concurrency, () => promote());
    // Alternate rounds so both see the same background load on a shared machine.
    const round = Math.max(concurrency, Math.ceil(n / 4));
    let noopSeconds = 0;
    let promoSeconds = 0;
    // CPU seconds per phase: this process (client + worker), the Temporal server, PostgreSQL.
    const cpuNow = () => ({
      node: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
      temporal: servers.temporal ? treeCpuSeconds(servers.temporal) : 0,
      postgres: servers.postgres ? treeCpuSeconds(servers.postgres) : 0,
    });
    const cpu = { noop: { node: 0, temporal: 0, postgres: 0 }, promo: { node: 0, temporal: 0, postgres: 0 } };
    const timed = async (into: typeof cpu.noop, f: () => Promise<number>) => {
      const a = cpuNow();
      const secs = await f();
      const b = cpuNow();
      for (const k of ['node', 'temporal', 'postgres'] as const) into[k] += b[k] - a[k];
      return secs;
    };
    for (let done = 0; done < n; done += round) {
      const m = Math.min(round, n - done);
      noopSeconds += await timed(cpu.noop, () => pool(m, concurrency, (i) => noop(done + i, 'run')));
      promoSeconds += await timed(cpu.promo, () => pool(m, concurrency, () => promote()));
    }
    const perRun = (c: typeof cpu.noop) =>
      `node ${r2((c.node * 1000) / n)} | temporal ${r2((c.temporal * 1000) / n)} | postgres ${r2((c.postgres * 1000) / n)}`;

    const rows = await ctx.db.query(`SELECT count(*)::int AS n FROM promotions WHERE state='promoted'`);
    const noopRate = n / noopSeconds;
    const promoRate = n / promoSeconds;
    return {
      promotions: n,
      concurrency,
      promotedRows: rows.rows[0].n,
      emptyWorkflowsPerSec: r2(noopRate),
      promotionsPerSec: r2(promoRate),
      ratio: r2(promoRate / noopRate),
      ratioTarget: 0.8,
      ratioPass: promoRate / noopRate >= 0.8 ? 'yes' : 'no',
      gateEvalP50Ms: r2(pct(lat, 50)),
      gateEvalP95Ms: r2(pct(lat, 95)),
      gateEvalMaxMs: r2(lat[lat.length - 1]!),
      ...(servers.temporal ? { cpuMsPerEmptyWorkflow: perRun(cpu.noop), cpuMsPerPromotion: perRun(cpu.promo) } : {}),
    };
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await benchPromotion();
  const w = Math.max(...Object.keys(r).map((x) => x.length));
  for (const [key, v] of Object.entries(r)) console.log(`${key.padEnd(w)}  ${v}`);
  process.exit(0);
}
