/** `stella migrate`: the database migrations on their own (the Helm chart's migration Job; serve also runs them at start). */
import { createPool } from '../db/pool';
import { appliedMigrations, migrate } from '../db/migrate';

export interface MigrateResult {
  /** Migrations this run applied (`NNN_name`), in order; empty when the schema was current. */
  applied: string[];
  /** The newest applied migration's version afterwards. */
  version: number;
}

export async function migrateDatabase(databaseUrl: string): Promise<MigrateResult> {
  const db = createPool(databaseUrl, 1);
  try {
    const { applied } = await migrate(db);
    const all = await appliedMigrations(db);
    return { applied, version: all.at(-1)?.version ?? 0 };
  } finally {
    await db.end();
  }
}
