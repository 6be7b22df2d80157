/** The pure gate decisions (src/core/promotion/decide.ts) on fixture facts: no servers. */
import { describe, expect, it } from 'vitest';
import { CYCLONEDX_BOM, SLSA_PROVENANCE_V1, VULNS_V02 } from '../src/crypto/intoto';
import type { GateCandidate } from '../src/core/evidence/queries/promotion';
import {
  attestationGate,
  decideGates,
  documentsToRead,
  type DocumentFact,
  type EvidenceFacts,
  matchSigner,
  overThresholds,
  sbomGate,
  scanGate,
  slsaSources,
  vulnCounts,
} from '../src/core/promotion/decide';
import { DEFAULT_POLICY, parsePolicyDocument, pemSignerKey, type Requirement } from '../src/core/promotion/policy';
import { freshKey } from './support/promotion';

const NOW = new Date('2026-12-02T12:00:00Z');
const DAY = 86_400_000;
const HEX = 'ab'.repeat(32);
const DIGEST = `sha256:${HEX}`;
const STELLA = 's'.repeat(43);
const BUILDER = 'b'.repeat(43);
const STRANGER = 'x'.repeat(43);
const KEYS = { stella: [STELLA], rootpack: [BUILDER] };

const item = (id: string, kind: GateCandidate['kind'], ageMs: number, more: Partial<GateCandidate> = {}): GateCandidate => ({
  id,
  kind,
  mediaType: kind === 'sbom' ? 'application/vnd.cyclonedx+json' : kind === 'attestation' ? 'application/vnd.dsse.envelope.v1+json' : 'application/json',
  predicateType: kind === 'attestation' ? SLSA_PROVENANCE_V1 : null,
  createdAt: new Date(NOW.getTime() - ageMs),
  size: 100,
  provenance: 'uploaded',
  signer: null,
  ...more,
});
/** A statement stored signed by `signer` (provenance signed, or produced-by-stella for stella's key). */
const stmt = (id: string, predicateType: string, signer: string, ageMs = DAY, more: Partial<GateCandidate> = {}) =>
  item(id, 'attestation', ageMs, { predicateType, provenance: signer === STELLA ? 'produced-by-stella' : 'signed', signer, ...more });

const facts = (candidates: GateCandidate[], documents: Record<string, DocumentFact> = {}, imageRef: string | null = null): EvidenceFacts => ({
  artifactDigest: DIGEST,
  imageRef,
  candidates,
  documents,
  keys: KEYS,
});

const policy = (yaml: string) => parsePolicyDocument(yaml);
const req = <K extends Requirement['kind']>(p: { requirements: Requirement[] }, kind: K) =>
  p.requirements.find((r) => r.kind === kind) as Extract<Requirement, { kind: K }>;
const [sbomReq, scanReq, provReq] = [req(DEFAULT_POLICY, 'sbom'), req(DEFAULT_POLICY, 'scan-report'), req(DEFAULT_POLICY, 'attestation')];
const unsignedSbom = { ...sbomReq, signers: [] };
const unsignedScan = { ...scanReq, signers: [] };
const unsignedProv = { ...provReq, signers: [] };
const MAX = 30 * DAY;

/** What gather.ts finds in a statement whose signature still verifies (by `signers`). */
const verified = (predicateType: string, predicate: unknown = {}, signers: string[] = [], subjects = [HEX]): DocumentFact => {
  const ok = { ok: true as const, predicateType, subjectSha256: subjects, predicate };
  return { kind: 'attestation', unsigned: ok, trusted: { ...ok, signers } };
};
const provenance = (builderId = 'https://ci.example/builder', repo = 'git+https://github.com/example/app@refs/heads/main') => ({
  buildDefinition: { buildType: 't', externalParameters: { workflow: { repository: repo } }, resolvedDependencies: [{ uri: repo }] },
  runDetails: { builder: { id: builderId } },
});
const vulns = (severities: string[]) => ({
  scanner: {
    uri: 'u',
    db: { lastUpdate: NOW.toISOString() },
    result: severities.map((s, i) => ({ id: `CVE-${i}`, severity: [], annotations: s ? [{ severity: s }] : [] })),
  },
  metadata: {},
});

