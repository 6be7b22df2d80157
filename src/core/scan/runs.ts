/** scan_runs: one replay-ready record per scanThenAttest run. The only module that runs SQL on it. */
import type { AppContext } from '../context';
import type { SeverityCounts } from '../../scanner/osv';
import type { ScanEngine } from './external';
import type { ReportCounts, ScanContext, ScanThenAttestInput } from './types';

export type { ReportCounts } from './types';

export type ScanRunStatus = 'running' | 'completed' | 'failed' | 'reused';

export type ScanRun = {
  scanId: string;
  workflowId: string;
  artifactDigest: string;
  imageRef: string | null;
  imagePath: string | null;
  imageFormat: string | null;
  trigger: string;
  requestedBy: string;
  sbomOnly: boolean;
  force: boolean;
  feedVersion: number | null;
  feedDigest: string | null;
  scanner: { name: string; version: string };
  scanTime: string;
  sbomId: string | null;
  reportId: string | null;
  attestationIds: string[];
  counts: ReportCounts | null;
  components: number | null;
  warnings: string[];
  status: ScanRunStatus;
  reusedFrom: string | null;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
};

interface ScanRunRow {
  scan_id: string;
  workflow_id: string;
  artifact_digest: string;
  image_ref: string | null;
  image_path: string | null;
  image_format: string | null;
  trigger: string;
  requested_by: string;
  sbom_only: boolean;
  force: boolean;
  feed_version: number | null;
  feed_digest: string | null;
  scanner_name: string;
  scanner_version: string;
  scan_time: Date | string;
  sbom_id: string | null;
  report_id: string | null;
  attestation_ids: string[] | null;
  counts: ReportCounts | null;
  components: number | null;
  warnings: string[] | null;
  status: ScanRunStatus;
  reused_from: string | null;
  error: string | null;
  started_at: Date | string;
  finished_at: Date | string | null;
}

function runRow(r: ScanRunRow): ScanRun {
  return {
    scanId: r.scan_id,
    workflowId: r.workflow_id,
    artifactDigest: r.artifact_digest,
    imageRef: r.image_ref,
    imagePath: r.image_path,
    imageFormat: r.image_format,
    trigger: r.trigger,
    requestedBy: r.requested_by,
    sbomOnly: r.sbom_only,
    force: r.force,
    feedVersion: r.feed_version,
    feedDigest: r.feed_digest,
    scanner: { name: r.scanner_name, version: r.scanner_version },
    scanTime: new Date(r.scan_time).toISOString(),
    sbomId: r.sbom_id,
    reportId: r.report_id,
    attestationIds: r.attestation_ids ?? [],
    counts: r.counts,
    components: r.components,
    warnings: r.warnings ?? [],
    status: r.status,
    reusedFrom: r.reused_from,
    error: r.error,
    startedAt: new Date(r.started_at).toISOString(),
    finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
  };
}

const one = (rows: ScanRunRow[]) => (rows[0] ? runRow(rows[0]) : null);

type Db = Pick<AppContext, 'db'>;

/** scan_runs.scanner_name carries the engine, so reuse never mixes SBOMs from different tools. */
export const scannerNameFor = (scannerName: string, engine: ScanEngine) => (engine === 'builtin' ? scannerName : `${scannerName}+${engine}`);
export const engineOf = (run: Pick<ScanRun, 'scanner'>): ScanEngine => (run.scanner.name.split('+')[1] as ScanEngine | undefined) ?? 'builtin';

export function reportCounts(c: SeverityCounts): ReportCounts {
  return { critical: c.critical, high: c.high, medium: c.medium, low: c.low, unknown: c.unknown, none: c.none };
}

export async function listScanRuns(ctx: Db, tenant: string, q: { artifact?: string; limit?: number }): Promise<ScanRun[]> {
  const params: unknown[] = [tenant];
  let where = 'tenant_id=$1';
  if (q.artifact) {
    params.push(q.artifact);
    where += ` AND artifact_digest=$${params.length}`;
  }
  params.push(Math.min(Math.max(q.limit ?? 50, 1), 500));
  const r = await ctx.db.query<ScanRunRow>(`SELECT * FROM scan_runs WHERE ${where} ORDER BY started_at DESC, scan_id LIMIT $${params.length}`, params);
  return r.rows.map(runRow);
}

export async function getScanRun(ctx: Db, tenant: string, scanId: string): Promise<ScanRun | null> {
  return one((await ctx.db.query<ScanRunRow>('SELECT * FROM scan_runs WHERE tenant_id=$1 AND scan_id=$2', [tenant, scanId])).rows);
}

/** The newest completed run over the same inputs (artifact, scanner, engine, feed), if any. */
export async function latestMatchingRun(
  ctx: Db,
  tenant: string,
  q: { artifactDigest: string; scannerName: string; scannerVersion: string; feedDigest: string | null; sbomOnly: boolean },
): Promise<ScanRun | null> {
  const r = await ctx.db.query<ScanRunRow>(
    `SELECT * FROM scan_runs WHERE tenant_id=$1 AND artifact_digest=$2 AND status='completed' AND scanner_version=$3
       AND feed_digest IS NOT DISTINCT FROM $4 AND (sbom_only = false OR $5) AND scanner_name=$6 ORDER BY finished_at DESC LIMIT 1`,
    [tenant, q.artifactDigest, q.scannerVersion, q.feedDigest, q.sbomOnly, q.scannerName],
  );
  return one(r.rows);
}

/**
 * The run `attest create` describes: the newest completed or reused run of the artifact; a
 * reused run produced nothing itself, so the run whose evidence it reused.
 */
