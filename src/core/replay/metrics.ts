/** The replay feature's gauges. */
import { dbGauge, type MetricsEnv } from '../metrics';

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
