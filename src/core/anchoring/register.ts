import { SCHEDULE_IDS } from '../../temporal/names';
import client from 'prom-client';
import type { MetricsEnv } from '../metrics';
import type { ScheduleSource } from '../../temporal/schedules';

export const ANCHOR_SCHEDULE_ID = SCHEDULE_IDS.merkleAnchor;

// SP-003: anchor every cfg.schedules.anchorInterval (default 6h); overlap SKIP and a one-period
// catch-up window come from ensureSchedules, so downtime yields one catch-up run.
export const anchoringSchedules: ScheduleSource = (cfg) => [
  {
    id: ANCHOR_SCHEDULE_ID,
    description: 'SP-003 Merkle anchoring of the evidence log (signed, linked anchor; then verify --latest)',
    workflowType: 'anchorEvidence',
    args: [{ reason: 'scheduled', verify: true }],
    every: cfg.schedules.anchorInterval,
  },
];

export function anchoringMetrics({ registry, db }: MetricsEnv): void {
  if (!db) return;
  new client.Gauge({
    name: 'stella_merkle_anchor_age_seconds',
    help: 'Seconds since the newest anchor of the active chain (since the first unanchored leaf when nothing was anchored yet; 0 for an empty log)',
    registers: [registry],
    async collect() {
      const r = await db.query(`SELECT extract(epoch FROM now() - max(created_at))::float AS age FROM anchors WHERE status = 'active'`);
      let age = r.rows[0]?.age as number | null;
      if (age === null || age === undefined) {
        const l = await db.query('SELECT extract(epoch FROM now() - min(appended_at))::float AS age FROM evidence_log');
        age = (l.rows[0]?.age as number | null) ?? 0;
      }
      this.set(Math.max(0, age));
    },
  });
  new client.Gauge({
    name: 'stella_merkle_unanchored_leaves',
    help: 'Log leaves not yet covered by the newest anchor (anchoring skips when this is 0)',
    registers: [registry],
    async collect() {
      const r = await db.query(`SELECT (SELECT size FROM log_state WHERE id) - coalesce((SELECT max(log_size) FROM anchors WHERE status = 'active'), 0) AS n`);
      this.set(Math.max(0, Number(r.rows[0]?.n ?? 0)));
    },
  });
  new client.Gauge({
    name: 'stella_merkle_anchor_chain_ok',
    help: '1 when the latest `anchor verify` found the chain intact, 0 when it found a break (absent until the first verify)',
    labelNames: ['scope'],
    registers: [registry],
    async collect() {
      this.reset();
      const r = await db.query('SELECT scope, ok FROM anchor_verifications ORDER BY verified_at DESC, id DESC LIMIT 1');
      if (r.rowCount) this.set({ scope: r.rows[0].scope }, r.rows[0].ok ? 1 : 0);
    },
  });
}
