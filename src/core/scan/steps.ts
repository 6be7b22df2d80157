/**
 * The steps of scanThenAttest (each one activity): prepare → SBOM → match → attest → finish.
 * Every step is idempotent: the run row is keyed by scan id, ingest is idempotent by digest and
 * the scan time is fixed by the workflow, so a retried step rebuilds the same bytes.
 */
import type { AppContext } from '../context';
import { timelineEvent } from '../audit';
import { canonicalJson } from '../../lib/canonical';
import { spdxBytes, spdxFromResult } from '../../scanner/spdx';
import { badInput, integrity } from '../../lib/errors';
import { countPresent } from '../evidence/queries/scan';
import type { AttestType, ScanFacts } from '../attest/attest';
import { createAttestation } from '../attest/create';
import { resolveImage } from './catalogue';
import { scanImageSource } from './registry';
import { scannerEngine } from './config';
import { SCANNER, buildReport, readInventory, resultFromInventory, toStellaError, type ScanInventory } from './engine';
import { getInventory, saveInventory } from './inventory';
import { feedByDigest, latestFeed, loadFeedSnapshot } from './feeds';
import {
  engineOf,
  finishRun,
  getScanRun,
  insertRun,
  latestMatchingRun,
  recordAttestation,
  recordReport,
  recordSbom,
  reportCounts,
  scannerNameFor,
  type FinishRun,
  type ScanRun,
} from './runs';
import type { ReportCounts, ScanContext, ScanThenAttestInput } from './types';

export const SBOM_MEDIA_TYPE = 'application/vnd.cyclonedx+json';
export const SPDX_MEDIA_TYPE = 'application/spdx+json';
export const REPORT_MEDIA_TYPE = 'application/json';

/** Options a long step gets from its runner: aborting kills an external tool it started. */
export interface StepOptions {
  signal?: AbortSignal;
}

/** Rethrows scanner and file-system errors as StellaErrors naming what failed. */
async function mapped<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toStellaError(e, what);
  }
}

/** The context of a run already recorded (a retried prepare after the row was written). */
async function contextOfRecorded(ctx: AppContext, tenant: string, r: ScanRun): Promise<ScanContext> {
  const f = r.feedDigest ? await feedByDigest(ctx, tenant, r.feedDigest) : null;
  return {
    tenant,
    scanId: r.scanId,
    workflowId: r.workflowId,
    artifactDigest: r.artifactDigest,
    imagePath: r.imagePath ?? '',
    imageRef: r.imageRef,
    imageFormat: r.imageFormat ?? '',
    trigger: r.trigger,
    requestedBy: r.requestedBy,
    sbomOnly: r.sbomOnly,
    force: r.force,
    scanTime: r.scanTime,
    feed: r.feedDigest && r.feedVersion !== null && f ? { version: r.feedVersion, digest: r.feedDigest, records: f.records, importedAt: f.importedAt } : null,
    engine: engineOf(r),
  };
}

/** A completed earlier run over the same inputs whose evidence is all still present. */
async function reusableRun(ctx: AppContext, c: ScanContext): Promise<ScanRun | null> {
  const prev = await latestMatchingRun(ctx, c.tenant, {
    artifactDigest: c.artifactDigest,
    scannerName: scannerNameFor(SCANNER.name, c.engine ?? 'builtin'),
    scannerVersion: SCANNER.version,
    feedDigest: c.feed?.digest ?? null,
    sbomOnly: c.sbomOnly,
  });
  if (!prev) return null;
  const ids = [prev.sbomId, ...(c.sbomOnly ? [] : [prev.reportId, ...prev.attestationIds])].filter((x): x is string => !!x);
  return ids.length && (await countPresent(ctx.db, c.tenant, ids)) === ids.length ? prev : null;
}

/**
 * Resolve the image (catalogue name, path or digest) and pin the feed version, then record
 * the run. Without force, a completed earlier run over the same inputs whose evidence is
 * still present is returned as `reuse` instead of scanning again.
 */
