/** The shape every stella feature exports for composition (listed in src/app/features.ts). */
import type { RegisterRoutes } from '../api/deps';
import type { DoctorCheck } from '../core/doctor';
import type { MetricsEnv } from '../core/metrics';
import type { ScheduleSource } from '../temporal/schedules';

export interface Feature {
  /** The runbook concept it owns (evidence, locker, anchoring, …). */
  name: string;
  /** HTTP routes, loaded on demand so a worker-only process never imports HTTP code. */
  routes?: () => Promise<RegisterRoutes>;
  /** Temporal Schedules the worker creates or updates at start. */
  schedules?: ScheduleSource;
  /** Metrics (usually DB-backed gauges read at scrape time). */
  metrics?: (env: MetricsEnv) => void;
  /** `stella doctor` checks. */
  doctorChecks?: readonly DoctorCheck[];
}
