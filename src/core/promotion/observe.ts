import client from 'prom-client';
import type { MetricsEnv } from '../metrics';
import type { DoctorCheck } from '../doctor';
import { blockedOnEvidence } from './store';

/**
 * Operability for promotions: the `stella_promotions_waiting_evidence` gauge (read from
 * PostgreSQL at scrape time, cached, so every API replica agrees) behind the OrchestratorEvidenceMissing
 * alert, and the doctor check `check.orchestrator.evidence-availability` from the runbook.
 */

export function promotionMetrics({ registry, db, cached }: MetricsEnv): void {
  if (!db) return;
  // Explicit zeros for targets promoted to recently, so dashboards show 0 rather than no data.
  const waiting = cached(
    async () =>
      (
        await db.query(
          `SELECT tenant_id, to_env, (count(*) FILTER (WHERE state='waiting-evidence'))::int AS n FROM promotions
           WHERE state='waiting-evidence' OR updated_at > now() - interval '30 days' GROUP BY tenant_id, to_env`,
        )
      ).rows,
  );
  const oldest = cached(
    async () =>
      (await db.query(`SELECT coalesce(extract(epoch FROM now() - min(updated_at)), 0)::float AS s FROM promotions WHERE state='waiting-evidence'`)).rows[0]
        ?.s ?? 0,
  );
  new client.Gauge({
    name: 'stella_promotions_waiting_evidence',
    help: 'Promotions blocked waiting for required evidence, by tenant and target environment',
    labelNames: ['tenant', 'env'],
    registers: [registry],
    async collect() {
      const rows = await waiting();
      this.reset();
      for (const row of rows) this.set({ tenant: row.tenant_id, env: row.to_env }, row.n);
    },
  });
  new client.Gauge({
    name: 'stella_promotions_waiting_evidence_oldest_seconds',
    help: 'Age of the longest-waiting promotion blocked on evidence (0 when none)',
    registers: [registry],
    async collect() {
      this.set(await oldest());
    },
  });
}

export const promotionDoctorChecks: DoctorCheck[] = [
  {
    id: 'check.orchestrator.evidence-availability',
    categories: ['orchestrator', 'evidence'],
    description: 'Promotions blocked on missing evidence, and what each one misses',
    scope: 'promotion:read',
    async run({ ctx, tenant }) {
      const blocked = await blockedOnEvidence(ctx.db, tenant);
      if (!blocked.length) return { status: 'PASS', message: 'no promotion is waiting for evidence' };
      // Short form per promotion ("SBOM not found, attestation missing"), with the reason evidence
      // present did not count ("sbom sha256:… is unsigned (uploaded); policy requires signer …"); full detail in details.
      const reasonOf = (g: (typeof blocked)[number]['missing'][number]) => {
        const why = g.considered?.find((c) => !c.accepted)?.problem;
        return `${g.detail.split(':')[0]}${why ? ` (${why})` : ''}`;
      };
      const lines = blocked.map((b) => `${b.workflowId} (to ${b.toEnv}): ${b.missing.map(reasonOf).join(', ')}`);
      const commands = [...new Set(blocked.flatMap((b) => b.missing.map((g) => g.missing?.command).filter((c): c is string => !!c)))];
      return {
        status: 'WARN',
        message: `${blocked.length} promotion(s) blocked on evidence: ${lines.join('; ')}`,
        remedy: `generate the missing evidence (${commands.join(' ; ')}), then: stella promotion retry`,
        details: {
          promotions: blocked.map((b) => ({
            id: b.workflowId,
            promotionId: b.promotionId,
            artifact: b.artifactDigest,
            to: b.toEnv,
            waitingSince: b.waitingSince,
            deadline: b.deadline,
            missing: b.missing.map((g) => ({ gate: g.name, detail: g.detail, rule: g.rule ?? null, evidence: g.evidence ?? null, ...g.missing })),
          })),
        },
      };
    },
  },
];
