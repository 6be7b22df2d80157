import client from 'prom-client';
import { extraMetrics } from '../metrics';
import type { AppContext } from '../context';
import { capacity } from './storage';

/**
 * Capacity gauges for StellaEvidenceStorageFull (ops/prometheus/evidence-alerts.yml). They need
 * the blob store, which createMetrics does not get: the API hands it over when it registers
 * the locker routes, before any scrape happens.
 */
let current: AppContext | null = null;

export function registerLockerMetrics(ctx: AppContext): void {
  current = ctx;
}

extraMetrics.push((registry) => {
  new client.Gauge({
    name: 'stella_evidence_store_capacity_bytes',
    help: 'Size of the filesystem holding the evidence store (fs backend only)',
    registers: [registry],
    async collect() {
      const c = current ? await capacity(current.blobs.primary).catch(() => null) : null;
      if (c) this.set(c.totalBytes);
    },
  });
  new client.Gauge({
    name: 'stella_evidence_store_available_bytes',
    help: 'Free bytes on the filesystem holding the evidence store (fs backend only)',
    registers: [registry],
    async collect() {
      const c = current ? await capacity(current.blobs.primary).catch(() => null) : null;
      if (c) this.set(c.availableBytes);
    },
  });
});
