/** The replay feature's gauges. */
import { dbGauge, type MetricsEnv } from '../metrics';

// Replay metrics, read from the verification record (cached) so every API replica agrees.
// Formerly replay_verify_total / replay_bundle_size_bytes: kept as recording rules (ops/prometheus/legacy-names.yml).
export function replayMetrics(env: MetricsEnv): void {
  const { db } = env;
  if (!db) return;
  dbGauge(env, db, {
    name: 'stella_replay_verifications',
    help: 'Replay manifest verifications recorded, by result (a gauge: row count of the verification record)',
    labelNames: ['result'],
    // Both results always present (0 when none), so alert expressions see the series.
    sql: `SELECT r.result, count(v.id) AS n FROM (VALUES ('passed'), ('failed')) AS r(result) LEFT JOIN replay_verifications v ON v.result = r.result GROUP BY r.result`,
    value: (row) => Number(row.n),
    labels: (row) => ({ result: row.result }),
  });
  dbGauge(env, db, {
    name: 'stella_replay_bundle_size_bytes',
    help: 'Bytes of recorded replay bundles, by bundle',
    labelNames: ['bundle'],
    sql: `SELECT 'input' AS bundle, coalesce(sum(input_size),0) AS n FROM replay_runs UNION ALL SELECT 'output', coalesce(sum(output_size),0) FROM replay_runs`,
    value: (row) => Number(row.n),
    labels: (row) => ({ bundle: row.bundle }),
  });
}