describe('signed requirements (the default policy)', () => {
  it('an unsigned SBOM upload never satisfies a requirement that names signers; the reason names it and the rule', () => {
    const g = sbomGate(sbomReq, facts([item('up', 'sbom', DAY)]), MAX, NOW);
    expect(g.passed).toBe(false);
    expect(g.detail).toBe(
      `SBOM not found: no ${CYCLONEDX_BOM} statement for ${DIGEST} signed by stella or rootpack: sbom up is unsigned (uploaded); policy requires signer stella or rootpack`,
    );
    expect(g.evidence).toEqual({ id: 'up', kind: 'sbom', provenance: 'uploaded', signer: null });
    expect(g.rule).toBe(`sbom "sbom"; signers stella or rootpack; predicateType ${CYCLONEDX_BOM}; maxAge 30d`);
    expect(g.considered?.[0]).toMatchObject({ id: 'up', accepted: false });
    expect(g.missing?.command).toBe(`stella scan image --image ${DIGEST} --sbom-only`);
  });

  it('a signed CycloneDX statement by a RootPack key or by stella (its own scan output) passes, naming signer and rule', () => {
    const byBuilder = sbomGate(sbomReq, facts([stmt('a', CYCLONEDX_BOM, BUILDER)], { a: verified(CYCLONEDX_BOM, {}, [BUILDER]) }), MAX, NOW);
    expect(byBuilder).toMatchObject({ passed: true, evidenceId: 'a', evidence: { provenance: 'signed', signer: BUILDER } });
    expect(byBuilder.detail).toMatch(/trusted as rootpack$/);
    const byStella = sbomGate(sbomReq, facts([stmt('s', `${CYCLONEDX_BOM}/v1.5`, STELLA)], { s: verified(CYCLONEDX_BOM, {}, [STELLA]) }), MAX, NOW);
    expect(byStella).toMatchObject({ passed: true, evidence: { provenance: 'produced-by-stella', signer: STELLA } });
    expect(byStella.detail).toMatch(/produced by stella .*trusted as stella$/);
  });

  it("stella's own output satisfies only requirements that trust stella; stella's key over uploaded data counts as neither", () => {
    const own = stmt('s', CYCLONEDX_BOM, STELLA);
    expect(matchSigner(['rootpack'], own, KEYS)).toBeNull();
    expect(matchSigner(['stella'], own, KEYS)).toBe('stella');
    const claim = { ...own, provenance: 'signed' as const };
    expect(matchSigner(['stella', 'rootpack'], claim, KEYS)).toBeNull();
    expect(matchSigner([STELLA], claim, KEYS)).toBe(`key ${STELLA}`);
    expect(matchSigner(['stella', 'rootpack'], item('u', 'sbom', DAY), KEYS)).toBeNull();
    const g = sbomGate({ ...sbomReq, signers: ['rootpack'] }, facts([own], { s: verified(CYCLONEDX_BOM, {}, [STELLA]) }), MAX, NOW);
    expect(g.passed).toBe(false);
    expect(g.detail).toContain(`sbom s is produced by stella (key ${STELLA.slice(0, 12)}); policy requires signer rootpack`);
  });

  it('a PEM key named by the policy is matched by its key id', () => {
    const k = freshKey();
    expect(pemSignerKey(k.pem)?.kid).toBe(k.kid);
    expect(matchSigner([{ pem: k.pem }], stmt('p', SLSA_PROVENANCE_V1, k.kid), KEYS)).toBe(`pem ${k.kid}`);
    expect(matchSigner([{ pem: k.pem }], stmt('p', SLSA_PROVENANCE_V1, STRANGER), KEYS)).toBeNull();
  });

  it('a key revoked (or expired) since ingest no longer counts', () => {
    const g = attestationGate(provReq, facts([stmt('a', SLSA_PROVENANCE_V1, BUILDER)], { a: verified(SLSA_PROVENANCE_V1, provenance(), []) }), MAX, NOW);
    expect(g.passed).toBe(false);
    expect(g.detail).toContain('no longer verifies');
  });

  it('stale signed evidence is missing, with --force', () => {
    const g = sbomGate(sbomReq, facts([stmt('old', CYCLONEDX_BOM, BUILDER, 40 * DAY)]), MAX, NOW);
    expect(g.detail).toContain('sbom old is 40d old (max 30d)');
    expect(g.missing?.command).toContain('--force');
  });

  it('the scan gate counts a signed vulnerability report; unknown severity blocks by default, warns, is ignored or counts as a severity', () => {
    const p = policy('requirements:\n  - kind: scan-report\n    thresholds: { critical: 0, high: 0 }\n');
    const r = req(p, 'scan-report');
    const c = [stmt('v', VULNS_V02, BUILDER)];
    const blocked = scanGate(r, facts(c, { v: verified(VULNS_V02, vulns(['', '', 'low']), [BUILDER]) }), MAX, NOW);
    expect(blocked).toMatchObject({ passed: false, violation: true, evidenceId: 'v' });
    expect(blocked.detail).toMatch(/exceeds thresholds: 2 of unknown severity \(policy unknownSeverity: block\)$/);
    expect(blocked.rule).toContain('unknown severity blocks');
    const warned = scanGate({ ...r, unknownSeverity: 'warn' }, facts(c, { v: verified(VULNS_V02, vulns(['', 'low']), [BUILDER]) }), MAX, NOW);
    expect(warned.passed).toBe(true);
    expect(warned.detail).toMatch(/warning: 1 finding\(s\) of unknown severity \(policy unknownSeverity: warn\)$/);
    const g = scanGate({ ...r, unknownSeverity: 'high' }, facts(c, { v: verified(VULNS_V02, vulns(['', '', 'low']), [BUILDER]) }), MAX, NOW);
    expect(g).toMatchObject({ passed: false, violation: true, evidenceId: 'v' });
    expect(g.detail).toMatch(/exceeds thresholds: 2 high \(max 0, including 2 of unknown severity\)$/);
    const ignoring = scanGate({ ...r, unknownSeverity: 'ignore' }, facts(c, { v: verified(VULNS_V02, vulns(['', 'low']), [BUILDER]) }), MAX, NOW);
    expect(ignoring).toMatchObject({ passed: true });
    expect(ignoring.detail).toMatch(/critical=0 high=0 medium=0 low=1 unknown=1$/);
    // With the default thresholds (critical only), unknown can be told to count as critical.
    expect(scanGate({ ...scanReq, unknownSeverity: 'critical' }, facts(c, { v: verified(VULNS_V02, vulns(['']), [BUILDER]) }), MAX, NOW).violation).toBe(true);
  });

  it('vulnerability counts read severity names, CVSS scores and annotations; the rest is unknown', () => {
    const pred = {
      scanner: {
        result: [
          { severity: [{ method: 'CVSSv3', score: '9.8' }] },
          { severity: [{ method: 'CVSSv3', score: '5.0' }] },
          { severity: [{ method: 'severity', score: 'HIGH' }] },
          { annotations: [{ severity: 'moderate' }] },
          { severity: [{ method: 'other', score: '??' }] },
        ],
      },
    };
    expect(vulnCounts(pred)).toEqual({ critical: 1, high: 1, medium: 2, low: 0, unknown: 1 });
    expect(overThresholds({ ...scanReq, unknownSeverity: 'high', thresholds: { high: 0 } }, { high: 0, unknown: 1 })).toEqual([
      '1 high (max 0, including 1 of unknown severity)',
    ]);
  });

  it('SLSA provenance: builder id and source repository are checked as slsa-verifier does', () => {
    const p = policy('requirements:\n  - kind: attestation\n    builderIds: [https://ci.example/builder]\n    sourceRepos: [https://github.com/example/app]\n');
    const r = req(p, 'attestation');
    const c = [stmt('a', SLSA_PROVENANCE_V1, BUILDER)];
    expect(attestationGate(r, facts(c, { a: verified(SLSA_PROVENANCE_V1, provenance(), [BUILDER]) }), MAX, NOW).passed).toBe(true);
    const evil = attestationGate(r, facts(c, { a: verified(SLSA_PROVENANCE_V1, provenance('https://evil.example/builder'), [BUILDER]) }), MAX, NOW);
    expect(evil.passed).toBe(false);
    expect(evil.detail).toContain('builder.id "https://evil.example/builder" is not allowed (policy builderIds: https://ci.example/builder)');
    const fork = attestationGate(
      r,
      facts(c, { a: verified(SLSA_PROVENANCE_V1, provenance(undefined, 'git+https://github.com/fork/app'), [BUILDER]) }),
      MAX,
      NOW,
    );
    expect(fork.detail).toContain('source repository git+https://github.com/fork/app is not allowed');
    expect(slsaSources(provenance())).toEqual(['git+https://github.com/example/app@refs/heads/main']);
  });

  it('a signed statement naming another artifact does not count', () => {
    const c = [stmt('a', SLSA_PROVENANCE_V1, BUILDER)];
    const g = attestationGate(provReq, facts(c, { a: verified(SLSA_PROVENANCE_V1, provenance(), [BUILDER], ['cd'.repeat(32)]) }), MAX, NOW);
    expect(g.detail).toContain(`does not name ${DIGEST} as its subject`);
    expect(g.missing?.command).toMatch(/^stella attest import <provenance\.dsse\.json>/);
  });
});

