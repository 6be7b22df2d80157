import type { Feature } from '../feature';
import { promotionDoctorChecks, promotionMetrics } from '../../core/promotion/observe';

/** Promotions between environments behind evidence gates. */
export const promotionFeature: Feature = {
  name: 'promotion',
  routes: async () => (await import('../../api/routes/promotion')).registerPromotionRoutes,
  metrics: promotionMetrics,
  doctorChecks: promotionDoctorChecks,
};
