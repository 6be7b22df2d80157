import { imageRefFor } from '../scan/catalogue';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AppContext } from '../context';
import type { KeyStore } from '../../crypto/keys';
import { exportRootPack, rootPackResolver, type RootPack } from '../../crypto/rootpack';
import { verifyStatement, statementFromEnvelope, SLSA_PROVENANCE_V1, CYCLONEDX_BOM, VULNS_V02 } from '../../crypto/intoto';
import { parseDuration } from '../../config';
import { SIGNING_PURPOSE } from '../keys';
import type { GateResult, MissingEvidence } from './types';
import type { PromotionPolicy, Requirement } from './policy';

/**
 * Gate evaluation: for each requirement of the policy, find the newest present evidence for
 * the artifact that satisfies it. Missing, stale or untrusted evidence makes the gate fail
 * with `missing` (and the command that produces it); evidence that is present but violates
 * the policy (critical findings) fails with `violation`, since regenerating it won't help.
 */

interface Candidate {
  id: string;
  kind: string;
  mediaType: string;
  predicateType: string | null;
  createdAt: Date;
  size: number;
}

export interface GateContext {
  tenant: string;
  artifactDigest: string;
  imageRef: string | null;
  policy: PromotionPolicy;
  now?: Date;
  /** Trust anchor for attestation signatures; exported from ctx.keys when omitted. */
  rootPack?: RootPack;
}

const MAX_JSON_BYTES = 16 * 1024 * 1024;

/** The `stella attest create --type` value that produces an attestation of this predicate type. */
export function attestType(predicateType: string): string {
  if (predicateType === SLSA_PROVENANCE_V1) return 'slsa-provenance';
  if (predicateType === CYCLONEDX_BOM || predicateType.startsWith(`${CYCLONEDX_BOM}/v`)) return 'sbom';
  if (predicateType === VULNS_V02) return 'vuln';
  return predicateType;
}

export function commandFor(req: Requirement, digest: string, imageRef: string | null, stale = false): MissingEvidence {
  const ref = imageRef ?? digest;
  switch (req.kind) {
    case 'sbom':
      return { kind: 'sbom', command: `stella scan image --image ${ref} --sbom-only${stale ? ' --force' : ''}` };
    case 'scan-report':
      return { kind: 'scan-report', command: `stella scan image --image ${ref}${stale ? ' --force' : ''}` };
    case 'attestation':
      return {
        kind: 'attestation',
        predicateType: req.predicateType,
        command: `stella attest create --subject ${digest} --type ${attestType(req.predicateType)}`,
      };
  }
}

async function candidates(ctx: AppContext, tenant: string, artifact: string): Promise<Candidate[]> {
  const r = await ctx.db.query(
    `SELECT i.id, i.kind, i.media_type, i.predicate_type, i.created_at, i.size_bytes FROM evidence_items i
     JOIN evidence_subjects s ON s.tenant_id=i.tenant_id AND s.item_id=i.id
     WHERE i.tenant_id=$1 AND s.artifact_digest=$2 AND i.state='present' AND i.kind IN ('sbom','scan-report','attestation')
     ORDER BY i.created_at DESC, i.id`,
    [tenant, artifact],
  );
  return r.rows.map((x) => ({
    id: x.id,
    kind: x.kind,
    mediaType: x.media_type,
    predicateType: x.predicate_type,
    createdAt: new Date(x.created_at),
    size: Number(x.size_bytes),
  }));
}

async function readJson(ctx: AppContext, tenant: string, c: Candidate): Promise<unknown> {
  if (c.size > MAX_JSON_BYTES) throw new Error(`${c.id} is ${c.size} bytes, too large to evaluate`);
  return JSON.parse((await ctx.evidence.read(tenant, c.id)).toString('utf8'));
}

const ageOf = (c: Candidate, now: Date) => now.getTime() - c.createdAt.getTime();
const humanAge = (ms: number) =>
  ms >= 86_400_000
    ? `${Math.floor(ms / 86_400_000)}d`
    : ms >= 3_600_000
      ? `${Math.floor(ms / 3_600_000)}h`
      : ms >= 60_000
        ? `${Math.floor(ms / 60_000)}m`
        : `${Math.max(0, Math.floor(ms / 1000))}s`;

