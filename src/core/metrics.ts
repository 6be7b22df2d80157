import client from 'prom-client';
import type { Db } from '../db/pool';
import type { BlobStores } from '../blob';

/** What a feature's metrics function gets: the registry to add to, and what it may read at scrape time. */
export interface MetricsEnv {
  registry: client.Registry;
  db: Db | null;
  blobs?: BlobStores;
  /**
   * Wraps a scrape-time read so it runs at most once per cache period (STELLA_METRICS_CACHE_SECONDS,
   * default 15): scrapes in between (several Prometheus servers, dashboards) get the last value
   * instead of another SQL aggregate. Concurrent scrapes share one read.
   */
  cached: <T>(read: () => Promise<T>) => () => Promise<T>;
}

/** The process-wide metrics the HTTP edge records into (built by src/app/metrics.ts). */
export interface HttpMetrics {
  registry: client.Registry;
  retrievalLatency: client.Histogram;
  /** Retrievals aborted mid-stream because the blob failed its digest check. */
  retrievalIntegrityFailures: client.Counter;
  ingestTotal: client.Counter;
  httpRequests: client.Counter;
  /** Request duration by route template, method and status class (2xx, 4xx, …). */
  httpDuration: client.Histogram;
}

/** A cache for scrape-time reads: each wrapped read runs at most once per `ttlMs` (0: every scrape). */
export function scrapeCache(ttlMs: number): MetricsEnv['cached'] {
  return <T>(read: () => Promise<T>) => {
    let at = Number.NEGATIVE_INFINITY;
    let last: Promise<T> | undefined;
    return () => {
      const now = Date.now();
      if (!last || now - at >= ttlMs) {
        at = now;
        last = read().catch((e) => {
          at = Number.NEGATIVE_INFINITY; // a failed read is retried at the next scrape
          throw e;
        });
      }
      return last;
    };
  };
}

/**
 * A gauge read from PostgreSQL at scrape time (cached, see MetricsEnv.cached): one series per
 * result row. Queries that fail (e.g. a table from a later migration) leave the gauge empty
 * rather than failing the scrape.
 */
export function dbGauge(
  env: Pick<MetricsEnv, 'registry' | 'cached'>,
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
  const rows = env.cached(async () => (await db.query(g.sql)).rows as Record<string, any>[]);
  return new client.Gauge({
    name: g.name,
    help: g.help,
    labelNames: g.labelNames ?? [],
    registers: [env.registry],
    async collect() {
      const r = await rows().catch(() => [] as Record<string, any>[]);
      this.reset();
      for (const row of r) this.set(g.labels ? g.labels(row) : {}, g.value(row));
    },
  });
}
