/**
 * The whole stack for the end-to-end benches, as `stella serve` runs it: PostgreSQL and a
 * Temporal dev server on this machine, then serve() (API + worker) in this process, with the
 * workflow bundle prebuilt by `npm run build` when it is current.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config';
import { TOKEN_PURPOSE } from '../src/core/keys';
import { mintToken } from '../src/crypto/tokens';
import { startLocalPostgres, stopLocalPostgres } from '../src/dev/postgres';
import { freePort, stopPid } from '../src/dev/proc';
import { findTemporalBin, startTemporalDevServer } from '../src/dev/temporal';
import { serve, type Running } from '../src/serve';

export interface Stack {
  running: Running;
  apiUrl: string;
  token: string;
  databaseUrl: string;
  temporalAddress: string;
  dataDir: string;
  /** Environment for the real CLI (bin/stella.mjs) pointed at this stack. */
  cliEnv: Record<string, string>;
  stop: () => Promise<void>;
}

export async function startStack(log: (s: string) => void): Promise<Stack> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  };
  try {
    const scratch = mkdtempSync(join(tmpdir(), 'stella-bench-stack-'));
    cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
    const pgDir = join('/tmp', `stella-bench-pg-${randomBytes(4).toString('hex')}`);
    const pg = await startLocalPostgres({ dir: pgDir, port: await freePort(), database: 'stella' });
    cleanups.push(() => {
      stopLocalPostgres(pgDir);
      rmSync(pgDir, { recursive: true, force: true });
    });
    const t = await startTemporalDevServer({
      bin: findTemporalBin(process.env.STELLA_TEMPORAL_BIN, false),
      dbFile: join(scratch, 'temporal.db'),
      port: await freePort(),
      logFile: join(scratch, 'temporal.log'),
    });
    cleanups.push(() => stopPid(t.pid));
    const dataDir = join(scratch, 'data');
    const port = await freePort();
    const cfg = loadConfig({
      STELLA_DATA_DIR: dataDir,
      DATABASE_URL: pg.url,
      STELLA_TEMPORAL_ADDRESS: t.address,
      STELLA_API_PORT: String(port),
      STELLA_SCHEDULES: 'false',
      STELLA_LOG_LEVEL: 'warn',
      // The limiter still runs on every request (its cost is measured), it just never says 429 here.
      STELLA_API_RATE_LIMIT: '1000000000',
    } as NodeJS.ProcessEnv);
    const started = performance.now();
    const running = await serve(cfg, { handleSignals: false });
    cleanups.push(() => running.stop());
    log(`stack up: serve() started in ${((performance.now() - started) / 1000).toFixed(1)} s (API ${cfg.api.url})`);
    const token = await mintToken(running.ctx.keys, { sub: 'bench', tenant: 'default', scopes: ['admin'], ttlSeconds: 24 * 3600 }, { purpose: TOKEN_PURPOSE });
    const apiUrl = `http://127.0.0.1:${port}`;
    return {
      running,
      apiUrl,
      token,
      databaseUrl: pg.url,
      temporalAddress: t.address,
      dataDir,
      cliEnv: { STELLA_API_URL: apiUrl, STELLA_TOKEN: token, STELLA_DATA_DIR: join(scratch, 'cli'), STELLA_TENANT: '' },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
