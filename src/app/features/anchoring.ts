import type { Feature } from '../feature';
import { anchoringMetrics } from '../../core/anchoring/metrics';
import { anchoringSchedules } from '../../core/anchoring/schedules';

/** Merkle anchoring of the evidence log (SP-003). */
export const anchoringFeature: Feature = {
  name: 'anchoring',
  routes: async () => (await import('../../api/routes/anchoring')).registerAnchoringRoutes,
  schedules: anchoringSchedules,
  metrics: anchoringMetrics,
};
