import type { Feature } from '../feature';
import { replayMetrics } from '../../core/replay/metrics';
import { replaySchedules } from '../../core/replay/schedules';

/** Signed replay manifests, bundles and their nightly verification. */
export const replayFeature: Feature = {
  name: 'replay',
  routes: async () => (await import('../../api/routes/replay')).registerReplayRoutes,
  schedules: replaySchedules,
  metrics: replayMetrics,
};