describe('requirements that accept unsigned evidence (signers: [])', () => {
  it('passes on the newest fresh CycloneDX SBOM', () => {
    const g = sbomGate(unsignedSbom, facts([item('s2', 'sbom', DAY), item('s1', 'sbom', 2 * DAY)]), MAX, NOW);
    expect(g).toMatchObject({ passed: true, detail: 'CycloneDX SBOM s2 (1d old, unsigned (uploaded); policy accepts unsigned)', evidenceId: 's2' });
  });

  it('is missing with --force when the only CycloneDX SBOM is stale', () => {
    const g = sbomGate(unsignedSbom, facts([item('old', 'sbom', 40 * DAY)], {}, 'registry.example/app:1'), MAX, NOW);
    expect(g.detail).toBe('SBOM not found: newest CycloneDX SBOM old is 40d old (max 30d)');
    expect(g.missing).toEqual({ kind: 'sbom', command: 'stella scan image --image registry.example/app:1 --sbom-only --force' });
  });

  it('reads generic JSON to recognise CycloneDX, and names a foreign SBOM', () => {
    const json = item('j', 'sbom', DAY, { mediaType: 'application/json' });
    const spdx = item('x', 'sbom', DAY, { mediaType: 'application/spdx+json' });
    expect(sbomGate(unsignedSbom, facts([json], { j: { kind: 'sbom', cyclonedx: true } }), MAX, NOW).passed).toBe(true);
    const g = sbomGate(unsignedSbom, facts([spdx], { x: { kind: 'sbom', cyclonedx: false } }), MAX, NOW);
    expect(g.detail).toBe(`SBOM not found: no CycloneDX SBOM for ${DIGEST} (an SBOM x exists but is not CycloneDX: application/spdx+json)`);
  });

  it('scan report: thresholds, violations, unreadable reports, missing', () => {
    const report = item('r', 'scan-report', DAY);
    const counts = (c: Record<string, number>): Record<string, DocumentFact> => ({ r: { kind: 'scan-report', counts: c } });
    expect(scanGate(unsignedScan, facts([report], counts({ critical: 0, high: 3 })), MAX, NOW)).toMatchObject({ passed: true, evidenceId: 'r' });
    expect(scanGate(unsignedScan, facts([report], counts({ critical: 2 })), MAX, NOW)).toMatchObject({
      passed: false,
      violation: true,
      detail: 'vulnerability scan r exceeds thresholds: 2 critical (max 0)',
    });
    expect(scanGate(unsignedScan, facts([report], { r: { kind: 'scan-report', error: 'Unexpected token' } }), MAX, NOW).detail).toBe(
      'scan report r is unreadable: Unexpected token',
    );
    expect(scanGate(unsignedScan, facts([]), MAX, NOW)).toMatchObject({
      passed: false,
      missing: { kind: 'scan-report', command: `stella scan image --image ${DIGEST}` },
    });
  });

  it('attestations: an unsigned statement of the type naming the artifact is enough', () => {
    const ok = { ok: true as const, predicateType: SLSA_PROVENANCE_V1, subjectSha256: [HEX] };
    const g = attestationGate(unsignedProv, facts([item('a', 'attestation', DAY)], { a: { kind: 'attestation', unsigned: ok } }), MAX, NOW);
    expect(g).toMatchObject({ passed: true, evidenceId: 'a' });
  });
});

