/** The anchoring feature's gauges, read from the database at scrape time (cached) so every replica agrees. */
import client from 'prom-client';
import type { Db } from '../../db/pool';
import type { MetricsEnv } from '../metrics';
import { logSize, oldestLeafAgeSeconds } from '../evidence/queries/anchoring';

async function newestActiveAnchorAge(db: Db): Promise<number | null> {
  const r = await db.query(`SELECT extract(epoch FROM now() - max(created_at))::float AS age FROM anchors WHERE status = 'active'`);
  return (r.rows[0]?.age as number | null) ?? null;
}

async function anchoredLogSize(db: Db): Promise<number> {
  const r = await db.query(`SELECT coalesce(max(log_size), 0) AS n FROM anchors WHERE status = 'active'`);
  return Number(r.rows[0]?.n ?? 0);
}

async function lastVerification(db: Db): Promise<{ scope: string; ok: boolean } | null> {
  const r = await db.query('SELECT scope, ok FROM anchor_verifications ORDER BY verified_at DESC, id DESC LIMIT 1');
  return r.rowCount ? { scope: r.rows[0].scope, ok: !!r.rows[0].ok } : null;
}

export function anchoringMetrics({ registry, db, cached }: MetricsEnv): void {
  if (!db) return;
  const age = cached(async () => (await newestActiveAnchorAge(db)) ?? (await oldestLeafAgeSeconds(db)) ?? 0);
  const unanchored = cached(async () => (await logSize(db)) - (await anchoredLogSize(db)));
  const verification = cached(() => lastVerification(db));
  new client.Gauge({
    name: 'stella_merkle_anchor_age_seconds',
    help: 'Seconds since the newest anchor of the active chain (since the first unanchored leaf when nothing was anchored yet; 0 for an empty log)',
    registers: [registry],
    async collect() {
      this.set(Math.max(0, await age()));
    },
  });
  new client.Gauge({
    name: 'stella_merkle_unanchored_leaves',
    help: 'Log leaves not yet covered by the newest anchor (anchoring skips when this is 0)',
    registers: [registry],
    async collect() {
      this.set(Math.max(0, await unanchored()));
    },
  });
  new client.Gauge({
    name: 'stella_merkle_anchor_chain_ok',
    help: '1 when the latest `anchor verify` found the chain intact, 0 when it found a break (absent until the first verify)',
    labelNames: ['scope'],
    registers: [registry],
    async collect() {
      const v = await verification();
      this.reset();
      if (v) this.set({ scope: v.scope }, v.ok ? 1 : 0);
    },
  });
}
