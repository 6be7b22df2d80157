/**
 * `stella scan explain <finding>`: why a finding is in an artifact's newest scan report — the
 * package and installed version, the advisory and the range of it that matched (from the exact
 * feed snapshot the scan used), the fixed version, and the VEX statements a promotion's
 * vulnerability gate would apply to it (promotion judges the signers).
 */
import { badInput, notFound } from '../../lib/errors';
import { explainMatch, type MatchExplanation } from '../../scanner/osv';
import { ScanReportSchema } from '../../scanner/scan';
import { purlMatches } from '../../scanner/vex';
import type { AppContext } from '../context';
import { type FindingVex, vexForFindings } from '../promotion/queries/scan';
import { loadFeedSnapshot } from './feeds';

export type FindingExplanation = {
  /** `<advisory>@<purl>`: names one finding of a report. */
  findingId: string;
  artifact: string;
  reportId: string;
  scannedAt: string;
  package: { ecosystem: string; name: string; version: string; purl: string };
  installedVersion: string;
  fixedVersion: string | null;
  severity: string;
  score: number | null;
  advisory: { id: string; aliases: string[]; summary: string; ecosystem: string; name: string };
  feed: { digest: string; count: number } | null;
  /** The advisory's ranges for the package, with the one(s) that contain the version; null when the feed snapshot is gone. */
  match: MatchExplanation | null;
  vex: FindingVex;
};

export interface ExplainQuery {
  artifact: string;
  /** An advisory id or alias (CVE-…, GHSA-…, DSA-…), or a finding id `<advisory>@<purl>`. */
  finding: string;
  /** A package name or purl, to pick one of several findings of the advisory. */
  package?: string;
  /** Judge VEX with this environment's promotion policy (default: the built-in policy). */
  env?: string;
}

export async function explainFinding(ctx: AppContext, tenant: string, q: ExplainQuery): Promise<{ items: FindingExplanation[] }> {
  if (!/^sha256:[0-9a-f]{64}$/.test(q.artifact)) throw badInput(`artifact must be a sha256 digest (sha256:<64 hex>), got ${JSON.stringify(q.artifact)}`);
  const at = q.finding.indexOf('@pkg:');
  const advisory = at === -1 ? q.finding : q.finding.slice(0, at);
  const pkg = at === -1 ? q.package : q.finding.slice(at + 1);
  if (!advisory) throw badInput('finding must name an advisory (e.g. CVE-2024-1234) or a finding id <advisory>@<purl>');
  const run = await ctx.db.query(
    `SELECT report_id FROM scan_runs WHERE tenant_id=$1 AND artifact_digest=$2 AND report_id IS NOT NULL ORDER BY started_at DESC LIMIT 1`,
    [tenant, q.artifact],
  );
  const reportId: string | undefined = run.rows[0]?.report_id;
  if (!reportId) throw notFound(`no scan report for ${q.artifact}; run stella scan image first`);
  const parsed = ScanReportSchema.safeParse(JSON.parse((await ctx.evidence.read(tenant, reportId)).toString('utf8')));
  if (!parsed.success) throw notFound(`scan report ${reportId} for ${q.artifact} is not a stella scan report`);
  const report = parsed.data;
  const matchesPkg = (f: (typeof report.findings)[number]) =>
    !pkg || f.package.name === pkg || f.package.purl === pkg || (pkg.startsWith('pkg:') && purlMatches(pkg, f.package.purl).match);
  const findings = report.findings.filter((f) => (f.id === advisory || f.aliases.includes(advisory)) && matchesPkg(f));
  if (!findings.length)
    throw notFound(
      `no finding ${advisory}${pkg ? ` in ${pkg}` : ''} in scan report ${reportId} of ${q.artifact} (${report.findings.length} finding(s); the report lists them)`,
    );
  const feed = report.feed ? await loadFeedSnapshot(ctx, report.feed.digest).catch(() => null) : null;
  const vex = await vexForFindings(
    ctx,
    tenant,
    q.artifact,
    findings.map((f) => ({ id: f.id, aliases: f.aliases, purl: f.package.purl })),
    q.env,
  );
  const items = findings.map((f, i): FindingExplanation => {
    const record = feed?.records.find((r) => r.id === f.id);
    return {
      findingId: `${f.id}@${f.package.purl}`,
      artifact: q.artifact,
      reportId,
      scannedAt: report.scannedAt,
      package: f.package,
      installedVersion: f.installedVersion,
      fixedVersion: f.fixedVersion ?? null,
      severity: f.severity,
      score: f.score ?? null,
      advisory: { id: f.id, aliases: f.aliases, summary: f.summary, ecosystem: f.advisory.ecosystem, name: f.advisory.name },
      feed: report.feed,
      match: record ? explainMatch(record, f.advisory, f.installedVersion, f.package.ecosystem) : null,
      vex: vex[i]!,
    };
  });
  return { items };
}