export async function latestAttestableRun(ctx: Db, tenant: string, artifactDigest: string): Promise<ScanRun | null> {
  const r = await ctx.db.query<ScanRunRow>(
    `SELECT * FROM scan_runs WHERE tenant_id=$1 AND artifact_digest=$2 AND status IN ('completed','reused') ORDER BY finished_at DESC NULLS LAST LIMIT 1`,
    [tenant, artifactDigest],
  );
  const run = one(r.rows);
  if (run?.status === 'reused' && run.reusedFrom) return (await getScanRun(ctx, tenant, run.reusedFrom)) ?? run;
  return run;
}

/** A path an earlier scan read the artifact from (for digests the catalogue does not know). */
export async function lastImagePath(ctx: Db, tenant: string, artifactDigest: string): Promise<{ path: string; ref: string | null } | null> {
  const r = await ctx.db.query<{ image_path: string; image_ref: string | null }>(
    `SELECT image_path, image_ref FROM scan_runs WHERE tenant_id=$1 AND artifact_digest=$2 AND image_path IS NOT NULL ORDER BY started_at DESC LIMIT 1`,
    [tenant, artifactDigest],
  );
  const row = r.rows[0];
  return row ? { path: row.image_path, ref: row.image_ref } : null;
}

/** Records a run (idempotent by scan id); a reused run is recorded finished, pointing at what it reused. */
export async function insertRun(ctx: Db, c: ScanContext, scanner: { name: string; version: string }, reuse: ScanRun | null): Promise<void> {
  const full = reuse && !c.sbomOnly;
  await ctx.db.query(
    `INSERT INTO scan_runs (tenant_id, scan_id, workflow_id, artifact_digest, image_ref, image_path, image_format, trigger, requested_by, sbom_only, force,
       feed_version, feed_digest, scanner_name, scanner_version, scan_time, status, reused_from, sbom_id, report_id, attestation_ids, counts, components)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23)
     ON CONFLICT (tenant_id, scan_id) DO NOTHING`,
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
      scannerNameFor(scanner.name, c.engine ?? 'builtin'),
      scanner.version,
      c.scanTime,
      reuse ? 'reused' : 'running',
      reuse?.scanId ?? null,
      reuse?.sbomId ?? null,
      full ? reuse.reportId : null,
      JSON.stringify(full ? reuse.attestationIds : []),
      full ? JSON.stringify(reuse.counts) : null,
      reuse?.components ?? null,
    ],
  );
  if (reuse) await ctx.db.query('UPDATE scan_runs SET finished_at=now() WHERE tenant_id=$1 AND scan_id=$2', [c.tenant, c.scanId]);
}

export async function recordSbom(ctx: Db, tenant: string, scanId: string, s: { sbomId: string; components: number; warnings: string[] }): Promise<void> {
  await ctx.db.query('UPDATE scan_runs SET sbom_id=$3, components=$4, warnings=$5 WHERE tenant_id=$1 AND scan_id=$2', [
    tenant,
    scanId,
    s.sbomId,
    s.components,
    JSON.stringify(s.warnings),
  ]);
}

/** Sets the report and merges its warnings into the run's (deduplicated). */
export async function recordReport(ctx: Db, tenant: string, scanId: string, s: { reportId: string; counts: ReportCounts; warnings: string[] }): Promise<void> {
  await ctx.db.query(
    `UPDATE scan_runs SET report_id=$3, counts=$4, warnings = COALESCE((SELECT jsonb_agg(DISTINCT x) FROM jsonb_array_elements(warnings || $5::jsonb) x), '[]'::jsonb) WHERE tenant_id=$1 AND scan_id=$2`,
    [tenant, scanId, s.reportId, JSON.stringify(s.counts), JSON.stringify(s.warnings)],
  );
}

/** Adds an attestation id to the run once (a retried step may add the same id again). */
export async function recordAttestation(ctx: Db, tenant: string, scanId: string, attestationId: string): Promise<void> {
  await ctx.db.query(
    `UPDATE scan_runs SET attestation_ids = CASE WHEN attestation_ids ? $3 THEN attestation_ids ELSE attestation_ids || jsonb_build_array($3::text) END WHERE tenant_id=$1 AND scan_id=$2`,
    [tenant, scanId, attestationId],
  );
}

export interface FinishRun {
  tenant: string;
  scanId: string;
  workflowId: string;
  input: ScanThenAttestInput;
  artifactDigest?: string;
  status: 'completed' | 'failed' | 'reused';
  error?: string;
  finishedAt?: string;
}

/**
 * Final state of the run (idempotent). A run that failed before it was recorded (e.g. an
 * unknown image) still gets a row when its artifact is known, for `scanner jobs list`.
 */
export async function finishRun(ctx: Db, a: FinishRun, scanner: { name: string; version: string }): Promise<ScanRun | null> {
  const r = await ctx.db.query<ScanRunRow>(
    `UPDATE scan_runs SET status=$3, error=$4, finished_at=COALESCE(finished_at, $5::timestamptz, now()) WHERE tenant_id=$1 AND scan_id=$2 RETURNING *`,
    [a.tenant, a.scanId, a.status, a.error ?? null, a.finishedAt ?? null],
  );
  if (r.rowCount || !a.artifactDigest) return one(r.rows);
  const ins = await ctx.db.query<ScanRunRow>(
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
      scanner.name,
      scanner.version,
      a.status,
      a.error ?? null,
    ],
  );
  return one(ins.rows);
}