export async function prepareScan(
  ctx: AppContext,
  input: ScanThenAttestInput & { scanId: string; workflowId: string; scanTime: string },
): Promise<{ ctx: ScanContext; reuse: ScanRun | null }> {
  return mapped('scan', async () => {
    const recorded = await getScanRun(ctx, input.tenant, input.scanId);
    const insecure = input.insecureRegistry ? { insecureRegistry: true } : {};
    const spdx = input.sbomFormat === 'spdx' ? { sbomFormat: 'spdx' as const } : {};
    if (recorded) return { ctx: { ...(await contextOfRecorded(ctx, input.tenant, recorded)), ...insecure, ...spdx }, reuse: null };
    const ref = input.imageRef ?? input.artifactDigest;
    if (!ref) throw badInput('scanThenAttest needs imageRef or artifactDigest');
    const img = await resolveImage(ctx, input.tenant, ref, { insecure: !!input.insecureRegistry });
    if (input.artifactDigest && img.digest !== input.artifactDigest)
      throw badInput(`image ${ref} is ${img.digest}, not the requested artifact ${input.artifactDigest}`);
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
      ...insecure,
      ...spdx,
    };
    // An SPDX document is stored by the SBOM step, so a run asking for one scans (from the stored inventory) rather than reusing.
    const reuse = input.force || c.sbomFormat === 'spdx' ? null : await reusableRun(ctx, c);
    await insertRun(ctx, c, SCANNER, reuse);
    return { ctx: c, reuse };
  });
}

/**
 * The run's inventory: stored once per image digest and scanner (name incl. engine, version),
 * so the image is read at most once however many steps, retries and runs need it.
 */
async function inventoryOf(ctx: AppContext, c: ScanContext, opts: StepOptions): Promise<ScanInventory> {
  const key = {
    tenant: c.tenant,
    artifactDigest: c.artifactDigest,
    scannerName: scannerNameFor(SCANNER.name, c.engine ?? 'builtin'),
    scannerVersion: SCANNER.version,
  };
  // Not even --force reads again: the same image and scanner version yield the same inventory.
  const stored = await getInventory(ctx, key);
  if (stored) return stored;
  // A path on the worker's disk, or the pinned registry reference (layers streamed, through the layer cache when set).
  const inv = await readInventory(scanImageSource(ctx, c), { expectedDigest: c.artifactDigest, engine: c.engine, label: c.imageRef ?? c.imagePath, ...opts });
  return (await saveInventory(ctx, key, inv)) as ScanInventory;
}

/**
 * Scan the image into a CycloneDX SBOM and store it; with `--sbom-format spdx` also store the same
 * inventory as an SPDX 2.3 JSON document (derived from the CycloneDX SBOM, which stays the one the
 * report and attestations name). Same scan time → same bytes → idempotent ingest.
 */
export async function storeSbom(
  ctx: AppContext,
  c: ScanContext,
  opts: StepOptions = {},
): Promise<{ sbomId: string; spdxId?: string; components: number; packages: number; warnings: string[]; created: boolean }> {
  return mapped(`scan of ${c.imageRef ?? c.imagePath}`, async () => {
    const r = resultFromInventory(await inventoryOf(ctx, c, opts), { now: c.scanTime });
    const components = r.sbom.components.length;
    const stored = await ctx.evidence.ingest({
      tenant: c.tenant,
      data: r.sbomBytes,
      kind: 'sbom',
      mediaType: SBOM_MEDIA_TYPE,
      subjects: [c.artifactDigest],
      producer: { type: 'scanner', name: SCANNER.name, version: SCANNER.version, scanId: c.scanId, workflowId: c.workflowId },
      labels: { 'stella.scan-id': c.scanId, 'stella.sbom-format': 'CycloneDX-1.6' },
      // Made by stella's scanner in its scan-then-attest workflow (signed by the attestations that follow).
      provenance: { kind: 'produced-by-stella', signer: null },
    });
    let spdxId: string | undefined;
    if (c.sbomFormat === 'spdx') {
      const doc = spdxFromResult(r);
      const spdx = await ctx.evidence.ingest({
        tenant: c.tenant,
        data: spdxBytes(doc),
        kind: 'sbom',
        mediaType: SPDX_MEDIA_TYPE,
        subjects: [c.artifactDigest],
        parents: [{ id: stored.id, relation: 'derived-from' }],
        producer: { type: 'scanner', name: SCANNER.name, version: SCANNER.version, scanId: c.scanId, workflowId: c.workflowId },
        labels: { 'stella.scan-id': c.scanId, 'stella.sbom-format': 'SPDX-2.3' },
        provenance: { kind: 'produced-by-stella', signer: null },
      });
      spdxId = spdx.id;
    }
    const warnings = r.warnings.slice(0, 100);
    await recordSbom(ctx, c.tenant, c.scanId, { sbomId: stored.id, components, warnings });
    return { sbomId: stored.id, ...(spdxId ? { spdxId } : {}), components, packages: r.packages.length, warnings, created: stored.created };
  });
}

