import client from 'prom-client';
import type { Db } from '../db/pool';
import type { BlobStores } from '../blob';

/** What a feature's metrics function gets: the registry to add to, and what it may read at scrape time. */
export interface MetricsEnv {
  registry: client.Registry;
  db: Db | null;
  blobs?: BlobStores;
}

/** The process-wide metrics the HTTP edge records into (built by src/app/metrics.ts). */
export interface HttpMetrics {
  registry: client.Registry;
  retrievalLatency: client.Histogram;
  ingestTotal: client.Counter;
  httpRequests: client.Counter;
}

/**
 * A gauge read from PostgreSQL at scrape time: one series per result row. Queries that fail
 * (e.g. a table from a later migration) leave the gauge empty rather than failing the scrape.
 */
export function dbGauge(
  registry: client.Registry,
  db: Db,
  g: {
    name: string;
    help: string;
    labelNames?: string[];
    sql: string;
    value: (row: Record<string, any>) => number;
    labels?: (row: Record<string, any>) => Record<string, string>;
  },
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
