import type { Feature } from '../feature';
import { anchoringMetrics, anchoringSchedules } from '../../core/anchoring/register';

/** Merkle anchoring of the evidence log (SP-003). */
export const anchoringFeature: Feature = {
  name: 'anchoring',
  routes: async () => (await import('../../api/routes/anchoring')).registerAnchoringRoutes,
  schedules: anchoringSchedules,
  metrics: anchoringMetrics,
};
