import { ENGINES, type ScanEngine } from './external';
import type { AppContext } from '../context';
import { badInput } from '../../lib/errors';
import type { Finding, SeverityCounts } from '../../scanner/osv';

/** scan_runs: one replay-ready record per scanThenAttest run. */

export interface ScanRun {
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
  status: 'running' | 'completed' | 'failed' | 'reused';
  reusedFrom: string | null;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
}

export function runRow(r: Record<string, any>): ScanRun {
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

export async function listScanRuns(ctx: AppContext, tenant: string, q: { artifact?: string; limit?: number }): Promise<ScanRun[]> {
  const params: unknown[] = [tenant];
  let where = 'tenant_id=$1';
  if (q.artifact) {
    params.push(q.artifact);
    where += ` AND artifact_digest=$${params.length}`;
  }
  params.push(Math.min(Math.max(q.limit ?? 50, 1), 500));
  const r = await ctx.db.query(`SELECT * FROM scan_runs WHERE ${where} ORDER BY started_at DESC, scan_id LIMIT $${params.length}`, params);
  return r.rows.map(runRow);
}

export async function getScanRun(ctx: AppContext, tenant: string, scanId: string): Promise<ScanRun | null> {
  const r = await ctx.db.query('SELECT * FROM scan_runs WHERE tenant_id=$1 AND scan_id=$2', [tenant, scanId]);
  return r.rowCount ? runRow(r.rows[0]) : null;
}

// ---------------------------------------------------------------------------------------
// Report

export type ReportCounts = { critical: number; high: number; medium: number; low: number; unknown: number; none: number };

export const REPORT_SCHEMA = 'https://stella.dev/schemas/scan-report/v1';

export function reportCounts(c: SeverityCounts): ReportCounts {
  return { critical: c.critical, high: c.high, medium: c.medium, low: c.low, unknown: c.unknown, none: c.none };
}

export interface ScanReport {
  schema: string;
  scanId: string;
  artifact: string;
  imageRef: string | null;
  sbom: string;
  scanner: { name: string; version: string };
  /** 'none' when no feed was imported: counts are then 0 and `warnings` says so. */
  feed: { version: number; digest: string; records: number } | 'none';
  feedDigest: string | null;
  scannedAt: string;
  packages: number;
  counts: ReportCounts;
  warnings: string[];
  findings: Finding[];
}

// ---------------------------------------------------------------------------------------
// Scanner config (settings key scanner.auto_scan)

export const AUTO_SCAN_KEY = 'scanner.auto_scan';
export const TRIGGERS = ['push', 'promote', 'manual'] as const;
export interface AutoScanConfig {
  enabled: boolean;
  triggers: string[];
}
const DEFAULT_AUTO: AutoScanConfig = { enabled: false, triggers: [] };

export async function autoScanConfig(ctx: AppContext, tenant: string): Promise<AutoScanConfig> {
  const r = await ctx.db.query('SELECT value FROM settings WHERE tenant_id=$1 AND key=$2', [tenant, AUTO_SCAN_KEY]);
  return { ...DEFAULT_AUTO, ...(r.rows[0]?.value ?? {}) };
}

export const ENGINE_KEY = 'scanner.engine';

/** Which tool lists an image's packages: the built-in scanner unless syft/trivy is chosen. */
export async function scannerEngine(ctx: AppContext, tenant: string): Promise<ScanEngine> {
  const r = await ctx.db.query('SELECT value FROM settings WHERE tenant_id=$1 AND key=$2', [tenant, ENGINE_KEY]);
  return (r.rows[0]?.value?.engine as ScanEngine | undefined) ?? 'builtin';
}

/** `auto_scan.enabled true|false`, `auto_scan.triggers "push,promote"`, `engine builtin|syft|trivy`. */
export async function setScannerConfig(ctx: AppContext, tenant: string, key: string, value: string): Promise<AutoScanConfig> {
  const cur = await autoScanConfig(ctx, tenant);
  let next: AutoScanConfig;
  if (key === 'engine') {
    if (!(ENGINES as readonly string[]).includes(value)) throw badInput(`engine must be one of ${ENGINES.join(', ')}, got ${JSON.stringify(value)}`);
    await ctx.db.query(
      `INSERT INTO settings (tenant_id, key, value) VALUES ($1,$2,$3) ON CONFLICT (tenant_id, key) DO UPDATE SET value=EXCLUDED.value, updated_at=now()`,
      [tenant, ENGINE_KEY, JSON.stringify({ engine: value })],
    );
    return cur;
  }
  if (key === 'auto_scan.enabled') {
    if (!['true', 'false'].includes(value)) throw badInput(`auto_scan.enabled must be true or false, got ${JSON.stringify(value)}`);
    next = { ...cur, enabled: value === 'true' };
  } else if (key === 'auto_scan.triggers') {
    const list = [
      ...new Set(
        value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    ];
    const bad = list.filter((t) => !(TRIGGERS as readonly string[]).includes(t));
    if (bad.length) throw badInput(`unknown trigger(s) ${bad.join(', ')}: expected a comma list of ${TRIGGERS.join(', ')}`);
    next = { ...cur, triggers: list };
  } else throw badInput(`unknown scanner setting ${JSON.stringify(key)}: expected auto_scan.enabled, auto_scan.triggers or engine`);
  await ctx.db.query(
    `INSERT INTO settings (tenant_id, key, value) VALUES ($1,$2,$3) ON CONFLICT (tenant_id, key) DO UPDATE SET value=EXCLUDED.value, updated_at=now()`,
    [tenant, AUTO_SCAN_KEY, JSON.stringify(next)],
  );
  return next;
}