async function sbomGate(
  ctx: AppContext,
  g: GateContext,
  req: Extract<Requirement, { kind: 'sbom' }>,
  all: Candidate[],
  maxAge: number,
  now: Date,
): Promise<GateResult> {
  const base = { name: req.name, required: req.required };
  const sboms = all.filter((c) => c.kind === 'sbom');
  let foreign: Candidate | undefined;
  let stale: Candidate | undefined;
  for (const c of sboms) {
    let cyclonedx = /^application\/vnd\.cyclonedx\+json/i.test(c.mediaType) || (c.predicateType ?? '').startsWith(CYCLONEDX_BOM);
    if (!cyclonedx && /json/i.test(c.mediaType)) {
      // Generic JSON media type: look at the document itself.
      cyclonedx = await readJson(ctx, g.tenant, c)
        .then((d) => (d as { bomFormat?: unknown })?.bomFormat === 'CycloneDX')
        .catch(() => false);
    }
    if (!cyclonedx) {
      foreign ??= c;
      continue;
    }
    if (ageOf(c, now) > maxAge) {
      stale ??= c;
      continue;
    }
    return { ...base, passed: true, detail: `CycloneDX SBOM ${c.id} (${humanAge(ageOf(c, now))} old)`, evidenceId: c.id };
  }
  if (stale)
    return {
      ...base,
      passed: false,
      detail: `SBOM not found: newest CycloneDX SBOM ${stale.id} is ${humanAge(ageOf(stale, now))} old (max ${humanAge(maxAge)})`,
      missing: commandFor(req, g.artifactDigest, g.imageRef, true),
    };
  const extra = foreign ? ` (an SBOM ${foreign.id} exists but is not CycloneDX: ${foreign.mediaType})` : '';
  return {
    ...base,
    passed: false,
    detail: `SBOM not found: no CycloneDX SBOM for ${g.artifactDigest}${extra}`,
    missing: commandFor(req, g.artifactDigest, g.imageRef),
  };
}

type Counts = Record<'critical' | 'high' | 'medium' | 'low' | 'unknown', number>;

async function scanGate(
  ctx: AppContext,
  g: GateContext,
  req: Extract<Requirement, { kind: 'scan-report' }>,
  all: Candidate[],
  maxAge: number,
  now: Date,
): Promise<GateResult> {
  const base = { name: req.name, required: req.required };
  const reports = all.filter((c) => c.kind === 'scan-report');
  const fresh = reports.find((c) => ageOf(c, now) <= maxAge);
  if (!fresh) {
    const stale = reports[0];
    const detail = stale
      ? `vulnerability scan not found: newest scan report ${stale.id} is ${humanAge(ageOf(stale, now))} old (max ${humanAge(maxAge)})`
      : `vulnerability scan not found: no scan report for ${g.artifactDigest}`;
    return { ...base, passed: false, detail, missing: commandFor(req, g.artifactDigest, g.imageRef, !!stale) };
  }
  let counts: Partial<Counts> | undefined;
  try {
    counts = ((await readJson(ctx, g.tenant, fresh)) as { counts?: Partial<Counts> })?.counts;
  } catch (e) {
    return { ...base, passed: false, violation: true, detail: `scan report ${fresh.id} is unreadable: ${(e as Error).message}`, evidenceId: fresh.id };
  }
  if (!counts || typeof counts !== 'object')
    return { ...base, passed: false, violation: true, detail: `scan report ${fresh.id} has no counts {critical, high, …}`, evidenceId: fresh.id };
  const over = (Object.entries(req.thresholds) as [keyof Counts, number | undefined][])
    .filter(([sev, max]) => max !== undefined && Number(counts![sev] ?? 0) > max)
    .map(([sev, max]) => `${Number(counts![sev] ?? 0)} ${sev} (max ${max})`);
  const summary = (['critical', 'high', 'medium', 'low'] as const).map((s) => `${s}=${Number(counts![s] ?? 0)}`).join(' ');
  if (over.length)
    return { ...base, passed: false, violation: true, detail: `vulnerability scan ${fresh.id} exceeds thresholds: ${over.join(', ')}`, evidenceId: fresh.id };
  return { ...base, passed: true, detail: `scan report ${fresh.id}: ${summary}`, evidenceId: fresh.id };
}

