import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { which } from './proc';

/**
 * A PostgreSQL server that stella starts and owns, from the machine's PostgreSQL binaries
 * (Debian's postgresql package: /usr/lib/postgresql/<ver>/bin). PostgreSQL refuses to run as
 * root, so as root the cluster runs as the `postgres` user, in a directory that user can reach.
 */
export function findPgBinDir(): string | undefined {
  if (process.env.STELLA_PG_BIN_DIR) return process.env.STELLA_PG_BIN_DIR;
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin');
  }
  const initdb = which('initdb');
  return initdb ? join(initdb, '..') : undefined;
}

const isRoot = () => process.getuid?.() === 0;

/** Where the cluster lives: under dataDir, or (as root) under /var/lib/stella keyed by dataDir. */
export function clusterDir(dataDir: string): string {
  if (!isRoot()) return join(dataDir, 'pg');
  return join('/var/lib/stella', `pg-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`);
}

/** runuser lives in /usr/sbin or /sbin, which a non-login PATH may lack. */
function runuserPath(): string {
  return which('runuser') ?? ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p)) ?? 'runuser';
}

function run(binDir: string, cmd: string, args: string[], check = true) {
  const full = join(binDir, cmd);
  const r = isRoot() ? spawnSync(runuserPath(), ['-u', 'postgres', '--', full, ...args], { encoding: 'utf8' }) : spawnSync(full, args, { encoding: 'utf8' });
  if (check && r.status !== 0) {
    const why = (r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ') || r.error?.message || `exit ${r.status}`;
    throw new Error(`${cmd} failed: ${why}`);
  }
  return r;
}

export interface LocalPg {
  dir: string;
  port: number;
  url: string;
  binDir: string;
}

export async function startLocalPostgres(opts: { dir: string; port: number; database?: string }): Promise<LocalPg> {
  const binDir = findPgBinDir();
  if (!binDir) throw new Error('no PostgreSQL binaries found: install Debian package postgresql (apt-get install postgresql) or set DATABASE_URL');
  const { dir, port } = opts;
  const database = opts.database ?? 'stella';
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    // Parents traversable (the server may run as another user); the cluster itself private.
    mkdirSync(join(dir, '..'), { recursive: true, mode: 0o755 });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (isRoot()) {
      const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      if (!uid) throw new Error('running as root needs the postgres system user (from the postgresql package)');
      chownSync(dir, uid, gid);
    }
    run(binDir, 'initdb', ['-D', dir, '-U', 'stella', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  }
  const status = run(binDir, 'pg_ctl', ['-D', dir, 'status'], false);
  if (status.status !== 0) {
    run(binDir, 'pg_ctl', [
      '-D',
      dir,
      '-w',
      '-t',
      '60',
      '-l',
      join(dir, 'server.log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=${process.env.CI ? 'off' : 'on'}`,
      'start',
    ]);
  }
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'stella', database: 'postgres' });
  await admin.connect();
  try {
    const r = await admin.query('SELECT 1 FROM pg_database WHERE datname=$1', [database]);
    if (!r.rowCount) await admin.query(`CREATE DATABASE "${database.replace(/"/g, '')}"`);
  } finally {
    await admin.end();
  }
  return { dir, port, binDir, url: `postgres://stella@127.0.0.1:${port}/${database}` };
}

export function stopLocalPostgres(dir: string): void {
  const binDir = findPgBinDir();
  if (!binDir || !existsSync(join(dir, 'PG_VERSION'))) return;
  run(binDir, 'pg_ctl', ['-D', dir, '-m', 'fast', '-w', 'stop'], false);
}

export function pgDirExists(dir: string): boolean {
  try {
    return statSync(join(dir, 'PG_VERSION')).isFile();
  } catch {
    return false;
  }
}
