import type { Feature } from '../feature';
import { scanMetrics } from '../../core/scan/metrics';

/** Scan-then-attest: images, feeds, scans, attestations, keys, push events. */
export const scanFeature: Feature = {
  name: 'scan',
  routes: async () => (await import('../../api/routes/scan')).registerScanRoutes,
  metrics: scanMetrics,
};
