/** The pure gate decisions (src/core/promotion/decide.ts) on fixture facts: no servers. */
import { describe, expect, it } from 'vitest';
import { CYCLONEDX_BOM, SLSA_PROVENANCE_V1 } from '../src/crypto/intoto';
import type { GateCandidate } from '../src/core/evidence/queries/promotion';
import { attestationGate, decideGates, documentsToRead, type DocumentFact, type EvidenceFacts, sbomGate, scanGate } from '../src/core/promotion/decide';
import { DEFAULT_POLICY, parsePolicyDocument } from '../src/core/promotion/policy';

const NOW = new Date('2026-12-02T12:00:00Z');
const DAY = 86_400_000;
const HEX = 'ab'.repeat(32);
const DIGEST = `sha256:${HEX}`;

const item = (id: string, kind: GateCandidate['kind'], ageMs: number, more: Partial<GateCandidate> = {}): GateCandidate => ({
  id,
  kind,
  mediaType: kind === 'sbom' ? 'application/vnd.cyclonedx+json' : kind === 'attestation' ? 'application/vnd.dsse.envelope.v1+json' : 'application/json',
  predicateType: kind === 'attestation' ? SLSA_PROVENANCE_V1 : null,
  createdAt: new Date(NOW.getTime() - ageMs),
  size: 100,
  ...more,
});

const facts = (candidates: GateCandidate[], documents: Record<string, DocumentFact> = {}, imageRef: string | null = null): EvidenceFacts => ({
  artifactDigest: DIGEST,
  imageRef,
  candidates,
  documents,
});

const [sbomReq, scanReq, provReq] = DEFAULT_POLICY.requirements as [
  Extract<(typeof DEFAULT_POLICY.requirements)[number], { kind: 'sbom' }>,
  Extract<(typeof DEFAULT_POLICY.requirements)[number], { kind: 'scan-report' }>,
  Extract<(typeof DEFAULT_POLICY.requirements)[number], { kind: 'attestation' }>,
];
const MAX = 30 * DAY;
const signed = (predicateType = SLSA_PROVENANCE_V1, subjects = [HEX]): DocumentFact => {
  const ok = { ok: true as const, predicateType, subjectSha256: subjects };
  return { kind: 'attestation', unsigned: ok, trusted: ok };
};

describe('sbomGate', () => {
  it('passes on the newest fresh CycloneDX SBOM', () => {
    const g = sbomGate(sbomReq, facts([item('s2', 'sbom', DAY), item('s1', 'sbom', 2 * DAY)]), MAX, NOW);
    expect(g).toEqual({ name: 'sbom', required: true, passed: true, detail: 'CycloneDX SBOM s2 (1d old)', evidenceId: 's2' });
  });

  it('is missing with --force when the only CycloneDX SBOM is stale', () => {
    const g = sbomGate(sbomReq, facts([item('old', 'sbom', 40 * DAY)], {}, 'registry.example/app:1'), MAX, NOW);
    expect(g.passed).toBe(false);
    expect(g.detail).toBe('SBOM not found: newest CycloneDX SBOM old is 40d old (max 30d)');
    expect(g.missing).toEqual({ kind: 'sbom', command: 'stella scan image --image registry.example/app:1 --sbom-only --force' });
  });

  it('reads generic JSON to recognise CycloneDX, and names a foreign SBOM', () => {
    const json = item('j', 'sbom', DAY, { mediaType: 'application/json' });
    const spdx = item('x', 'sbom', DAY, { mediaType: 'application/spdx+json' });
    expect(sbomGate(sbomReq, facts([json], { j: { kind: 'sbom', cyclonedx: true } }), MAX, NOW).passed).toBe(true);
    const g = sbomGate(sbomReq, facts([spdx], { x: { kind: 'sbom', cyclonedx: false } }), MAX, NOW);
    expect(g.detail).toBe(`SBOM not found: no CycloneDX SBOM for ${DIGEST} (an SBOM x exists but is not CycloneDX: application/spdx+json)`);
    expect(g.missing?.command).toBe(`stella scan image --image ${DIGEST} --sbom-only`);
  });
});

