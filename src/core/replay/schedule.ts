import { SCHEDULE_IDS } from '../../temporal/names';
import type { ScheduleSource } from '../../temporal/schedules';
import { dbGauge, type MetricsEnv } from '../metrics';

// Nightly replay verification of the latest N manifests per tenant (runbook §2.2).
export const replaySchedules: ScheduleSource = (cfg) => [
  {
    id: SCHEDULE_IDS.replayNightly,
    description: 'Nightly verification of the latest replay manifests per tenant',
    workflowType: 'replayVerifyNightly',
    args: [{ latestN: cfg.schedules.replayLatestN, concurrency: 4 }],
    cron: ['30 3 * * *'],
  },
];

// Replay metrics, read from the verification record so every API replica agrees.
export function replayMetrics({ registry, db }: MetricsEnv): void {
  if (!db) return;
  dbGauge(registry, db, {
    name: 'replay_verify_total',
    help: 'Replay manifest verifications by result (monotonic count from the verification record)',
    labelNames: ['result'],
    // Both results always present (0 when none), so alert expressions see the series.
    sql: `SELECT r.result, count(v.id) AS n FROM (VALUES ('passed'), ('failed')) AS r(result) LEFT JOIN replay_verifications v ON v.result = r.result GROUP BY r.result`,
    value: (row) => Number(row.n),
    labels: (row) => ({ result: row.result }),
  });
  dbGauge(registry, db, {
    name: 'replay_bundle_size_bytes',
    help: 'Bytes of recorded replay bundles, by bundle',
    labelNames: ['bundle'],
    sql: `SELECT 'input' AS bundle, coalesce(sum(input_size),0) AS n FROM replay_runs UNION ALL SELECT 'output', coalesce(sum(output_size),0) FROM replay_runs`,
    value: (row) => Number(row.n),
    labels: (row) => ({ bundle: row.bundle }),
  });
}
