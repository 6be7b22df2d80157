import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256Hex } from '../lib/hash';
import type { Db, DbClient } from './pool';

/**
 * Versioned, forward-only migrations: `migrations/NNN_name.sql`, applied in order, each in
 * its own transaction, under an advisory lock so concurrent starts (worker + API) don't race.
 * An applied migration whose file changed since is an error, never silently re-run.
 */
export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');
const LOCK_KEY = 0x5733_11a; // arbitrary, stable per project

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const sql = readFileSync(join(dir, f), 'utf8');
      return { version: Number(f.slice(0, 3)), name: f.slice(4, -4), sql, checksum: sha256Hex(sql) };
    });
}

export async function migrate(db: Db, dir = MIGRATIONS_DIR): Promise<{ applied: string[] }> {
  const client = await db.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations');
    const done = new Map(rows.map((r) => [r.version, r]));
    for (const m of loadMigrations(dir)) {
      const prev = done.get(m.version);
      if (prev) {
        if (prev.checksum !== m.checksum)
          throw new Error(`migration ${m.version}_${m.name} was changed after it was applied (forward-only: add a new migration instead)`);
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
        await client.query('COMMIT');
        applied.push(`${m.version}_${m.name}`);
      } catch (e) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.version}_${m.name} failed: ${(e as Error).message}`);
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    client.release();
  }
  return { applied };
}

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
  appliedAt: Date;
}

/** The migrations this database has applied, in version order. */
export async function appliedMigrations(db: Db | DbClient): Promise<AppliedMigration[]> {
  const r = await db.query('SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version');
  return r.rows.map((m) => ({ version: Number(m.version), name: String(m.name), checksum: String(m.checksum), appliedAt: m.applied_at as Date }));
}

/** The PostgreSQL server version string (diagnostics). */
export async function serverVersion(db: Db | DbClient): Promise<string> {
  return String((await db.query('SHOW server_version')).rows[0].server_version);
}
