/** Per-tenant settings (the `settings` table): small JSON values features keep by key. */
import type { Queryable } from '../evidence/state';

export async function getSetting<T = unknown>(q: Queryable, tenant: string, key: string): Promise<T | undefined> {
  const r = await q.query<{ value: T }>('SELECT value FROM settings WHERE tenant_id=$1 AND key=$2', [tenant, key]);
  return r.rows[0]?.value;
}

export async function putSetting(q: Queryable, tenant: string, key: string, value: unknown): Promise<void> {
  await q.query(
    `INSERT INTO settings (tenant_id, key, value) VALUES ($1,$2,$3) ON CONFLICT (tenant_id, key) DO UPDATE SET value=EXCLUDED.value, updated_at=now()`,
    [tenant, key, JSON.stringify(value)],
  );
}
