import { dbGauge, type MetricsEnv } from '../metrics';

// Scan metrics, read at scrape time (cached). FeedStale (ops/prometheus/scan-alerts.yml) fires at 2 days.
export function scanMetrics(env: MetricsEnv): void {
  const { db } = env;
  if (!db) return;
  dbGauge(env, db, {
    name: 'stella_scan_feed_age_seconds',
    help: 'Seconds since `stella feeds sync` last confirmed an ecosystem against its OSV mirror, by tenant and ecosystem',
    labelNames: ['tenant', 'ecosystem'],
    sql: `SELECT tenant_id, ecosystem, extract(epoch FROM now() - synced_at)::float AS n FROM advisory_feed_ecosystems`,
    value: (row) => Number(row.n ?? 0),
    labels: (row) => ({ tenant: row.tenant_id, ecosystem: row.ecosystem }),
  });
}
