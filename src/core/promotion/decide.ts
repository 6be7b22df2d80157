/**
 * Gate decisions, pure: given the policy, the facts gathered about an artifact's evidence
 * (gather.ts) and the time, each requirement passes, is `missing` (with the command that
 * produces the evidence) or is a `violation` (present but failing, e.g. critical findings,
 * which regenerating won't fix). Stale or untrusted evidence counts as missing.
 */
import { CYCLONEDX_BOM, SLSA_PROVENANCE_V1, VULNS_V02 } from '../../crypto/intoto';
import { parseDuration } from '../../lib/format';
import type { GateCandidate } from '../evidence/queries/promotion';
import type { PromotionPolicy, Requirement } from './policy';
import type { GateResult, MissingEvidence } from './types';

/** What a statement check (signature and/or parse) found in an attestation envelope. */
export type StatementCheck = { ok: true; predicateType: string; subjectSha256: string[] } | { ok: false; error: string };

/** What the documents say, for the candidates a gate needs to read (see documentsToRead). */
export type DocumentFact =
  | { kind: 'sbom'; cyclonedx: boolean }
  | { kind: 'scan-report'; counts: unknown; error?: undefined }
  | { kind: 'scan-report'; error: string }
  | { kind: 'attestation'; unsigned: StatementCheck; trusted?: StatementCheck };

/** Everything the gates decide on. */
export interface EvidenceFacts {
  artifactDigest: string;
  imageRef: string | null;
  /** Present evidence naming the artifact, newest first. */
  candidates: GateCandidate[];
  documents: Record<string, DocumentFact>;
}

type SbomReq = Extract<Requirement, { kind: 'sbom' }>;
type ScanReq = Extract<Requirement, { kind: 'scan-report' }>;
type AttestationReq = Extract<Requirement, { kind: 'attestation' }>;
type Counts = Record<'critical' | 'high' | 'medium' | 'low' | 'unknown', number>;

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

export const ageOf = (c: GateCandidate, now: Date) => now.getTime() - c.createdAt.getTime();
export const humanAge = (ms: number) =>
  ms >= 86_400_000
    ? `${Math.floor(ms / 86_400_000)}d`
    : ms >= 3_600_000
      ? `${Math.floor(ms / 3_600_000)}h`
      : ms >= 60_000
        ? `${Math.floor(ms / 60_000)}m`
        : `${Math.max(0, Math.floor(ms / 1000))}s`;

const maxAgeOf = (policy: PromotionPolicy, req: Requirement) => parseDuration(req.maxAge ?? policy.maxEvidenceAge);
const typedCycloneDx = (c: GateCandidate) => /^application\/vnd\.cyclonedx\+json/i.test(c.mediaType) || (c.predicateType ?? '').startsWith(CYCLONEDX_BOM);
const genericJson = (c: GateCandidate) => /json/i.test(c.mediaType);
const attestationFor = (req: AttestationReq) => (c: GateCandidate) =>
  // predicate_type may be unset when an envelope was stored without it: those are checked too.
  c.kind === 'attestation' && (c.predicateType === req.predicateType || c.predicateType === null);

/** A document gather.ts must read; `trusted`: also verify its signatures against the RootPack. */
export interface DocumentToRead {
  candidate: GateCandidate;
  trusted: boolean;
}

/**
 * The documents the gates will look at: generic-JSON SBOMs (is it CycloneDX?), the freshest
 * scan report per requirement (its counts), fresh attestations of a required predicate type.
 */
export function documentsToRead(policy: PromotionPolicy, candidates: GateCandidate[], now: Date): DocumentToRead[] {
  const out = new Map<string, DocumentToRead>();
  const add = (candidate: GateCandidate, trusted = false) => {
    const prev = out.get(candidate.id);
    out.set(candidate.id, { candidate, trusted: trusted || (prev?.trusted ?? false) });
  };
  for (const req of policy.requirements) {
    const maxAge = maxAgeOf(policy, req);
    const fresh = (c: GateCandidate) => ageOf(c, now) <= maxAge;
    if (req.kind === 'sbom') {
      for (const c of candidates.filter((x) => x.kind === 'sbom')) {
        if (typedCycloneDx(c) && fresh(c)) break;
        if (!typedCycloneDx(c) && genericJson(c)) add(c);
      }
    } else if (req.kind === 'scan-report') {
      const report = candidates.find((c) => c.kind === 'scan-report' && fresh(c));
      if (report) add(report);
    } else {
      for (const c of candidates.filter(attestationFor(req))) if (fresh(c)) add(c, req.trustedSigner);
    }
  }
  return [...out.values()];
}

/** The newest fresh CycloneDX SBOM passes; stale ones and foreign formats are named in the detail. */
export function sbomGate(req: SbomReq, facts: EvidenceFacts, maxAge: number, now: Date): GateResult {
  const base = { name: req.name, required: req.required };
  let foreign: GateCandidate | undefined;
  let stale: GateCandidate | undefined;
  for (const c of facts.candidates.filter((x) => x.kind === 'sbom')) {
    const doc = facts.documents[c.id];
    const cyclonedx = typedCycloneDx(c) || (genericJson(c) && doc?.kind === 'sbom' && doc.cyclonedx);
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
      missing: commandFor(req, facts.artifactDigest, facts.imageRef, true),
    };
  const extra = foreign ? ` (an SBOM ${foreign.id} exists but is not CycloneDX: ${foreign.mediaType})` : '';
  return {
    ...base,
    passed: false,
    detail: `SBOM not found: no CycloneDX SBOM for ${facts.artifactDigest}${extra}`,
    missing: commandFor(req, facts.artifactDigest, facts.imageRef),
  };
}

