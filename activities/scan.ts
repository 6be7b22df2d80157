import { heartbeat, activityInfo, ApplicationFailure } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { StellaError, badInput, integrity } from '../src/lib/errors';
import { timelineEvent } from '../src/core/audit';
import { canonicalJson } from '../src/lib/canonical';
import { resolveImage } from '../src/core/scan/catalogue';
import { latestFeed, loadFeedSnapshot } from '../src/core/scan/feeds';
import { SCANNER, buildReport, runScan, toStellaError } from '../src/core/scan/engine';
import { reportCounts, runRow, scannerEngine, type ReportCounts, type ScanRun } from '../src/core/scan/runs';
import type { ScanEngine } from '../src/core/scan/external';
import { provenanceStatement, sbomStatement, signAndStore, vulnStatement, type AttestType, type ScanFacts } from '../src/core/attest/attest';

export const SBOM_MEDIA_TYPE = 'application/vnd.cyclonedx+json';
export const REPORT_MEDIA_TYPE = 'application/json';

export interface ScanThenAttestInput {
  tenant: string;
  artifactDigest?: string;
  imageRef?: string;
  sbomOnly?: boolean;
  force?: boolean;
  requestedBy: string;
  trigger?: 'promote' | 'push' | 'manual';
}

export interface ScanContext {
  tenant: string;
  scanId: string;
  workflowId: string;
  artifactDigest: string;
  imagePath: string;
  imageRef: string | null;
  imageFormat: string;
  trigger: string;
  requestedBy: string;
  sbomOnly: boolean;
  force: boolean;
  scanTime: string;
  feed: { version: number; digest: string; records: number; importedAt: string } | null;
  /** Which tool lists the packages (scanner config `engine`); pinned for the whole run. */
  engine?: ScanEngine;
}

/** scan_runs.scanner_name carries the engine, so reuse never mixes SBOMs from different tools. */
const scannerNameFor = (engine: ScanEngine) => (engine === 'builtin' ? SCANNER.name : `${SCANNER.name}+${engine}`);
const engineOf = (scannerName: string | null | undefined): ScanEngine => ((scannerName ?? '').split('+')[1] as ScanEngine | undefined) ?? 'builtin';

/**
 * Decisions (bad input, unknown image, integrity failures) fail the activity for good;
 * UNAVAILABLE and non-stella errors (I/O, DB) are retried by the workflow's policy.
 */
function fail(e: unknown, what: string): never {
  const s = toStellaError(e, what);
  if (s instanceof StellaError && s.code !== 'UNAVAILABLE') throw ApplicationFailure.nonRetryable(s.message, s.code, s.details);
  throw s;
}

/** Heartbeat on a timer while a long single await (reading layers) runs. */
async function beating<T>(fn: () => Promise<T>, detail: () => unknown = () => undefined): Promise<T> {
  const t = setInterval(() => heartbeat(detail()), 5_000);
  try {
    heartbeat(detail());
    return await fn();
  } finally {
    clearInterval(t);
  }
}

function facts(c: ScanContext, extra: { sbomId: string | null; reportId: string | null; finishedAt?: string }): ScanFacts {
  return {
    scanId: c.scanId,
    artifactDigest: c.artifactDigest,
    imageRef: c.imageRef,
    trigger: c.trigger,
    requestedBy: c.requestedBy,
    scanTime: c.scanTime,
    ...(extra.finishedAt ? { finishedAt: extra.finishedAt } : {}),
    scanner: SCANNER,
    feed: c.feed ? { version: c.feed.version, digest: c.feed.digest, importedAt: c.feed.importedAt } : null,
    sbomId: extra.sbomId,
    reportId: extra.reportId,
  };
}

