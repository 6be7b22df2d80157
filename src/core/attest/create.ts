/**
 * The one way stella creates an attestation: build the statement of a type from scan facts
 * (reading the SBOM or report it describes), sign it, store it with edges to what it attests.
 * The scan workflow's attest step and `attest create` (API) both call createAttestation.
 */
import type { AppContext } from '../context';
import { audit } from '../audit';
import { badInput, notFound, StellaError } from '../../lib/errors';
import type { Statement } from '../../crypto/intoto';
import { latestPresentItem, countPresent } from '../evidence/queries/scan';
import { imageRefFor } from '../scan/catalogue';
import { SCANNER } from '../scan/engine';
import { feedByDigest } from '../scan/feeds';
import { latestAttestableRun } from '../scan/runs';
import {
  ATTEST_TYPES,
  provenanceStatement,
  sbomStatement,
  signAndStore,
  vulnStatement,
  type AttestType,
  type ScanFacts,
  type StoredAttestation,
} from './attest';

export type CreatedAttestation = StoredAttestation & {
  type: AttestType;
  /** Evidence items the attestation has edges to. */
  attests: string[];
};

async function readJson<T>(ctx: AppContext, tenant: string, id: string): Promise<T> {
  return JSON.parse((await ctx.evidence.read(tenant, id)).toString('utf8')) as T;
}

/** The statement of `type` about the facts, and the items it attests (with the edge relation). */
async function statementFor(
  ctx: AppContext,
  tenant: string,
  type: AttestType,
  f: ScanFacts,
): Promise<{ statement: Statement; attests: { id: string; relation?: string }[] }> {
  if (type === 'sbom') {
    if (!f.sbomId) throw badInput('no SBOM to attest');
    return { statement: sbomStatement(f, await readJson(ctx, tenant, f.sbomId)), attests: [{ id: f.sbomId }] };
  }
  if (type === 'vuln') {
    if (!f.reportId) throw badInput('no scan report to attest');
    return { statement: vulnStatement(f, await readJson(ctx, tenant, f.reportId)), attests: [{ id: f.reportId }] };
  }
  const ids = [f.sbomId, f.reportId].filter((x): x is string => !!x);
  return { statement: provenanceStatement(f), attests: ids.map((id) => ({ id, relation: 'describes' })) };
}

/**
 * Sign and store the `type` statement about a scan's facts; an attestation of the identical
 * statement already present is returned instead (reused), so retries never duplicate.
 */
export async function createAttestation(
  ctx: AppContext,
  a: { tenant: string; type: AttestType; facts: ScanFacts; actor: string; scanId?: string },
): Promise<CreatedAttestation> {
  const { statement, attests } = await statementFor(ctx, a.tenant, a.type, a.facts);
  // Stella's own output only when a scan run made every item it attests; otherwise it is a
  // claim signed by stella's key over evidence stella did not produce (provenance 'signed').
  const items = await Promise.all(attests.map((x) => ctx.evidence.find(a.tenant, x.id)));
  const ownOutput = !!a.scanId && items.length > 0 && items.every((i) => i?.provenance === 'produced-by-stella');
  const r = await signAndStore(ctx, { tenant: a.tenant, statement, attests, actor: a.actor, ownOutput, ...(a.scanId ? { scanId: a.scanId } : {}) });
  return { ...r, type: a.type, attests: attests.map((x) => x.id) };
}

/**
 * Facts for attesting an artifact on demand: its latest scan run (whose items are used while
 * still present), else the newest present SBOM / report. Without a run the provenance
 * describes this request; with one it describes the scan (deterministic, so repeats reuse it).
 */
export async function gatherSubjectFacts(
  ctx: AppContext,
  tenant: string,
  subject: string,
  actor: string,
): Promise<{ facts: ScanFacts; scanId: string | null }> {
  const run = await latestAttestableRun(ctx, tenant, subject);
  const present = async (id: string | null | undefined) => (id ? (await countPresent(ctx.db, tenant, [id])) === 1 : false);
  const sbomId = run?.sbomId && (await present(run.sbomId)) ? run.sbomId : await latestPresentItem(ctx.db, tenant, subject, 'sbom');
  const reportId = run?.reportId && (await present(run.reportId)) ? run.reportId : await latestPresentItem(ctx.db, tenant, subject, 'scan-report');
  const imageRef = run?.imageRef ?? (await imageRefFor(ctx, tenant, subject));
  const feed = run?.feedDigest ? await feedByDigest(ctx, tenant, run.feedDigest) : null;
  const now = new Date().toISOString();
  const facts: ScanFacts = {
    scanId: run?.scanId ?? `attest-${now}`,
    artifactDigest: subject,
    imageRef,
    trigger: run?.trigger ?? 'manual',
    requestedBy: run?.requestedBy ?? actor,
    scanTime: run?.scanTime ?? now,
    ...(run?.finishedAt ? { finishedAt: run.finishedAt } : {}),
    scanner: run?.scanner ?? SCANNER,
    feed: run?.feedDigest && run.feedVersion !== null && feed ? { version: run.feedVersion, digest: run.feedDigest, importedAt: feed.importedAt } : null,
    sbomId,
    reportId,
  };
  return { facts, scanId: run?.scanId ?? null };
}

/** `stella attest create`: attest an artifact from what is stored about it (audited). */
export async function attestSubject(
  ctx: AppContext,
  tenant: string,
  req: { subject: string; type: AttestType; actor: string },
): Promise<CreatedAttestation & { subject: string; scanId: string | null }> {
  const { facts, scanId } = await gatherSubjectFacts(ctx, tenant, req.subject, req.actor);
  const shown = facts.imageRef ?? req.subject;
  // Provenance comes from the builder. Stella builds nothing; the only provenance it can vouch
  // for is that of its own scan-then-attest run, so without one the request is refused.
  if (req.type === 'slsa-provenance' && !scanId)
    throw new StellaError(
      'CONFLICT',
      `stella did not build or scan ${req.subject}: SLSA provenance comes from the builder; import the builder's signed provenance (stella attest import <provenance.dsse.json>) or run stella scan image --image ${shown} for stella's scan provenance; nothing signed`,
    );
  if (req.type === 'sbom' && !facts.sbomId)
    throw notFound(`no SBOM stored for ${req.subject}; generate one first: stella scan image --image ${shown} --sbom-only`);
  if (req.type === 'vuln' && !facts.reportId) throw notFound(`no scan report stored for ${req.subject}; run: stella scan image --image ${shown}`);
  const r = await createAttestation(ctx, { tenant, type: req.type, facts, actor: req.actor, ...(scanId ? { scanId } : {}) });
  await audit(ctx.db, {
    tenant,
    actor: req.actor,
    action: 'attestation.create',
    target: r.id,
    details: { subject: req.subject, type: req.type, predicateType: ATTEST_TYPES[req.type], kid: r.kid, reused: r.reused },
  });
  return { ...r, subject: req.subject, scanId };
}
