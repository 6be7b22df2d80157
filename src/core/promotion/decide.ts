/**
 * Gate decisions, pure: given the policy, the facts gathered about an artifact's evidence
 * (gather.ts) and the time, each requirement passes, is `missing` (with the command that
 * produces the evidence) or is a `violation` (present but failing, e.g. critical findings,
 * which regenerating won't fix). Stale or untrusted evidence counts as missing.
 *
 * A requirement that names signers is met only by a signed statement of its predicate type:
 * evidence whose recorded provenance (ingest) and signer match one of the policy's signers, and
 * whose signature still verifies now. Unsigned uploads never meet it; stella's own
 * scan-then-attest output meets only requirements that trust `stella`. Every result names the
 * evidence, its provenance and signer, and the policy rule, so `--explain` can say why.
 */
import { CYCLONEDX_BOM, SLSA_PROVENANCE_V1, VULNS_V02 } from '../../crypto/intoto';
import { parseDuration } from '../../lib/format';
import type { GateCandidate } from '../evidence/queries/promotion';
import { type PolicySigner, type PromotionPolicy, pemSignerKey, type Requirement, signerLabel } from './policy';
import type { ConsideredEvidence, GateResult, MissingEvidence } from './types';
import { applyVex, parseVex, type VexStatement } from '../../scanner/vex';

/** What a statement check (signature and/or parse) found in an envelope. */
export type StatementCheck =
  | {
      ok: true;
      predicateType: string;
      subjectSha256: string[];
      /** Key ids whose signatures verify and were trusted at the item's ingest time (trusted checks only). */
      signers?: string[];
      /** The statement's predicate (for SLSA builder/source checks and vulnerability counts). */
      predicate?: unknown;
    }
  | { ok: false; error: string };

/** What the documents say, for the candidates a gate needs to read (see documentsToRead). */
export type DocumentFact =
  | { kind: 'sbom'; cyclonedx: boolean }
  | { kind: 'scan-report'; counts: unknown; findings?: ReportFinding[]; error?: undefined }
  | { kind: 'scan-report'; error: string }
  | { kind: 'attestation'; unsigned: StatementCheck; trusted?: StatementCheck };

/** Everything the gates decide on. */
export interface EvidenceFacts {
  artifactDigest: string;
  imageRef: string | null;
  /** Present evidence naming the artifact, newest first. */
  candidates: GateCandidate[];
  documents: Record<string, DocumentFact>;
  /** Who is who among signers: stella's own signing keys, and the keys trusted through an imported RootPack. */
  keys?: { stella: string[]; rootpack: string[] };
}

type SbomReq = Extract<Requirement, { kind: 'sbom' }>;
type ScanReq = Extract<Requirement, { kind: 'scan-report' }>;
type AttestationReq = Extract<Requirement, { kind: 'attestation' }>;
type Severity = 'critical' | 'high' | 'medium' | 'low' | 'unknown';

/** A finding as the vulnerability gate sees it (from a scan report or a signed vulnerability statement). */
export interface ReportFinding {
  id: string;
  aliases?: string[];
  purl?: string;
  severity: Severity | 'none';
}
type Counts = Record<Severity, number>;

/** The `stella attest create --type` value that produces an attestation of this predicate type. */
export function attestType(predicateType: string): string {
  if (predicateType === SLSA_PROVENANCE_V1) return 'slsa-provenance';
  if (isCycloneDx(predicateType)) return 'sbom';
  if (predicateType === VULNS_V02) return 'vuln';
  return predicateType;
}

const isCycloneDx = (t: string | null) => !!t && (t === CYCLONEDX_BOM || t.startsWith(`${CYCLONEDX_BOM}/v`));
const trustsStella = (req: Requirement) => (req.signers ?? []).includes('stella');
const signersText = (req: Requirement) => (req.signers ?? []).map(signerLabel).join(' or ');

