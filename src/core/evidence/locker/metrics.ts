import client from 'prom-client';
import type { MetricsEnv } from '../../metrics';
import { capacity } from './storage';

/**
 * Evidence Locker gauges, read at scrape time (cached, see MetricsEnv.cached) so every API
 * replica reports the same truth: items and bytes stored, the latest integrity run, and store
 * capacity for StellaEvidenceStorageFull (ops/prometheus/evidence-alerts.yml).
 */
export function lockerMetrics({ registry, db, blobs, cached }: MetricsEnv): void {
  if (db) {
    const items = cached(async () => (await db.query(`SELECT kind, count(*)::int AS n FROM evidence_items WHERE state <> 'purged' GROUP BY kind`)).rows);
    new client.Gauge({
      // Formerly stella_evidence_artifacts_total (a gauge): kept as a recording rule (ops/prometheus/legacy-names.yml).
      name: 'stella_evidence_artifacts',
      help: 'Evidence items stored (not purged), by kind',
      labelNames: ['kind'],
      registers: [registry],
      async collect() {
        const rows = await items();
        this.reset();
        for (const row of rows) this.set({ kind: row.kind }, row.n);
      },
    });
    const bytes = cached(
      async () =>
        (
          await db.query(
            `SELECT tier, coalesce(sum(size),0)::bigint AS b FROM (SELECT DISTINCT ON (id) id, tier, size_bytes AS size FROM evidence_items WHERE state <> 'purged') x GROUP BY tier`,
          )
        ).rows,
    );
    new client.Gauge({
      name: 'stella_evidence_storage_bytes',
      help: 'Bytes of evidence stored (distinct blobs, not purged), by tier',
      labelNames: ['tier'],
      registers: [registry],
      async collect() {
        const rows = await bytes();
        this.reset();
        for (const row of rows) this.set({ tier: row.tier }, Number(row.b));
      },
    });
    const latestRun = cached(async () => {
      const run = await db.query(`SELECT id, mode, ok, acknowledged FROM verify_runs WHERE finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1`);
      if (!run.rowCount) return null;
      const { id, mode, ok, acknowledged } = run.rows[0];
      // Acknowledged failures are not failures for StellaEvidenceIntegrityFailure: counted apart.
      const r = await db.query('SELECT result, count(*)::int AS n FROM verify_results WHERE run_id=$1 AND NOT acknowledged GROUP BY result', [id]);
      return { mode: mode as string, ok: Number(ok), acknowledged: Number(acknowledged ?? 0), results: r.rows as { result: string; n: number }[] };
    });
    new client.Gauge({
      name: 'stella_evidence_verify_results',
      help: 'Outcome counts of the latest integrity verification run, by result',
      labelNames: ['result', 'mode'],
      registers: [registry],
      async collect() {
        const run = await latestRun();
        this.reset();
        if (!run) return;
        this.set({ result: 'ok', mode: run.mode }, run.ok);
        for (const row of run.results) this.set({ result: row.result, mode: run.mode }, row.n);
      },
    });
    new client.Gauge({
      name: 'stella_evidence_verify_acknowledged',
      help: 'Failures of the latest integrity verification run an operator had acknowledged (listed in verify-report, not alerting)',
      registers: [registry],
      async collect() {
        this.set((await latestRun())?.acknowledged ?? 0);
      },
    });
    const lastRun = cached(async () => (await db.query(`SELECT extract(epoch FROM max(finished_at))::float AS t FROM verify_runs`)).rows[0]?.t ?? 0);
    new client.Gauge({
      name: 'stella_evidence_verify_last_run_timestamp_seconds',
      help: 'Finish time of the latest integrity verification run',
      registers: [registry],
      async collect() {
        this.set(await lastRun());
      },
    });
  }

  const cap = cached(async () => (blobs ? await capacity(blobs.primary).catch(() => null) : null));
  new client.Gauge({
    name: 'stella_evidence_store_capacity_bytes',
    help: 'Size of the filesystem holding the evidence store (fs backend only)',
    registers: [registry],
    async collect() {
      const c = await cap();
      if (c) this.set(c.totalBytes);
    },
  });
  new client.Gauge({
    name: 'stella_evidence_store_available_bytes',
    help: 'Free bytes on the filesystem holding the evidence store (fs backend only)',
    registers: [registry],
    async collect() {
      const c = await cap();
      if (c) this.set(c.availableBytes);
    },
  });
}
