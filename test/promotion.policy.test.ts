import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parsePolicyDocument, policyChecksum, DEFAULT_POLICY } from '../src/core/promotion/policy';
import { commandFor, attestType } from '../src/core/promotion/decide';
import { SLSA_PROVENANCE_V1, VULNS_V02, CYCLONEDX_BOM } from '../src/crypto/intoto';

describe('promotion policy documents', () => {
  it('YAML and JSON forms of the same policy validate to the same document and checksum', () => {
    const yaml = 'requirements:\n  - kind: sbom\n  - kind: scan-report\n    thresholds: { critical: 0, high: 2 }\nwaitDeadline: 6h\n';
    const json = JSON.stringify({ requirements: [{ kind: 'sbom' }, { kind: 'scan-report', thresholds: { critical: 0, high: 2 } }], waitDeadline: '6h' });
    const a = parsePolicyDocument(yaml);
    const b = parsePolicyDocument(json);
    expect(a).toEqual(b);
    expect(policyChecksum(a)).toBe(policyChecksum(b));
    expect(a.requirements[1]).toMatchObject({ name: 'vulnerability-scan', required: true, thresholds: { critical: 0, high: 2 } });
    // what `stella evidence policy show --format json` prints is accepted back
    expect(parsePolicyDocument(JSON.stringify({ promotion: a }))).toEqual(a);
  });

  it('refuses unknown fields, duplicate gate names and bad values with one clear line', () => {
    expect(() => parsePolicyDocument('autoGenerate: true\nautogenerate: true\n')).toThrow(/^invalid policy: \(root\): Unrecognized key/);
    expect(() => parsePolicyDocument('requirements:\n  - kind: sbom\n  - kind: sbom\n')).toThrow(/requirement names must be unique/);
    expect(() => parsePolicyDocument('requirements:\n  - kind: vex\n')).toThrow(/^invalid policy: requirements\.0\.kind/);
    expect(() => parsePolicyDocument('approvals: 0\n')).toThrow(/^invalid policy: approvals/);
    expect(() => parsePolicyDocument('- a\n- b\n')).toThrow(/must be a mapping/);
    expect(() => parsePolicyDocument('a: [')).toThrow(/not valid YAML or JSON/);
  });

  it('the default requires a signed CycloneDX SBOM and vulnerability report (stella or rootpack), no critical findings, and SLSA provenance signed by a RootPack key', () => {
    expect(DEFAULT_POLICY.requirements).toEqual([
      { kind: 'sbom', name: 'sbom', required: true, format: 'cyclonedx', predicateType: CYCLONEDX_BOM, signers: ['stella', 'rootpack'] },
      {
        kind: 'scan-report',
        name: 'vulnerability-scan',
        required: true,
        thresholds: { critical: 0 },
        unknownSeverity: 'block',
        predicateType: VULNS_V02,
        signers: ['stella', 'rootpack'],
      },
      { kind: 'attestation', name: 'provenance', required: true, predicateType: SLSA_PROVENANCE_V1, trustedSigner: true, signers: ['rootpack'] },
    ]);
  });

  it('missing evidence names the command that produces it', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    expect(commandFor(DEFAULT_POLICY.requirements[0]!, d, 'registry.example/app:1').command).toBe(
      'stella scan image --image registry.example/app:1 --sbom-only',
    );
    expect(commandFor(DEFAULT_POLICY.requirements[1]!, d, null, true).command).toBe(`stella scan image --image ${d} --force`);
    // Provenance comes from the builder: stella never signs it for an artifact it did not build.
    expect(commandFor(DEFAULT_POLICY.requirements[2]!, d, null)).toEqual({
      kind: 'attestation',
      predicateType: SLSA_PROVENANCE_V1,
      command: `stella attest import <provenance.dsse.json>  # the builder's signed SLSA provenance for ${d} (signer rootpack)`,
    });
    expect([attestType(CYCLONEDX_BOM), attestType(VULNS_V02)]).toEqual(['sbom', 'vuln']);
  });

  it('the alert rules file defines OrchestratorEvidenceMissing on the gauge the API exports', () => {
    const doc = parse(readFileSync(new URL('../ops/prometheus/orchestrator-alerts.yml', import.meta.url), 'utf8'));
    const rules = doc.groups.flatMap((g: { rules: { alert: string; expr: string }[] }) => g.rules);
    const rule = rules.find((r: { alert: string }) => r.alert === 'OrchestratorEvidenceMissing');
    expect(rule.expr).toContain('stella_promotions_waiting_evidence');
    expect(readFileSync(new URL('../src/core/promotion/observe.ts', import.meta.url), 'utf8')).toContain("name: 'stella_promotions_waiting_evidence'");
  });
});