export function commandFor(req: Requirement, digest: string, imageRef: string | null, stale = false): MissingEvidence {
  const ref = imageRef ?? digest;
  const signed = (req.signers ?? []).length > 0;
  // Stella's scan-then-attest produces what a requirement trusting `stella` (or no signer) accepts.
  const byScan = !signed || trustsStella(req);
  const importSigned = (what: string) => `stella attest import <${what}.dsse.json>  # a ${what} statement about ${digest} signed by ${signersText(req)}`;
  switch (req.kind) {
    case 'sbom':
      return { kind: 'sbom', command: byScan ? `stella scan image --image ${ref} --sbom-only${stale ? ' --force' : ''}` : importSigned('sbom') };
    case 'scan-report':
      return { kind: 'scan-report', command: byScan ? `stella scan image --image ${ref}${stale ? ' --force' : ''}` : importSigned('vulnerability-report') };
    case 'attestation': {
      const type = attestType(req.predicateType);
      // Provenance comes from the builder, never from stella (attest create refuses it).
      const command =
        req.predicateType === SLSA_PROVENANCE_V1
          ? `stella attest import <provenance.dsse.json>  # the builder's signed SLSA provenance for ${digest}${signed ? ` (signer ${signersText(req)})` : ''}`
          : (type === 'sbom' || type === 'vuln') && byScan
            ? `stella scan image --image ${ref}${stale ? ' --force' : ''}`
            : `stella attest import <attestation.dsse.json>  # a ${req.predicateType} statement about ${digest}${signed ? ` signed by ${signersText(req)}` : ''}`;
      return { kind: 'attestation', predicateType: req.predicateType, command };
    }
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
const typedCycloneDx = (c: GateCandidate) => /^application\/vnd\.cyclonedx\+json/i.test(c.mediaType) || isCycloneDx(c.predicateType);
const genericJson = (c: GateCandidate) => /json/i.test(c.mediaType);
const attestationFor = (req: AttestationReq) => (c: GateCandidate) =>
  // predicate_type may be unset when an envelope was stored without it: those are checked too.
  c.kind === 'attestation' && (c.predicateType === req.predicateType || c.predicateType === null);

const UNKNOWN_RULE: Record<string, string> = { block: 'blocks', warn: 'warns', ignore: 'ignored' };

/** The policy rule a gate applied, as explanations print it. */
export function ruleOf(req: Requirement, maxAge: number): string {
  const parts: string[] = [`${req.kind} "${req.name}"`];
  if ((req.signers ?? []).length) parts.push(`signers ${signersText(req)}`, `predicateType ${req.predicateType}`);
  else parts.push('unsigned accepted');
  if (req.kind === 'scan-report') {
    const t = Object.entries(req.thresholds)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}<=${v}`);
    parts.push(`thresholds ${t.join(',') || 'none'}`, `unknown severity ${UNKNOWN_RULE[req.unknownSeverity] ?? `counts as ${req.unknownSeverity}`}`);
    if (req.vexSigners) parts.push(`VEX signers ${req.vexSigners.map(signerLabel).join(' or ') || 'none'}`);
  }
  if (req.kind === 'attestation') {
    if (req.builderIds) parts.push(`builderIds ${req.builderIds.join(',')}`);
    if (req.sourceRepos) parts.push(`sourceRepos ${req.sourceRepos.join(',')}`);
  }
  parts.push(`maxAge ${humanAge(maxAge)}`);
  return parts.join('; ');
}

// ---------------------------------------------------------------------------------------
// Signed requirements

/** Candidates a signed requirement looks at: statements of its predicate type (or the kind itself, to explain why it does not count). */
function signedCandidates(req: Requirement, candidates: GateCandidate[]): GateCandidate[] {
  const typed = (c: GateCandidate) => (req.kind === 'sbom' ? isCycloneDx(c.predicateType) : c.predicateType === req.predicateType);
  return candidates.filter((c) => (c.kind === req.kind || c.kind === 'attestation') && (typed(c) || (c.kind === req.kind && req.kind !== 'attestation')));
}

/** The policy signer this candidate's recorded provenance satisfies, if any. */
export function matchSigner(signers: readonly PolicySigner[], c: Pick<GateCandidate, 'provenance' | 'signer'>, keys: EvidenceFacts['keys']): string | null {
  if (c.provenance === 'uploaded' || !c.signer) return null;
  const own = keys?.stella.includes(c.signer) ?? false;
  for (const s of signers) {
    if (s === 'stella' && c.provenance === 'produced-by-stella' && own) return 'stella';
    if (s === 'rootpack' && c.provenance === 'signed' && !own && (keys?.rootpack.includes(c.signer) ?? false)) return 'rootpack';
    if (typeof s === 'string' && s !== 'stella' && s !== 'rootpack' && s === c.signer) return `key ${s}`;
    if (typeof s !== 'string' && pemSignerKey(s.pem)?.kid === c.signer) return `pem ${c.signer}`;
  }
  return null;
}

const shortKid = (k: string | null) => (k ? k.slice(0, 12) : '(none)');
function describe(c: GateCandidate, keys: EvidenceFacts['keys']): string {
  if (c.provenance === 'uploaded') return 'unsigned (uploaded)';
  const own = c.signer && keys?.stella.includes(c.signer);
  if (c.provenance === 'produced-by-stella') return `produced by stella (key ${shortKid(c.signer)})`;
  return own ? `signed by stella's key ${shortKid(c.signer)} over evidence stella did not produce` : `signed by key ${shortKid(c.signer)}`;
}

/** The repositories an SLSA v1 provenance says the build came from (what slsa-verifier --source-uri checks). */
export function slsaSources(predicate: unknown): string[] {
  const p = predicate as { buildDefinition?: { externalParameters?: Record<string, unknown>; resolvedDependencies?: { uri?: string }[] } } | null;
  const out = new Set<string>();
  const ext = p?.buildDefinition?.externalParameters ?? {};
  const wf = ext.workflow as { repository?: unknown } | undefined;
  for (const v of [ext.source, ext.repository, ext.sourceRepository, wf?.repository]) {
    if (typeof v === 'string') out.add(v);
    else if (v && typeof v === 'object' && typeof (v as { uri?: unknown }).uri === 'string') out.add((v as { uri: string }).uri);
  }
  for (const d of p?.buildDefinition?.resolvedDependencies ?? []) if (typeof d?.uri === 'string') out.add(d.uri);
  return [...out];
}
/** `git+https://github.com/o/r@refs/heads/main` and `https://github.com/o/r` both name github.com/o/r. */
const normRepo = (u: string) =>
  u
    .replace(/^git\+/, '')
    .replace(/^[a-z]+:\/\//, '')
    .replace(/[@#].*$/, '')
    .replace(/\.git$/, '')
    .replace(/\/+$/, '')
    .toLowerCase();

/** slsa-verifier's checks on a verified SLSA provenance: builder.id and the source repository. */
export function slsaProblems(req: AttestationReq, predicate: unknown): string[] {
  const out: string[] = [];
  if (req.builderIds) {
    const id = (predicate as { runDetails?: { builder?: { id?: unknown } } } | null)?.runDetails?.builder?.id;
    if (typeof id !== 'string' || !req.builderIds.includes(id))
      out.push(`builder.id ${JSON.stringify(id ?? null)} is not allowed (policy builderIds: ${req.builderIds.join(', ')})`);
  }
  if (req.sourceRepos) {
    const want = new Set(req.sourceRepos.map(normRepo));
    const have = slsaSources(predicate);
    if (!have.some((s) => want.has(normRepo(s))))
      out.push(`source repository ${have.length ? have.join(', ') : '(none named)'} is not allowed (policy sourceRepos: ${req.sourceRepos.join(', ')})`);
  }
  return out;
}

type Judged = { ok: true; c: GateCandidate; rule: string; predicate: unknown } | { ok: false; c: GateCandidate; problem: string };

/** One candidate against a signed requirement: fresh, signed by a policy signer, still verifying, naming the artifact, (SLSA) right builder and source. */
function judgeSigned(req: Requirement, c: GateCandidate, facts: EvidenceFacts, maxAge: number, now: Date, label: string): Judged {
  const no = (problem: string): Judged => ({ ok: false, c, problem: `${label} ${c.id} ${problem}` });
  if (ageOf(c, now) > maxAge) return no(`is ${humanAge(ageOf(c, now))} old (max ${humanAge(maxAge)})`);
  const wrongType = req.kind === 'sbom' ? !isCycloneDx(c.predicateType) : c.predicateType !== req.predicateType;
  if (c.provenance === 'uploaded') return no(`is unsigned (uploaded); policy requires signer ${signersText(req)}`);
  if (wrongType) return no(`is not a signed ${req.predicateType} statement (${c.predicateType ?? 'no predicate type'})`);
  const rule = matchSigner(req.signers ?? [], c, facts.keys);
  if (!rule) return no(`is ${describe(c, facts.keys)}; policy requires signer ${signersText(req)}`);
  const doc = facts.documents[c.id];
  const check = doc?.kind === 'attestation' ? doc.trusted : undefined;
  if (!check) return no('was not read');
  if (!check.ok) return no(`no longer verifies: ${check.error}`);
  if (c.signer && check.signers && !check.signers.includes(c.signer))
    return no(`signature by ${shortKid(c.signer)} no longer verifies (key revoked or outside its validity window)`);
  if (!check.subjectSha256.includes(facts.artifactDigest.slice('sha256:'.length))) return no(`does not name ${facts.artifactDigest} as its subject`);
  if (req.kind === 'attestation' && req.predicateType === SLSA_PROVENANCE_V1) {
    const p = slsaProblems(req, check.predicate);
    if (p.length) return no(`(signer ${rule}): ${p.join('; ')}`);
  }
  return { ok: true, c, rule, predicate: check.predicate };
}

const considered = (js: Judged[], keys: EvidenceFacts['keys']): ConsideredEvidence[] =>
  js.slice(0, 5).map((j) => ({
    id: j.c.id,
    kind: j.c.kind,
    provenance: j.c.provenance,
    signer: j.c.signer,
    ...(j.ok ? { accepted: true, rule: j.rule } : { accepted: false, problem: j.problem }),
    ...(j.c.signer && keys?.stella.includes(j.c.signer) ? { stellaKey: true } : {}),
  }));

const evidenceOf = (c: GateCandidate) => ({ id: c.id, kind: c.kind, provenance: c.provenance, signer: c.signer });

/** A signed requirement: the newest candidate that satisfies it, or why none does. */
function signedGate(
  req: Requirement,
  facts: EvidenceFacts,
  maxAge: number,
  now: Date,
  label: string,
  what: string,
): { pass?: Judged & { ok: true }; result?: GateResult; judged: Judged[] } {
  const base = { name: req.name, required: req.required, rule: ruleOf(req, maxAge) };
  const judged: Judged[] = [];
  for (const c of signedCandidates(req, facts.candidates)) {
    const j = judgeSigned(req, c, facts, maxAge, now, label);
    judged.push(j);
    if (j.ok) return { pass: j, judged };
  }
  const anyStale = judged.some((j) => !j.ok && ageOf(j.c, now) > maxAge);
  const detail = judged.length
    ? `${what} not found: no ${req.predicateType} statement for ${facts.artifactDigest} signed by ${signersText(req)}: ${judged
        .slice(0, 3)
        .map((j) => (j.ok ? '' : j.problem))
        .join('; ')}`
    : `${what} not found: no ${req.predicateType} statement for ${facts.artifactDigest} (policy requires signer ${signersText(req)})`;
  return {
    judged,
    result: {
      ...base,
      passed: false,
      detail,
      ...(judged[0] ? { evidence: evidenceOf(judged[0].c) } : {}),
      considered: considered(judged, facts.keys),
      missing: commandFor(req, facts.artifactDigest, facts.imageRef, anyStale),
    },
  };
}

/** Severity counts of an in-toto vulnerability report (vulns v0.2) predicate. */
export function vulnCounts(predicate: unknown): Counts {
  return countFindings(vulnFindings(predicate));
}
/** The findings of an in-toto vulnerability report (vulns v0.2) predicate: id, purl (annotation), severity. */
export function vulnFindings(predicate: unknown): ReportFinding[] {
  const results = (predicate as { scanner?: { result?: unknown[] } } | null)?.scanner?.result;
  return (Array.isArray(results) ? results : []).map((r) => {
    const x = r as { id?: unknown; annotations?: { purl?: unknown }[] };
    const purl = (x.annotations ?? []).map((a) => a?.purl).find((p): p is string => typeof p === 'string');
    return { id: typeof x.id === 'string' ? x.id : '', ...(purl ? { purl } : {}), severity: severityOf(r) };
  });
}
export function countFindings(findings: readonly ReportFinding[]): Counts {
  const counts: Counts = { critical: 0, high: 0, medium: 0, low: 0, unknown: 0 };
  for (const f of findings) if (f.severity !== 'none') counts[f.severity]++;
  return counts;
}
function severityOf(r: unknown): Severity | 'none' {
  const x = r as { annotations?: { severity?: unknown }[]; severity?: { method?: unknown; score?: unknown }[] };
  const named = (v: unknown): Severity | null => {
    const s = typeof v === 'string' ? v.toLowerCase() : '';
    if (s === 'critical' || s === 'high' || s === 'medium' || s === 'low') return s;
    if (s === 'moderate') return 'medium';
    if (s === 'negligible') return 'low';
    return null;
  };
  for (const a of x.annotations ?? []) {
    const s = named(a?.severity);
    if (s) return s;
    if (typeof a?.severity === 'string' && a.severity.toLowerCase() === 'none') return 'none';
  }
  for (const s of x.severity ?? []) {
    const n = named(s?.score);
    if (n) return n;
    const score = Number(s?.score);
    if (typeof s?.method === 'string' && /cvss/i.test(s.method) && Number.isFinite(score) && score > 0)
      return score >= 9 ? 'critical' : score >= 7 ? 'high' : score >= 4 ? 'medium' : 'low';
  }
  return 'unknown';
}

/**
 * Findings over the thresholds, and unknown severity as the policy says: `block` (default) makes
 * any finding of unknown severity a violation, `warn` and `ignore` let it pass, a severity name
 * counts it against that threshold.
 */
export function overThresholds(req: Pick<ScanReq, 'thresholds' | 'unknownSeverity'>, counts: Partial<Counts>): string[] {
  const unknown = Number(counts.unknown ?? 0);
  const count = (sev: Severity) => Number(counts[sev] ?? 0) + (req.unknownSeverity === sev ? unknown : 0);
  const over = (Object.entries(req.thresholds) as [Severity, number | undefined][])
    .filter(([sev, max]) => max !== undefined && count(sev) > max)
    .map(([sev, max]) => `${count(sev)} ${sev} (max ${max}${req.unknownSeverity === sev && unknown ? `, including ${unknown} of unknown severity` : ''})`);
  if (req.unknownSeverity === 'block' && unknown > 0) over.push(`${unknown} of unknown severity (policy unknownSeverity: block)`);
  return over;
}
/** The note a passing gate carries about unknown severity (warn). */
const unknownNote = (req: ScanReq, counts: Partial<Counts>) =>
  req.unknownSeverity === 'warn' && Number(counts.unknown ?? 0) > 0
    ? `; warning: ${Number(counts.unknown)} finding(s) of unknown severity (policy unknownSeverity: warn)`
    : '';
const summary = (counts: Partial<Counts>) => (['critical', 'high', 'medium', 'low', 'unknown'] as const).map((s) => `${s}=${Number(counts[s] ?? 0)}`).join(' ');

// ---------------------------------------------------------------------------------------
// VEX

const OPENVEX_NS = 'https://openvex.dev/ns';
/** VEX evidence: kind vex, or an attestation whose predicate is OpenVEX. */
export const isVexCandidate = (c: GateCandidate) => c.kind === 'vex' || (c.kind === 'attestation' && !!c.predicateType?.startsWith(OPENVEX_NS));
/** Who may sign VEX for a vulnerability requirement: `vexSigners`, else the requirement's signers. */
export const vexSignersOf = (req: Pick<ScanReq, 'signers' | 'vexSigners'>): PolicySigner[] => req.vexSigners ?? req.signers;

/**
 * The VEX statements a vulnerability requirement trusts: from VEX evidence about the artifact,
 * signed (DSSE, verified again now) by one of the requirement's VEX signers. Every VEX document
 * is listed with why it counts or is ignored.
 */
export function vexOf(req: Pick<ScanReq, 'signers' | 'vexSigners'>, facts: EvidenceFacts): { statements: VexStatement[]; considered: ConsideredEvidence[] } {
  const signers = vexSignersOf(req);
  const list = signers.map(signerLabel).join(' or ');
  const hex = facts.artifactDigest.slice('sha256:'.length);
  const statements: VexStatement[] = [];
  const out: ConsideredEvidence[] = [];
  for (const c of facts.candidates.filter(isVexCandidate)) {
    const base = { ...evidenceOf(c), ...(c.signer && facts.keys?.stella.includes(c.signer) ? { stellaKey: true } : {}) };
    const no = (problem: string) => out.push({ ...base, accepted: false, problem: `VEX ${c.id} ${problem}; ignored` });
    if (!signers.length) {
      no('is not applied: the policy names no VEX signers');
      continue;
    }
    if (c.provenance === 'uploaded' || !c.signer) {
      no(`is unsigned (uploaded); policy trusts VEX signed by ${list}`);
      continue;
    }
    const rule = matchSigner(signers, c, facts.keys);
    if (!rule) {
      no(`is ${describe(c, facts.keys)}; policy trusts VEX signed by ${list}`);
      continue;
    }
    const doc = facts.documents[c.id];
    const check = doc?.kind === 'attestation' ? doc.trusted : undefined;
    if (!check) {
      no('was not read');
      continue;
    }
    if (!check.ok) {
      no(`no longer verifies: ${check.error}`);
      continue;
    }
    if (check.signers && !check.signers.includes(c.signer)) {
      no(`signature by ${shortKid(c.signer)} no longer verifies (key revoked or outside its validity window)`);
      continue;
    }
    if (!check.subjectSha256.includes(hex)) {
      no(`does not name ${facts.artifactDigest} as its subject`);
      continue;
    }
    try {
      const parsed = parseVex(check.predicate, { evidenceId: c.id, signer: c.signer });
      // A statement without a time is as old as the evidence item.
      statements.push(...parsed.map((x) => (x.timestamp ? x : { ...x, timestamp: c.createdAt.toISOString() })));
    } catch (e) {
      no(`is not VEX: ${(e as Error).message}`);
      continue;
    }
    out.push({ ...base, accepted: true, rule: `VEX signer ${rule}` });
  }
  return { statements, considered: out };
}

/** Findings after VEX: the counts the thresholds see, a note for the gate's detail, and the VEX documents considered. */
function afterVex(
  req: ScanReq,
  facts: EvidenceFacts,
  findings: ReportFinding[] | undefined,
  counts: Partial<Counts>,
): { counts: Partial<Counts>; note: string; considered: ConsideredEvidence[] } {
  const vex = vexOf(req, facts);
  const considered = vex.considered.slice(0, 5);
  const ignored = vex.considered.filter((c) => !c.accepted).length;
  const ignoredNote = ignored ? `; ${ignored} VEX document(s) ignored (${vex.considered.find((c) => !c.accepted)!.problem}${ignored > 1 ? '; …' : ''})` : '';
  if (!findings) return { counts, note: vex.statements.length ? `; VEX not applied: the report lists no findings${ignoredNote}` : ignoredNote, considered };
  const outcomes = applyVex(findings, vex.statements, { digest: facts.artifactDigest, names: facts.imageRef ? [facts.imageRef] : [] });
  const kept = outcomes.filter((o) => !o.suppressed).map((o) => o.finding);
  const line = (o: (typeof outcomes)[number]) => {
    const last = o.statements[o.statements.length - 1]!;
    return `${o.finding.id}${o.finding.purl ? ` in ${o.finding.purl}` : ''}: ${last.effect} (VEX ${last.statement.source?.evidenceId ?? '?'})`;
  };
  const suppressed = outcomes.filter((o) => o.suppressed);
  const annotated = outcomes.filter((o) => !o.suppressed && o.statements.length);
  const parts: string[] = [];
  if (suppressed.length) parts.push(`${suppressed.length} finding(s) suppressed by VEX [${suppressed.slice(0, 5).map(line).join('; ')}]`);
  if (annotated.length) parts.push(`${annotated.length} annotated by VEX [${annotated.slice(0, 5).map(line).join('; ')}]`);
  return { counts: countFindings(kept), note: `${parts.length ? `; ${parts.join('; ')}` : ''}${ignoredNote}`, considered };
}

// ---------------------------------------------------------------------------------------
// Documents to read

/** A document gather.ts must read; `trusted`: also verify its signatures now. */
export interface DocumentToRead {
  candidate: GateCandidate;
  trusted: boolean;
}

/**
 * The documents the gates will look at: generic-JSON SBOMs (is it CycloneDX?), the freshest
 * scan report per requirement (its counts), fresh attestations of a required predicate type,
 * and for signed requirements the fresh statements whose recorded signer the policy accepts.
 */
export function documentsToRead(policy: PromotionPolicy, candidates: GateCandidate[], now: Date, keys?: EvidenceFacts['keys']): DocumentToRead[] {
  const out = new Map<string, DocumentToRead>();
  const add = (candidate: GateCandidate, trusted = false) => {
    const prev = out.get(candidate.id);
    out.set(candidate.id, { candidate, trusted: trusted || (prev?.trusted ?? false) });
  };
  for (const req of policy.requirements) {
    const maxAge = maxAgeOf(policy, req);
    // VEX about the artifact signed by a trusted VEX signer is read and verified again now (whatever its age).
    if (req.kind === 'scan-report') for (const c of candidates.filter(isVexCandidate)) if (matchSigner(vexSignersOf(req), c, keys)) add(c, true);
    const fresh = (c: GateCandidate) => ageOf(c, now) <= maxAge;
    if ((req.signers ?? []).length) {
      // Statements whose recorded signer the policy accepts are read and verified again now.
      for (const c of signedCandidates(req, candidates)) if (fresh(c) && matchSigner(req.signers ?? [], c, keys)) add(c, true);
    } else if (req.kind === 'sbom') {
      for (const c of candidates.filter((x) => x.kind === 'sbom')) {
        if (typedCycloneDx(c) && fresh(c)) break;
        if (!typedCycloneDx(c) && genericJson(c)) add(c);
      }
    } else if (req.kind === 'scan-report') {
      const report = candidates.find((c) => c.kind === 'scan-report' && fresh(c));
      if (report) add(report);
    } else {
      for (const c of candidates.filter(attestationFor(req))) if (fresh(c)) add(c);
    }
  }
  return [...out.values()];
}

// ---------------------------------------------------------------------------------------
// Gates

/** The newest fresh CycloneDX SBOM passes (signed by a policy signer when the policy names signers). */
export function sbomGate(req: SbomReq, facts: EvidenceFacts, maxAge: number, now: Date): GateResult {
  if (req.signers.length) {
    const g = signedGate(req, facts, maxAge, now, 'sbom', 'SBOM');
    if (!g.pass) return g.result!;
    const c = g.pass.c;
    return {
      name: req.name,
      required: req.required,
      passed: true,
      detail: `CycloneDX SBOM ${c.id} (${humanAge(ageOf(c, now))} old), ${describe(c, facts.keys)}, trusted as ${g.pass.rule}`,
      evidenceId: c.id,
      evidence: evidenceOf(c),
      rule: ruleOf(req, maxAge),
      considered: considered(g.judged, facts.keys),
    };
  }
  const base = { name: req.name, required: req.required, rule: ruleOf(req, maxAge) };
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
    return {
      ...base,
      passed: true,
      detail: `CycloneDX SBOM ${c.id} (${humanAge(ageOf(c, now))} old, ${describe(c, facts.keys)}; policy accepts unsigned)`,
      evidenceId: c.id,
      evidence: evidenceOf(c),
    };
  }
  if (stale)
    return {
      ...base,
      passed: false,
      detail: `SBOM not found: newest CycloneDX SBOM ${stale.id} is ${humanAge(ageOf(stale, now))} old (max ${humanAge(maxAge)})`,
      evidence: evidenceOf(stale),
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

/** The newest fresh scan report (a signed vulnerability statement when the policy names signers) decides: findings over a threshold are a violation. */
export function scanGate(req: ScanReq, facts: EvidenceFacts, maxAge: number, now: Date): GateResult {
  const rule = ruleOf(req, maxAge);
  const base = { name: req.name, required: req.required, rule };
  if (req.signers.length) {
    const g = signedGate(req, facts, maxAge, now, 'vulnerability report', 'vulnerability scan');
    if (!g.pass) return g.result!;
    const c = g.pass.c;
    const v = afterVex(req, facts, vulnFindings(g.pass.predicate), {});
    const counts = v.counts;
    const more = { evidenceId: c.id, evidence: evidenceOf(c), considered: [...considered(g.judged, facts.keys), ...v.considered] };
    const over = overThresholds(req, counts);
    const who = `${describe(c, facts.keys)}, trusted as ${g.pass.rule}`;
    if (over.length)
      return {
        ...base,
        ...more,
        passed: false,
        violation: true,
        detail: `vulnerability scan ${c.id} (${who}) exceeds thresholds: ${over.join(', ')}${v.note}`,
      };
    return { ...base, ...more, passed: true, detail: `vulnerability report ${c.id} (${who}): ${summary(counts)}${unknownNote(req, counts)}${v.note}` };
  }
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
  const violation = (detail: string): GateResult => ({ ...base, passed: false, violation: true, detail, evidenceId: fresh.id, evidence: evidenceOf(fresh) });
  if (doc?.kind !== 'scan-report') return violation(`scan report ${fresh.id} is unreadable: not read`);
  if (doc.error !== undefined) return violation(`scan report ${fresh.id} is unreadable: ${doc.error}`);
  const reported = doc.counts as Partial<Counts> | undefined;
  if (!reported || typeof reported !== 'object') return violation(`scan report ${fresh.id} has no counts {critical, high, …}`);
  const v = afterVex(req, facts, doc.findings, reported);
  const counts = v.counts;
  const vexConsidered = v.considered.length ? { considered: v.considered } : {};
  const over = overThresholds(req, counts);
  if (over.length) return { ...violation(`vulnerability scan ${fresh.id} exceeds thresholds: ${over.join(', ')}${v.note}`), ...vexConsidered };
  return {
    ...base,
    passed: true,
    detail: `scan report ${fresh.id} (${describe(fresh, facts.keys)}; policy accepts unsigned): ${summary(counts)}${unknownNote(req, counts)}${v.note}`,
    evidenceId: fresh.id,
    evidence: evidenceOf(fresh),
    ...vexConsidered,
  };
}

/**
 * The newest fresh attestation of the predicate type that names the artifact and is signed by
 * one of the policy's signers (for SLSA provenance: by an allowed builder, from an allowed
 * source repository) passes. With no signers, an unsigned statement is enough.
 */
export function attestationGate(req: AttestationReq, facts: EvidenceFacts, maxAge: number, now: Date): GateResult {
  if (req.signers.length) {
    const g = signedGate(req, facts, maxAge, now, attestType(req.predicateType), 'attestation');
    if (!g.pass) return { ...g.result!, detail: g.result!.detail.replace(/^attestation not found/, 'attestation missing') };
    const c = g.pass.c;
    return {
      name: req.name,
      required: req.required,
      passed: true,
      detail: `${attestType(req.predicateType)} attestation ${c.id}, ${describe(c, facts.keys)}, trusted as ${g.pass.rule}`,
      evidenceId: c.id,
      evidence: evidenceOf(c),
      rule: ruleOf(req, maxAge),
      considered: considered(g.judged, facts.keys),
    };
  }
  const base = { name: req.name, required: req.required, rule: ruleOf(req, maxAge) };
  const hex = facts.artifactDigest.slice('sha256:'.length);
  const problems: string[] = [];
  for (const c of facts.candidates.filter(attestationFor(req))) {
    if (ageOf(c, now) > maxAge) {
      problems.push(`${c.id} is ${humanAge(ageOf(c, now))} old`);
      continue;
    }
    const doc = facts.documents[c.id];
    const check: StatementCheck | undefined = doc?.kind === 'attestation' ? doc.unsigned : undefined;
    if (!check) {
      problems.push(`${c.id}: not read`);
      continue;
    }
    if (!check.ok) {
      problems.push(`${c.id}: ${check.error}`);
      continue;
    }
    if (check.predicateType !== req.predicateType) continue;
    if (!check.subjectSha256.includes(hex)) {
      problems.push(`${c.id} does not name ${facts.artifactDigest} as its subject`);
      continue;
    }
    return {
      ...base,
      passed: true,
      detail: `${attestType(req.predicateType)} attestation ${c.id} (${describe(c, facts.keys)}; policy accepts unsigned)`,
      evidenceId: c.id,
      evidence: evidenceOf(c),
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