/** The newest fresh scan report decides: findings over a threshold are a violation. */
export function scanGate(req: ScanReq, facts: EvidenceFacts, maxAge: number, now: Date): GateResult {
  const base = { name: req.name, required: req.required };
  const reports = facts.candidates.filter((c) => c.kind === 'scan-report');
  const fresh = reports.find((c) => ageOf(c, now) <= maxAge);
  if (!fresh) {
    const stale = reports[0];
    const detail = stale
      ? `vulnerability scan not found: newest scan report ${stale.id} is ${humanAge(ageOf(stale, now))} old (max ${humanAge(maxAge)})`
      : `vulnerability scan not found: no scan report for ${facts.artifactDigest}`;
    return { ...base, passed: false, detail, missing: commandFor(req, facts.artifactDigest, facts.imageRef, !!stale) };
  }
  const doc = facts.documents[fresh.id];
  const violation = (detail: string): GateResult => ({ ...base, passed: false, violation: true, detail, evidenceId: fresh.id });
  if (doc?.kind !== 'scan-report') return violation(`scan report ${fresh.id} is unreadable: not read`);
  if (doc.error !== undefined) return violation(`scan report ${fresh.id} is unreadable: ${doc.error}`);
  const counts = doc.counts as Partial<Counts> | undefined;
  if (!counts || typeof counts !== 'object') return violation(`scan report ${fresh.id} has no counts {critical, high, …}`);
  const count = (sev: keyof Counts) => Number(counts[sev] ?? 0);
  const over = (Object.entries(req.thresholds) as [keyof Counts, number | undefined][])
    .filter(([sev, max]) => max !== undefined && count(sev) > max)
    .map(([sev, max]) => `${count(sev)} ${sev} (max ${max})`);
  if (over.length) return violation(`vulnerability scan ${fresh.id} exceeds thresholds: ${over.join(', ')}`);
  const summary = (['critical', 'high', 'medium', 'low'] as const).map((s) => `${s}=${count(s)}`).join(' ');
  return { ...base, passed: true, detail: `scan report ${fresh.id}: ${summary}`, evidenceId: fresh.id };
}

/**
 * The newest fresh attestation of the predicate type that names the artifact (and, when the
 * policy says so, carries a signature trusted by the RootPack) passes.
 */
export function attestationGate(req: AttestationReq, facts: EvidenceFacts, maxAge: number, now: Date): GateResult {
  const base = { name: req.name, required: req.required };
  const hex = facts.artifactDigest.slice('sha256:'.length);
  const problems: string[] = [];
  for (const c of facts.candidates.filter(attestationFor(req))) {
    if (ageOf(c, now) > maxAge) {
      problems.push(`${c.id} is ${humanAge(ageOf(c, now))} old`);
      continue;
    }
    const doc = facts.documents[c.id];
    const check: StatementCheck | undefined = doc?.kind === 'attestation' ? (req.trustedSigner ? doc.trusted : doc.unsigned) : undefined;
    if (!check) {
      problems.push(`${c.id}: not read`);
      continue;
    }
    if (!check.ok) {
      problems.push(`${c.id}: ${check.error}`);
      continue;
    }
    if (check.predicateType !== req.predicateType) {
      // A verified statement of another type is a problem worth naming; an unsigned one is just skipped.
      if (req.trustedSigner) problems.push(`${c.id}: predicateType is ${check.predicateType}, expected ${req.predicateType}`);
      continue;
    }
    if (!check.subjectSha256.includes(hex)) {
      problems.push(`${c.id} does not name ${facts.artifactDigest} as its subject`);
      continue;
    }
    return {
      ...base,
      passed: true,
      detail: `${attestType(req.predicateType)} attestation ${c.id}${req.trustedSigner ? ' signed by a trusted key' : ''}`,
      evidenceId: c.id,
    };
  }
  const detail = problems.length
    ? `attestation missing: no valid ${req.predicateType} attestation for ${facts.artifactDigest}: ${problems.slice(0, 3).join('; ')}`
    : `attestation missing: no ${req.predicateType} attestation for ${facts.artifactDigest}`;
  return { ...base, passed: false, detail, missing: commandFor(req, facts.artifactDigest, facts.imageRef) };
}

/** Every requirement of the policy, in policy order; missing evidence is a result, never an error. */
export function decideGates(policy: PromotionPolicy, facts: EvidenceFacts, now: Date): GateResult[] {
  return policy.requirements.map((req) => {
    const maxAge = maxAgeOf(policy, req);
    if (req.kind === 'sbom') return sbomGate(req, facts, maxAge, now);
    if (req.kind === 'scan-report') return scanGate(req, facts, maxAge, now);
    return attestationGate(req, facts, maxAge, now);
  });
}
