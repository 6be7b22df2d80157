import client from 'prom-client';
import { extraMetrics } from '../metrics';

// Retention metrics, read from the run records at scrape time (any API replica agrees).
extraMetrics.push((registry, db) => {
  if (!db) return;
  const none = { rows: [] as Record<string, any>[] };
  new client.Gauge({
    name: 'stella_retention_purged_items_total',
    help: 'Evidence items purged by retention runs (not dry runs), by tenant',
    labelNames: ['tenant'],
    registers: [registry],
    async collect() {
      this.reset();
      const r = await db.query(`SELECT tenant_id, coalesce(sum(items),0)::bigint AS n FROM retention_runs WHERE kind='purge' AND NOT dry_run GROUP BY tenant_id`).catch(() => none);
      for (const row of r.rows) this.set({ tenant: row.tenant_id }, Number(row.n));
    },
  });
  new client.Gauge({
    name: 'stella_retention_bytes_freed_total',
    help: 'Storage bytes freed by retention purges, by tenant',
    labelNames: ['tenant'],
    registers: [registry],
    async collect() {
      this.reset();
      const r = await db.query(`SELECT tenant_id, coalesce(sum(bytes_freed),0)::bigint AS n FROM retention_runs WHERE kind='purge' AND NOT dry_run GROUP BY tenant_id`).catch(() => none);
      for (const row of r.rows) this.set({ tenant: row.tenant_id }, Number(row.n));
    },
  });
  new client.Gauge({
    name: 'stella_retention_last_success_timestamp_seconds',
    help: 'Finish time of the latest successful retention purge (dry runs excluded), by tenant',
    labelNames: ['tenant'],
    registers: [registry],
    async collect() {
      this.reset();
      const r = await db.query(`SELECT tenant_id, extract(epoch FROM max(finished_at))::float AS t FROM retention_runs WHERE kind='purge' AND NOT dry_run AND status='succeeded' GROUP BY tenant_id`).catch(() => none);
      for (const row of r.rows) this.set({ tenant: row.tenant_id }, Number(row.t ?? 0));
    },
  });
  new client.Gauge({
    name: 'stella_retention_runs_failed',
    help: 'Retention runs that ended failed in the last 7 days, by tenant',
    labelNames: ['tenant'],
    registers: [registry],
    async collect() {
      this.reset();
      const r = await db.query(`SELECT tenant_id, count(*)::int AS n FROM retention_runs WHERE status='failed' AND started_at > now() - interval '7 days' GROUP BY tenant_id`).catch(() => none);
      for (const row of r.rows) this.set({ tenant: row.tenant_id }, row.n);
    },
  });
  new client.Gauge({
    name: 'stella_legal_holds_active',
    help: 'Legal holds not yet released, by tenant and scope',
    labelNames: ['tenant', 'scope'],
    registers: [registry],
    async collect() {
      this.reset();
      const r = await db.query(`SELECT tenant_id, scope, count(*)::int AS n FROM legal_holds WHERE released_at IS NULL GROUP BY tenant_id, scope`).catch(() => none);
      for (const row of r.rows) this.set({ tenant: row.tenant_id, scope: row.scope }, row.n);
    },
  });
});