export function createScanActivities(ctx: AppContext) {
  const acts = {
    /**
     * Resolve the image (catalogue name, path or digest) and pin the feed version, then
     * record the run. Idempotent: the row is keyed by scan id (the workflow run id).
     * Without force, a completed earlier run over the same inputs whose evidence is still
     * present is returned as `reuse` instead of scanning again.
     */
    async scanPrepare(
      input: ScanThenAttestInput & { scanId: string; workflowId: string; scanTime: string },
    ): Promise<{ ctx: ScanContext; reuse: ScanRun | null }> {
      try {
        const existing = await ctx.db.query('SELECT * FROM scan_runs WHERE tenant_id=$1 AND scan_id=$2', [input.tenant, input.scanId]);
        if (existing.rowCount) {
          const r = runRow(existing.rows[0]);
          const f = r.feedDigest
            ? await ctx.db.query('SELECT record_count, imported_at FROM advisory_feeds WHERE tenant_id=$1 AND digest=$2', [input.tenant, r.feedDigest])
            : null;
          return {
            ctx: {
              tenant: input.tenant,
              scanId: r.scanId,
              workflowId: r.workflowId,
              artifactDigest: r.artifactDigest,
              imagePath: r.imagePath!,
              imageRef: r.imageRef,
              imageFormat: r.imageFormat ?? '',
              trigger: r.trigger,
              requestedBy: r.requestedBy,
              sbomOnly: r.sbomOnly,
              force: r.force,
              scanTime: r.scanTime,
              feed:
                r.feedDigest && f?.rowCount
                  ? {
                      version: r.feedVersion!,
                      digest: r.feedDigest,
                      records: f.rows[0].record_count,
                      importedAt: new Date(f.rows[0].imported_at).toISOString(),
                    }
                  : null,
              engine: engineOf(existing.rows[0].scanner_name),
            },
            reuse: null,
          };
        }
        const ref = input.imageRef ?? input.artifactDigest;
        if (!ref) throw badInput('scanThenAttest needs imageRef or artifactDigest');
        const img = await resolveImage(ctx, input.tenant, ref);
        if (input.artifactDigest && img.digest !== input.artifactDigest) {
          throw badInput(`image ${ref} is ${img.digest}, not the requested artifact ${input.artifactDigest}`);
        }
        const feed = await latestFeed(ctx, input.tenant);
        const c: ScanContext = {
          tenant: input.tenant,
          scanId: input.scanId,
          workflowId: input.workflowId,
          artifactDigest: img.digest,
          imagePath: img.path,
          imageRef: img.ref,
          imageFormat: img.format,
          trigger: input.trigger ?? 'manual',
          requestedBy: input.requestedBy,
          sbomOnly: !!input.sbomOnly,
          force: !!input.force,
          scanTime: input.scanTime,
          feed: feed ? { version: feed.version, digest: feed.digest, records: feed.records, importedAt: feed.importedAt } : null,
          engine: await scannerEngine(ctx, input.tenant),
        };
        let reuse: ScanRun | null = null;
        if (!input.force) {
          // Same artifact, scanner and feed, and every item it produced still present.
          const prev = await ctx.db.query(
            `SELECT * FROM scan_runs WHERE tenant_id=$1 AND artifact_digest=$2 AND status='completed' AND scanner_version=$3
               AND feed_digest IS NOT DISTINCT FROM $4 AND (sbom_only = false OR $5) AND scanner_name=$6 ORDER BY finished_at DESC LIMIT 1`,
            [c.tenant, c.artifactDigest, SCANNER.version, c.feed?.digest ?? null, c.sbomOnly, scannerNameFor(c.engine ?? 'builtin')],
          );
          if (prev.rowCount) {
            const p = runRow(prev.rows[0]);
            const ids = [p.sbomId, ...(c.sbomOnly ? [] : [p.reportId, ...p.attestationIds])].filter((x): x is string => !!x);
            const present = await ctx.db.query(`SELECT count(*)::int AS n FROM evidence_items WHERE tenant_id=$1 AND id = ANY($2) AND state='present'`, [
              c.tenant,
              ids,
            ]);
            if (ids.length && present.rows[0].n === ids.length) reuse = p;
          }
        }
        await ctx.db.query(
          `INSERT INTO scan_runs (tenant_id, scan_id, workflow_id, artifact_digest, image_ref, image_path, image_format, trigger, requested_by, sbom_only, force,
             feed_version, feed_digest, scanner_name, scanner_version, scan_time, status, reused_from, sbom_id, report_id, attestation_ids, counts, components)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23) ON CONFLICT (tenant_id, scan_id) DO NOTHING`,
          [
            c.tenant,
            c.scanId,
            c.workflowId,
            c.artifactDigest,
            c.imageRef,
            c.imagePath,
            c.imageFormat,
            c.trigger,
            c.requestedBy,
            c.sbomOnly,
            c.force,
            c.feed?.version ?? null,
            c.feed?.digest ?? null,
            scannerNameFor(c.engine ?? 'builtin'),
            SCANNER.version,
            c.scanTime,
            reuse ? 'reused' : 'running',
            reuse?.scanId ?? null,
            reuse?.sbomId ?? null,
            reuse && !c.sbomOnly ? reuse.reportId : null,
            JSON.stringify(reuse && !c.sbomOnly ? reuse.attestationIds : []),
            reuse && !c.sbomOnly ? JSON.stringify(reuse.counts) : null,
            reuse?.components ?? null,
          ],
        );
        if (reuse) await ctx.db.query('UPDATE scan_runs SET finished_at=now() WHERE tenant_id=$1 AND scan_id=$2', [c.tenant, c.scanId]);
        return { ctx: c, reuse };
      } catch (e) {
        fail(e, 'scan');
      }
    },

    /** Scan the image into a CycloneDX SBOM and store it. Same scan time → same bytes → idempotent ingest. */
    async scanSbom(c: ScanContext): Promise<{ sbomId: string; components: number; packages: number; warnings: string[]; created: boolean }> {
      try {
        const r = await beating(
          () => runScan(c.imagePath, { expectedDigest: c.artifactDigest, now: c.scanTime, engine: c.engine }),
          () => ({ phase: 'scan', attempt: activityInfo().attempt }),
        );
        const components = r.sbom.components.length;
        const stored = await ctx.evidence.ingest({
          tenant: c.tenant,
          data: r.sbomBytes,
          kind: 'sbom',
          mediaType: SBOM_MEDIA_TYPE,
          subjects: [c.artifactDigest],
          producer: { type: 'scanner', name: SCANNER.name, version: SCANNER.version, scanId: c.scanId, workflowId: c.workflowId },
          labels: { 'stella.scan-id': c.scanId, 'stella.sbom-format': 'CycloneDX-1.6' },
        });
        const warnings = r.warnings.slice(0, 100);
        await ctx.db.query('UPDATE scan_runs SET sbom_id=$3, components=$4, warnings=$5 WHERE tenant_id=$1 AND scan_id=$2', [
          c.tenant,
          c.scanId,
          stored.id,
          components,
          JSON.stringify(warnings),
        ]);
        return { sbomId: stored.id, components, packages: r.packages.length, warnings, created: stored.created };
      } catch (e) {
        fail(e, `scan of ${c.imageRef ?? c.imagePath}`);
      }
    },

    /**
     * Match against the pinned feed snapshot and store the report (parent: the SBOM). The
     * image is scanned again with the feed so findings come from exactly the scanner's
     * semantics; the SBOM it yields must be the one stored, or the image changed underneath.
     */
    async scanMatch(c: ScanContext, sbomId: string): Promise<{ reportId: string; counts: ReportCounts; findings: number; warnings: string[] }> {
      try {
        const warnings: string[] = [];
        const feed = c.feed ? await loadFeedSnapshot(ctx, c.feed.digest) : undefined;
        if (!feed) warnings.push('no advisory feed imported: findings not evaluated, counts are 0 (stella feeds import <dir|zip>)');
        const r = await beating(
          () => runScan(c.imagePath, { expectedDigest: c.artifactDigest, now: c.scanTime, engine: c.engine, ...(feed ? { feed } : {}) }),
          () => ({ phase: 'match' }),
        );
        if (r.sbomDigest !== sbomId)
          throw integrity(`image ${c.imageRef ?? c.imagePath} no longer yields SBOM ${sbomId} (got ${r.sbomDigest}); re-run the scan`);
        const report = { ...buildReport(r, { scanId: c.scanId, feed: c.feed, warnings }), counts: reportCounts(r.counts) };
        const stored = await ctx.evidence.ingest({
          tenant: c.tenant,
          data: Buffer.from(canonicalJson(report)),
          kind: 'scan-report',
          mediaType: REPORT_MEDIA_TYPE,
          subjects: [c.artifactDigest],
          parents: [{ id: sbomId, relation: 'derived-from' }],
          producer: { type: 'scanner', name: SCANNER.name, version: SCANNER.version, scanId: c.scanId, feedDigest: c.feed?.digest ?? null },
          labels: { 'stella.scan-id': c.scanId, 'stella.feed': c.feed?.digest ?? 'none' },
        });
        await ctx.db.query(
          `UPDATE scan_runs SET report_id=$3, counts=$4, warnings = COALESCE((SELECT jsonb_agg(DISTINCT x) FROM jsonb_array_elements(warnings || $5::jsonb) x), '[]'::jsonb) WHERE tenant_id=$1 AND scan_id=$2`,
          [c.tenant, c.scanId, stored.id, JSON.stringify(report.counts), JSON.stringify(warnings)],
        );
        return { reportId: stored.id, counts: report.counts, findings: r.findings.length, warnings };
      } catch (e) {
        fail(e, 'advisory matching');
      }
    },

    /** Sign one statement type and store it; reuses an existing attestation of the same statement. */
    async scanAttest(
      c: ScanContext,
      type: AttestType,
      ids: { sbomId: string | null; reportId: string | null; finishedAt?: string },
    ): Promise<{ id: string; reused: boolean }> {
      try {
        const f = facts(c, ids);
        let statement;
        let attests: { id: string; relation?: string }[];
        if (type === 'sbom') {
          if (!ids.sbomId) throw badInput('no SBOM to attest');
          statement = sbomStatement(f, JSON.parse((await ctx.evidence.read(c.tenant, ids.sbomId)).toString('utf8')));
          attests = [{ id: ids.sbomId }];
        } else if (type === 'vuln') {
          if (!ids.reportId) throw badInput('no scan report to attest');
          statement = vulnStatement(f, JSON.parse((await ctx.evidence.read(c.tenant, ids.reportId)).toString('utf8')));
          attests = [{ id: ids.reportId }];
        } else {
          statement = provenanceStatement(f);
          attests = [ids.sbomId, ids.reportId].filter((x): x is string => !!x).map((id) => ({ id, relation: 'describes' }));
        }
        const r = await signAndStore(ctx, { tenant: c.tenant, statement, attests, scanId: c.scanId, actor: c.requestedBy });
        await ctx.db.query(
          `UPDATE scan_runs SET attestation_ids = CASE WHEN attestation_ids ? $3 THEN attestation_ids ELSE attestation_ids || jsonb_build_array($3::text) END WHERE tenant_id=$1 AND scan_id=$2`,
          [c.tenant, c.scanId, r.id],
        );
        return { id: r.id, reused: r.reused };
      } catch (e) {
        fail(e, `signing the ${type} attestation`);
      }
    },

    /** Final state of the run record (+ timeline event). Idempotent. */
    async scanFinish(a: {
      tenant: string;
      scanId: string;
      workflowId: string;
      input: ScanThenAttestInput;
      artifactDigest?: string;
      status: 'completed' | 'failed' | 'reused';
      error?: string;
      finishedAt?: string;
    }): Promise<ScanRun | null> {
      let r = await ctx.db.query(
        `UPDATE scan_runs SET status=$3, error=$4, finished_at=COALESCE(finished_at, $5::timestamptz, now()) WHERE tenant_id=$1 AND scan_id=$2 RETURNING *`,
        [a.tenant, a.scanId, a.status, a.error ?? null, a.finishedAt ?? null],
      );
      if (!r.rowCount && a.artifactDigest) {
        // Failed before the run was recorded (e.g. unknown image): still leave a record for `scanner jobs list`.
        r = await ctx.db.query(
          `INSERT INTO scan_runs (tenant_id, scan_id, workflow_id, artifact_digest, image_ref, trigger, requested_by, sbom_only, force, scanner_name, scanner_version, scan_time, status, error, finished_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,now(),$12,$13,now()) ON CONFLICT (tenant_id, scan_id) DO UPDATE SET status=EXCLUDED.status RETURNING *`,
          [
            a.tenant,
            a.scanId,
            a.workflowId,
            a.artifactDigest,
            a.input.imageRef ?? null,
            a.input.trigger ?? 'manual',
            a.input.requestedBy,
            !!a.input.sbomOnly,
            !!a.input.force,
            SCANNER.name,
            SCANNER.version,
            a.status,
            a.error ?? null,
          ],
        );
      }
      const run = r.rowCount ? runRow(r.rows[0]) : null;
      await timelineEvent(ctx.db, a.tenant, `scan.${a.status}`, run?.artifactDigest ?? a.artifactDigest ?? null, {
        scanId: a.scanId,
        ...(a.error ? { error: a.error } : {}),
        sbom: run?.sbomId ?? null,
        report: run?.reportId ?? null,
        counts: run?.counts ?? null,
      });
      return run;
    },
  };
  return acts;
}
