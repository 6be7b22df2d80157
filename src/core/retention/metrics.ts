import { dbGauge, type MetricsEnv } from '../metrics';

// Retention metrics, read from the run records at scrape time (cached; any API replica agrees).
// Gauges (sums over run records), so no `_total` suffix: old names are recording rules in ops/prometheus/legacy-names.yml.
export function retentionMetrics(env: MetricsEnv): void {
  const { db } = env;
  if (!db) return;
  const byTenant = (row: Record<string, any>) => ({ tenant: row.tenant_id as string });
  const n = (row: Record<string, any>) => Number(row.n ?? 0);
  const purges = `FROM retention_runs WHERE kind='purge' AND NOT dry_run`;
  dbGauge(env, db, {
    name: 'stella_retention_purged_items',
    help: 'Evidence items purged by retention runs (not dry runs), by tenant',
    labelNames: ['tenant'],
    sql: `SELECT tenant_id, sum(items) AS n ${purges} GROUP BY tenant_id`,
    value: n,
    labels: byTenant,
  });
  dbGauge(env, db, {
    name: 'stella_retention_freed_bytes',
    help: 'Storage bytes freed by retention purges, by tenant',
    labelNames: ['tenant'],
    sql: `SELECT tenant_id, sum(bytes_freed) AS n ${purges} GROUP BY tenant_id`,
    value: n,
    labels: byTenant,
  });
  dbGauge(env, db, {
    name: 'stella_retention_last_success_timestamp_seconds',
    help: 'Finish time of the latest successful retention purge (dry runs excluded), by tenant',
    labelNames: ['tenant'],
    sql: `SELECT tenant_id, extract(epoch FROM max(finished_at))::float AS n ${purges} AND status='succeeded' GROUP BY tenant_id`,
    value: n,
    labels: byTenant,
  });
  dbGauge(env, db, {
    name: 'stella_retention_runs_failed',
    help: 'Retention runs that ended failed in the last 7 days, by tenant',
    labelNames: ['tenant'],
    sql: `SELECT tenant_id, count(*) AS n FROM retention_runs WHERE status='failed' AND started_at > now() - interval '7 days' GROUP BY tenant_id`,
    value: n,
    labels: byTenant,
  });
  dbGauge(env, db, {
    name: 'stella_legal_holds_active',
    help: 'Legal holds not yet released, by tenant and scope',
    labelNames: ['tenant', 'scope'],
    sql: `SELECT tenant_id, scope, count(*) AS n FROM legal_holds WHERE released_at IS NULL GROUP BY tenant_id, scope`,
    value: n,
    labels: (row) => ({ tenant: row.tenant_id, scope: row.scope }),
  });
}