/**
 * Match against the pinned feed snapshot and store the report (parent: the SBOM). Matching
 * reads the stored inventory the SBOM step built (the image is not read again); the SBOM it
 * yields must be the one stored.
 */
export async function storeReport(
  ctx: AppContext,
  c: ScanContext,
  sbomId: string,
  opts: StepOptions = {},
): Promise<{ reportId: string; counts: ReportCounts; findings: number; warnings: string[] }> {
  return mapped('advisory matching', async () => {
    const warnings: string[] = [];
    const feed = c.feed ? await loadFeedSnapshot(ctx, c.feed.digest) : undefined;
    if (!feed) warnings.push('no advisory feed imported: findings not evaluated, counts are 0 (stella feeds import <dir|zip>)');
    const r = resultFromInventory(await inventoryOf(ctx, c, opts), { now: c.scanTime, ...(feed ? { feed } : {}) });
    if (r.sbomDigest !== sbomId) throw integrity(`image ${c.imageRef ?? c.imagePath} no longer yields SBOM ${sbomId} (got ${r.sbomDigest}); re-run the scan`);
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
      provenance: { kind: 'produced-by-stella', signer: null },
    });
    await recordReport(ctx, c.tenant, c.scanId, { reportId: stored.id, counts: report.counts, warnings });
    return { reportId: stored.id, counts: report.counts, findings: r.findings.length, warnings };
  });
}

/** What a run's statements say about it (all recorded inputs: retries rebuild identical statements). */
export function scanFacts(c: ScanContext, ids: { sbomId: string | null; reportId: string | null; finishedAt?: string }): ScanFacts {
  return {
    scanId: c.scanId,
    artifactDigest: c.artifactDigest,
    imageRef: c.imageRef,
    trigger: c.trigger,
    requestedBy: c.requestedBy,
    scanTime: c.scanTime,
    ...(ids.finishedAt ? { finishedAt: ids.finishedAt } : {}),
    scanner: SCANNER,
    feed: c.feed ? { version: c.feed.version, digest: c.feed.digest, importedAt: c.feed.importedAt } : null,
    sbomId: ids.sbomId,
    reportId: ids.reportId,
  };
}

/** Sign one statement type for the run (the one attestation path) and record it on the run. */
export async function attestRun(
  ctx: AppContext,
  c: ScanContext,
  type: AttestType,
  ids: { sbomId: string | null; reportId: string | null; finishedAt?: string },
): Promise<{ id: string; reused: boolean }> {
  return mapped(`signing the ${type} attestation`, async () => {
    const r = await createAttestation(ctx, { tenant: c.tenant, type, facts: scanFacts(c, ids), actor: c.requestedBy, scanId: c.scanId });
    await recordAttestation(ctx, c.tenant, c.scanId, r.id);
    return { id: r.id, reused: r.reused };
  });
}

/** Final state of the run record (+ timeline event). Idempotent. */
export async function finishScan(ctx: AppContext, a: FinishRun): Promise<ScanRun | null> {
  const run = await finishRun(ctx, a, SCANNER);
  await timelineEvent(ctx.db, a.tenant, `scan.${a.status}`, run?.artifactDigest ?? a.artifactDigest ?? null, {
    scanId: a.scanId,
    ...(a.error ? { error: a.error } : {}),
    sbom: run?.sbomId ?? null,
    report: run?.reportId ?? null,
    counts: run?.counts ?? null,
  });
  return run;
}