describe('policy and documentsToRead', () => {
  it('decides every requirement in policy order, with per-requirement maxAge', () => {
    const p = policy('requirements:\n  - kind: sbom\n    maxAge: 1h\n    signers: []\n  - kind: scan-report\n    signers: []\n    thresholds: { high: 1 }\n');
    const f = facts([item('s', 'sbom', 2 * 3_600_000), item('r', 'scan-report', DAY)], { r: { kind: 'scan-report', counts: { critical: 5, high: 1 } } });
    const gates = decideGates(p, f, NOW);
    expect(gates.map((g) => [g.name, g.passed])).toEqual([
      ['sbom', false],
      ['vulnerability-scan', true],
    ]);
  });

  it('reads (and verifies again) only the statements whose recorded signer the policy accepts', () => {
    const candidates = [
      item('s-up', 'sbom', DAY),
      stmt('s-ok', CYCLONEDX_BOM, BUILDER),
      stmt('s-stranger', CYCLONEDX_BOM, STRANGER),
      stmt('v-ok', VULNS_V02, STELLA),
      stmt('a-ok', SLSA_PROVENANCE_V1, BUILDER),
      stmt('a-stella', SLSA_PROVENANCE_V1, STELLA),
      stmt('a-stale', SLSA_PROVENANCE_V1, BUILDER, 40 * DAY),
    ];
    const read = documentsToRead(DEFAULT_POLICY, candidates, NOW, KEYS);
    expect(read.map((d) => [d.candidate.id, d.trusted])).toEqual([
      ['s-ok', true],
      ['v-ok', true],
      ['a-ok', true],
    ]);
  });

  it('the default names signers; legacy trustedSigner folds into them', () => {
    expect(sbomReq.signers).toEqual(['stella', 'rootpack']);
    expect(scanReq).toMatchObject({ signers: ['stella', 'rootpack'], unknownSeverity: 'block', predicateType: VULNS_V02 });
    expect(provReq.signers).toEqual(['rootpack']);
    expect(req(policy('requirements:\n  - kind: attestation\n    trustedSigner: false\n'), 'attestation').signers).toEqual([]);
    expect(() => policy('requirements:\n  - kind: sbom\n    signers: [somebody]\n')).toThrow(/signers\.0/);
    expect(() => policy('requirements:\n  - kind: sbom\n    signers: [{ pem: "not a key" }]\n')).toThrow(/PEM public key/);
    expect(() => policy(`requirements:\n  - kind: attestation\n    predicateType: ${CYCLONEDX_BOM}\n    builderIds: [x]\n`)).toThrow(/SLSA provenance only/);
  });
});
