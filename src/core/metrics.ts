import client from 'prom-client';
import type { Db } from '../db/pool';

/**
 * Prometheus metrics. Gauges that describe stored state are read from PostgreSQL at scrape
 * time, so any API replica reports the same truth whichever process did the work.
 */
export function createMetrics(db: Db | null) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });

  const retrievalLatency = new client.Histogram({
    name: 'stella_evidence_retrieval_latency_seconds',
    help: 'Latency of evidence retrieval (GET /evidence/:id), verified read',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const ingestTotal = new client.Counter({ name: 'stella_evidence_ingest_total', help: 'Evidence ingest requests by outcome', labelNames: ['outcome'], registers: [registry] });
  const httpRequests = new client.Counter({ name: 'stella_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'method', 'status'], registers: [registry] });

  if (db) {
    new client.Gauge({
      name: 'stella_evidence_artifacts_total',
      help: 'Evidence items stored (not purged), by kind',
      labelNames: ['kind'],
      registers: [registry],
      async collect() {
        this.reset();
        const r = await db.query(`SELECT kind, count(*)::int AS n FROM evidence_items WHERE state <> 'purged' GROUP BY kind`);
        for (const row of r.rows) this.set({ kind: row.kind }, row.n);
      },
    });
    new client.Gauge({
      name: 'stella_evidence_storage_bytes',
      help: 'Bytes of evidence stored (distinct blobs, not purged), by tier',
      labelNames: ['tier'],
      registers: [registry],
      async collect() {
        this.reset();
        const r = await db.query(`SELECT tier, coalesce(sum(size),0)::bigint AS b FROM (SELECT DISTINCT ON (id) id, tier, size_bytes AS size FROM evidence_items WHERE state <> 'purged') x GROUP BY tier`);
        for (const row of r.rows) this.set({ tier: row.tier }, Number(row.b));
      },
    });
    new client.Gauge({
      name: 'stella_evidence_verify_results',
      help: 'Outcome counts of the latest integrity verification run, by result',
      labelNames: ['result', 'mode'],
      registers: [registry],
      async collect() {
        this.reset();
        const run = await db.query(`SELECT id, mode, ok FROM verify_runs WHERE finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1`);
        if (!run.rowCount) return;
        const { id, mode, ok } = run.rows[0];
        this.set({ result: 'ok', mode }, ok);
        const r = await db.query('SELECT result, count(*)::int AS n FROM verify_results WHERE run_id=$1 GROUP BY result', [id]);
        for (const row of r.rows) this.set({ result: row.result, mode }, row.n);
      },
    });
    new client.Gauge({
      name: 'stella_evidence_verify_last_run_timestamp_seconds',
      help: 'Finish time of the latest integrity verification run',
      registers: [registry],
      async collect() {
        const r = await db.query(`SELECT extract(epoch FROM max(finished_at))::float AS t FROM verify_runs`);
        this.set(r.rows[0]?.t ?? 0);
      },
    });
  }
  for (const extra of extraMetrics) extra(registry, db);
  return { registry, retrievalLatency, ingestTotal, httpRequests };
}

/** Feature modules add their metrics (usually DB-backed gauges) here at import time. */
export const extraMetrics: ((registry: client.Registry, db: Db | null) => void)[] = [];

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * A gauge read from PostgreSQL at scrape time: one series per result row. Queries that fail
 * (e.g. a table from a later migration) leave the gauge empty rather than failing the scrape.
 */
export function dbGauge(
  registry: client.Registry,
  db: Db,
  g: { name: string; help: string; labelNames?: string[]; sql: string; value: (row: Record<string, any>) => number; labels?: (row: Record<string, any>) => Record<string, string> },
): client.Gauge {
  return new client.Gauge({
    name: g.name,
    help: g.help,
    labelNames: g.labelNames ?? [],
    registers: [registry],
    async collect() {
      this.reset();
      const r = await db.query(g.sql).catch(() => ({ rows: [] as Record<string, any>[] }));
      for (const row of r.rows) this.set(g.labels ? g.labels(row) : {}, g.value(row));
    },
  });
}