async function attestationGate(
  ctx: AppContext,
  g: GateContext,
  req: Extract<Requirement, { kind: 'attestation' }>,
  all: Candidate[],
  maxAge: number,
  now: Date,
  rootPack: () => Promise<RootPack>,
): Promise<GateResult> {
  const base = { name: req.name, required: req.required };
  const hex = g.artifactDigest.slice('sha256:'.length);
  // predicate_type may be unset when an envelope was stored without it: those are checked too.
  const atts = all.filter((c) => c.kind === 'attestation' && (c.predicateType === req.predicateType || c.predicateType === null));
  const problems: string[] = [];
  for (const c of atts) {
    if (ageOf(c, now) > maxAge) {
      problems.push(`${c.id} is ${humanAge(ageOf(c, now))} old`);
      continue;
    }
    try {
      const env = await readJson(ctx, g.tenant, c);
      // The signing time is the locker's ingestion time (trusted), never a claim in the payload.
      const { statement } = req.trustedSigner
        ? verifyStatement(env, rootPackResolver(await rootPack(), { purpose: SIGNING_PURPOSE }), c.createdAt, { predicateType: req.predicateType })
        : { statement: statementFromEnvelope(env) };
      if (statement.predicateType !== req.predicateType) continue;
      if (!statement.subject.some((s) => s.digest.sha256 === hex)) {
        problems.push(`${c.id} does not name ${g.artifactDigest} as its subject`);
        continue;
      }
      return {
        ...base,
        passed: true,
        detail: `${attestType(req.predicateType)} attestation ${c.id}${req.trustedSigner ? ' signed by a trusted key' : ''}`,
        evidenceId: c.id,
      };
    } catch (e) {
      const sigs = (e as { details?: { signatures?: { keyid: string; reason: string }[] } }).details?.signatures;
      problems.push(`${c.id}: ${(e as Error).message}${sigs?.length ? ` (${sigs.map((s) => `${s.keyid.slice(0, 8)}: ${s.reason}`).join('; ')})` : ''}`);
    }
  }
  const detail = problems.length
    ? `attestation missing: no valid ${req.predicateType} attestation for ${g.artifactDigest}: ${problems.slice(0, 3).join('; ')}`
    : `attestation missing: no ${req.predicateType} attestation for ${g.artifactDigest}`;
  return { ...base, passed: false, detail, missing: commandFor(req, g.artifactDigest, g.imageRef) };
}

/** Evaluates every requirement of the policy; never throws for missing evidence (that is a result). */
export async function evaluateGates(ctx: AppContext, g: GateContext): Promise<GateResult[]> {
  const now = g.now ?? new Date();
  const all = await candidates(ctx, g.tenant, g.artifactDigest);
  const defaultAge = parseDuration(g.policy.maxEvidenceAge);
  let pack: Promise<RootPack> | undefined = g.rootPack ? Promise.resolve(g.rootPack) : undefined;
  const rootPack = () => (pack ??= currentRootPack(ctx.keys));
  const out: GateResult[] = [];
  for (const req of g.policy.requirements) {
    const maxAge = req.maxAge ? parseDuration(req.maxAge) : defaultAge;
    if (req.kind === 'sbom') out.push(await sbomGate(ctx, g, req, all, maxAge, now));
    else if (req.kind === 'scan-report') out.push(await scanGate(ctx, g, req, all, maxAge, now));
    else out.push(await attestationGate(ctx, g, req, all, maxAge, now, rootPack));
  }
  return out;
}

const packCache = new WeakMap<KeyStore, { mtimeMs: number; pack: Promise<RootPack> }>();
/**
 * The RootPack of the key store, re-exported only when the key directory changed (every key
 * write is an atomic rename into it, which bumps its mtime): rotations are seen at once.
 */
export async function currentRootPack(keys: KeyStore): Promise<RootPack> {
  const mtimeMs = (await stat(join(keys.dir, 'keys'))).mtimeMs;
  const hit = packCache.get(keys);
  if (hit && hit.mtimeMs === mtimeMs) return hit.pack;
  const pack = exportRootPack(keys);
  packCache.set(keys, { mtimeMs, pack });
  pack.catch(() => packCache.delete(keys));
  return pack;
}

/** The image reference for an artifact, from the scanner's image catalogue. */
export async function lookupImageRef(ctx: AppContext, tenant: string, digest: string): Promise<string | null> {
  return imageRefFor(ctx, tenant, digest);
}