describe('scanGate', () => {
  const report = item('r', 'scan-report', DAY);
  const counts = (c: Record<string, number>): Record<string, DocumentFact> => ({ r: { kind: 'scan-report', counts: c } });

  it('passes within the thresholds and summarises the counts', () => {
    const g = scanGate(scanReq, facts([report], counts({ critical: 0, high: 3 })), MAX, NOW);
    expect(g).toMatchObject({ passed: true, detail: 'scan report r: critical=0 high=3 medium=0 low=0', evidenceId: 'r' });
  });

  it('is a violation (not missing) when findings exceed a threshold', () => {
    const g = scanGate(scanReq, facts([report], counts({ critical: 2 })), MAX, NOW);
    expect(g).toMatchObject({ passed: false, violation: true, detail: 'vulnerability scan r exceeds thresholds: 2 critical (max 0)' });
    expect(g.missing).toBeUndefined();
  });

  it('an unreadable report or one without counts is a violation', () => {
    expect(scanGate(scanReq, facts([report], { r: { kind: 'scan-report', error: 'Unexpected token' } }), MAX, NOW).detail).toBe(
      'scan report r is unreadable: Unexpected token',
    );
    expect(scanGate(scanReq, facts([report], { r: { kind: 'scan-report', counts: undefined } }), MAX, NOW)).toMatchObject({
      violation: true,
      detail: 'scan report r has no counts {critical, high, …}',
    });
  });

  it('missing when none or only stale reports exist', () => {
    expect(scanGate(scanReq, facts([]), MAX, NOW)).toMatchObject({
      passed: false,
      detail: `vulnerability scan not found: no scan report for ${DIGEST}`,
      missing: { kind: 'scan-report', command: `stella scan image --image ${DIGEST}` },
    });
    expect(scanGate(scanReq, facts([item('r', 'scan-report', 31 * DAY)]), MAX, NOW).missing?.command).toBe(`stella scan image --image ${DIGEST} --force`);
  });
});

describe('attestationGate', () => {
  it('passes on a fresh attestation signed by a trusted key that names the artifact', () => {
    const g = attestationGate(provReq, facts([item('a', 'attestation', DAY)], { a: signed() }), MAX, NOW);
    expect(g).toMatchObject({ passed: true, detail: 'slsa-provenance attestation a signed by a trusted key', evidenceId: 'a' });
  });

  it('lists what was wrong with each candidate when none qualifies', () => {
    const untrusted: DocumentFact = {
      kind: 'attestation',
      unsigned: { ok: true, predicateType: SLSA_PROVENANCE_V1, subjectSha256: [HEX] },
      trusted: { ok: false, error: 'attestation has no valid trusted signature (deadbeef: unknown key)' },
    };
    const g = attestationGate(
      provReq,
      facts([item('u', 'attestation', DAY), item('o', 'attestation', 40 * DAY), item('w', 'attestation', DAY)], {
        u: untrusted,
        w: signed(SLSA_PROVENANCE_V1, ['cd'.repeat(32)]),
      }),
      MAX,
      NOW,
    );
    expect(g.passed).toBe(false);
    expect(g.detail).toBe(
      `attestation missing: no valid ${SLSA_PROVENANCE_V1} attestation for ${DIGEST}: u: attestation has no valid trusted signature (deadbeef: unknown key); o is 40d old; w does not name ${DIGEST} as its subject`,
    );
    expect(g.missing).toEqual({
      kind: 'attestation',
      predicateType: SLSA_PROVENANCE_V1,
      command: `stella attest create --subject ${DIGEST} --type slsa-provenance`,
    });
  });

  it('a verified statement of another predicate type is named; unsigned ones of another type are skipped', () => {
    const other = item('p', 'attestation', DAY, { predicateType: null });
    const trusted = attestationGate(provReq, facts([other], { p: signed(CYCLONEDX_BOM) }), MAX, NOW);
    expect(trusted.detail).toContain(`p: predicateType is ${CYCLONEDX_BOM}, expected ${SLSA_PROVENANCE_V1}`);
    const lax = attestationGate({ ...provReq, trustedSigner: false }, facts([other], { p: signed(CYCLONEDX_BOM) }), MAX, NOW);
    expect(lax.detail).toBe(`attestation missing: no ${SLSA_PROVENANCE_V1} attestation for ${DIGEST}`);
  });
});

describe('decideGates and documentsToRead', () => {
  it('decides every requirement in policy order, with per-requirement maxAge', () => {
    const policy = parsePolicyDocument('requirements:\n  - kind: sbom\n    maxAge: 1h\n  - kind: scan-report\n    thresholds: { high: 1 }\n');
    const f = facts([item('s', 'sbom', 2 * 3_600_000), item('r', 'scan-report', DAY)], { r: { kind: 'scan-report', counts: { critical: 5, high: 1 } } });
    const gates = decideGates(policy, f, NOW);
    expect(gates.map((g) => [g.name, g.passed])).toEqual([
      ['sbom', false],
      ['vulnerability-scan', true],
    ]);
    expect(gates[0]!.detail).toBe('SBOM not found: newest CycloneDX SBOM s is 2h old (max 1h)');
  });

  it('reads only the documents a gate looks at', () => {
    const candidates = [
      item('s-new', 'sbom', DAY),
      item('s-json', 'sbom', 2 * DAY, { mediaType: 'application/json' }),
      item('r-new', 'scan-report', DAY),
      item('r-old', 'scan-report', 2 * DAY),
      item('a-fresh', 'attestation', DAY),
      item('a-stale', 'attestation', 40 * DAY),
      item('a-other', 'attestation', DAY, { predicateType: CYCLONEDX_BOM }),
    ];
    const read = documentsToRead(DEFAULT_POLICY, candidates, NOW);
    expect(read.map((d) => [d.candidate.id, d.trusted])).toEqual([
      ['r-new', false],
      ['a-fresh', true],
    ]);
  });
});
