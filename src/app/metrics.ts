/** Builds the Prometheus registry: the HTTP edge's own metrics plus every feature's. */
import { readFileSync } from 'node:fs';
import client from 'prom-client';
import type { Db } from '../db/pool';
import type { BlobStores } from '../blob';
import { scrapeCache, type HttpMetrics } from '../core/metrics';
import type { Feature } from './feature';
import { FEATURES } from './features';

/** package.json's version, and the commit the image was built from (STELLA_BUILD_COMMIT, set by the Dockerfile). */
export function buildInfo(): { version: string; commit: string } {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return { version, commit: process.env.STELLA_BUILD_COMMIT || 'unknown' };
}

/** The process's own metrics (Node.js runtime + `stella_build_info`), shared by the API and the worker-only listener. */
export function createProcessRegistry(): client.Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  // prom-client's nodejs_active_{handles,requests,resources}_total are gauges with a counter suffix
  // (promtool check metrics rejects them); the same counts are in nodejs_active_{handles,requests,resources}.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  const info = new client.Gauge({
    name: 'stella_build_info',
    help: 'Always 1; the labels say which stella version and commit this process runs',
    labelNames: ['version', 'commit'],
    registers: [registry],
  });
  info.set(buildInfo(), 1);
  return registry;
}

export function createMetrics(db: Db | null, opts: { blobs?: BlobStores; features?: readonly Feature[]; cacheSeconds?: number } = {}): HttpMetrics {
  const registry = createProcessRegistry();

  const retrievalLatency = new client.Histogram({
    name: 'stella_evidence_retrieval_latency_seconds',
    help: 'Latency of evidence retrieval (GET /evidence/:id), verified read',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const retrievalIntegrityFailures = new client.Counter({
    name: 'stella_evidence_retrieval_integrity_failures_total',
    help: 'Evidence retrievals aborted mid-stream because the blob did not match its digest (the client got a truncated response)',
    registers: [registry],
  });
  const ingestTotal = new client.Counter({
    name: 'stella_evidence_ingest_total',
    help: 'Evidence ingest requests by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const httpRequests = new client.Counter({
    name: 'stella_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  const httpDuration = new client.Histogram({
    name: 'stella_http_request_duration_seconds',
    help: 'HTTP request duration, by route template, method and status class (2xx, 4xx, 5xx)',
    labelNames: ['route', 'method', 'status_class'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  const env = { registry, db, blobs: opts.blobs, cached: scrapeCache((opts.cacheSeconds ?? 15) * 1000) };
  for (const f of opts.features ?? FEATURES) f.metrics?.(env);
  return { registry, retrievalLatency, retrievalIntegrityFailures, ingestTotal, httpRequests, httpDuration };
}
