import type { Feature } from '../feature';
import { retentionSchedules } from '../../core/retention/schedules';
import { retentionMetrics } from '../../core/retention/metrics';

/** Retention policies, legal holds, tiering, purge, archive (SP-004). */
export const retentionFeature: Feature = {
  name: 'retention',
  routes: async () => (await import('../../api/routes/retention')).registerRetentionRoutes,
  schedules: retentionSchedules,
  metrics: retentionMetrics,
};
