/** Builds the Prometheus registry: the HTTP edge's own metrics plus every feature's. */
import client from 'prom-client';
import type { Db } from '../db/pool';
import type { BlobStores } from '../blob';
import type { HttpMetrics } from '../core/metrics';
import type { Feature } from './feature';
import { FEATURES } from './features';

export function createMetrics(db: Db | null, opts: { blobs?: BlobStores; features?: readonly Feature[] } = {}): HttpMetrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });

  const retrievalLatency = new client.Histogram({
    name: 'stella_evidence_retrieval_latency_seconds',
    help: 'Latency of evidence retrieval (GET /evidence/:id), verified read',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
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

  for (const f of opts.features ?? FEATURES) f.metrics?.({ registry, db, blobs: opts.blobs });
  return { registry, retrievalLatency, ingestTotal, httpRequests };
}
