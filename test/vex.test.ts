import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_PURPOSE } from '../src/core/keys';
import { setPolicy } from '../src/core/promotion/policy';
import { makeStatement, type Statement, subject, VULNS_V02, vulnsPredicate } from '../src/crypto/intoto';
import { mintToken } from '../src/crypto/tokens';
import { sha256Digest } from '../src/lib/hash';
import { applyVex, parseVex, purlMatches, VexError } from '../src/scanner/vex';
import { apiFor } from './support/api';
import { harness, type Harness } from './support/context';
import { builderKey, envelopeOf, freshKey, type TestKey, trustKey } from './support/promotion';

const OPENVEX = 'https://openvex.dev/ns/v0.2.0';
const PURL = 'pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12';
const ART = { digest: `sha256:${'a'.repeat(64)}` };

const openvex = (statements: unknown[], timestamp = '2026-11-01T00:00:00Z') => ({
  '@context': OPENVEX,
  '@id': `https://vex.example/${randomBytes(4).toString('hex')}`,
  author: 'vendor security team',
  timestamp,
  version: 1,
  statements,
});

describe('VEX parsing and application (pure)', () => {
  it('OpenVEX not_affected with a justification suppresses; without one it only annotates', () => {
    const sts = parseVex(
      openvex([
        {
          vulnerability: { name: 'CVE-2026-0001', aliases: ['GHSA-xxxx'] },
          products: [{ '@id': `pkg:oci/app@${ART.digest}`, subcomponents: [{ '@id': 'pkg:deb/debian/openssl' }] }],
          status: 'not_affected',
          justification: 'vulnerable_code_not_in_execute_path',
        },
        { vulnerability: { name: 'CVE-2026-0002' }, products: [{ '@id': 'pkg:deb/debian/openssl' }], status: 'not_affected' },
      ]),
      { evidenceId: 'e1' },
    );
    expect(sts[0]).toMatchObject({
      format: 'openvex',
      vulnerability: 'CVE-2026-0001',
      subcomponents: ['pkg:deb/debian/openssl'],
      source: { evidenceId: 'e1' },
    });
    const out = applyVex(
      [
        { id: 'CVE-2026-0001', purl: PURL },
        { id: 'CVE-2026-0002', purl: PURL },
        { id: 'CVE-2026-0003', purl: PURL },
        { id: 'CVE-2026-0001', purl: 'pkg:deb/debian/curl@8.0.0' },
      ],
      sts,
      ART,
    );
    expect(out.map((o) => o.suppressed)).toEqual([true, false, false, false]);
    expect(out[0]!.statements[0]!.effect).toBe('not affected (vulnerable_code_not_in_execute_path)');
    expect(out[1]).toMatchObject({ status: 'not_affected', suppressed: false });
    expect(out[1]!.statements[0]!.effect).toMatch(/without a justification/);
    expect(out[2]!.statements).toEqual([]);
  });

  it('matches by alias; fixed suppresses only the named version; under_investigation annotates; the latest statement decides', () => {
    const sts = parseVex(
      openvex([
        { vulnerability: { name: 'GHSA-aaaa' }, products: ['pkg:deb/debian/openssl@3.0.11-1~deb12u2'], status: 'fixed', timestamp: '2026-11-02T00:00:00Z' },
        { vulnerability: { name: 'CVE-2026-0005' }, products: ['pkg:deb/debian/openssl@3.0.12-1'], status: 'fixed' },
        { vulnerability: { name: 'CVE-2026-0006' }, products: [{ '@id': ART.digest }], status: 'under_investigation' },
        // Later statements override: affected after not_affected.
        {
          vulnerability: { name: 'CVE-2026-0007' },
          products: ['pkg:deb/debian/openssl'],
          status: 'not_affected',
          justification: 'component_not_present',
          timestamp: '2026-11-01T00:00:00Z',
        },
        { vulnerability: { name: 'CVE-2026-0007' }, products: ['pkg:deb/debian/openssl'], status: 'affected', timestamp: '2026-11-03T00:00:00Z' },
      ]),
    );
    const out = applyVex(
      [
        { id: 'CVE-2026-0004', aliases: ['GHSA-aaaa'], purl: PURL },
        { id: 'CVE-2026-0005', purl: PURL },
        { id: 'CVE-2026-0006', purl: PURL },
        { id: 'CVE-2026-0007', purl: PURL },
      ],
      sts,
      ART,
    );
    expect(out.map((o) => [o.status, o.suppressed])).toEqual([
      ['fixed', true],
      [undefined, false], // another version is named: the statement is not about this package version
      ['under_investigation', false],
      ['affected', false],
    ]);
    expect(out[3]!.statements.map((s) => s.statement.status)).toEqual(['not_affected', 'affected']);
  });

  it('CycloneDX VEX: analysis states map to VEX statuses; affects refs resolve through bom-refs', () => {
    const sts = parseVex({
      bomFormat: 'CycloneDX',
      specVersion: '1.6',
      components: [{ 'bom-ref': 'ossl', name: 'openssl', purl: 'pkg:deb/debian/openssl@3.0.11-1~deb12u2' }],
      vulnerabilities: [
        { id: 'CVE-2026-0001', analysis: { state: 'not_affected', justification: 'code_not_reachable', detail: 'not linked' }, affects: [{ ref: 'ossl' }] },
        { id: 'CVE-2026-0002', analysis: { state: 'in_triage' }, affects: [{ ref: 'ossl' }] },
        { id: 'CVE-2026-0003', analysis: { state: 'resolved' }, affects: [{ ref: 'ossl' }] },
        { id: 'CVE-2026-0009' }, // a finding, not a statement
      ],
    });
    expect(sts.map((s) => [s.vulnerability, s.status])).toEqual([
      ['CVE-2026-0001', 'not_affected'],
      ['CVE-2026-0002', 'under_investigation'],
      ['CVE-2026-0003', 'fixed'],
    ]);
    const out = applyVex(
      ['CVE-2026-0001', 'CVE-2026-0002', 'CVE-2026-0003'].map((id) => ({ id, purl: PURL })),
      sts,
      ART,
    );
    expect(out.map((o) => o.suppressed)).toEqual([true, false, true]);
  });

  it('purls compare type, namespace, name and version (qualifiers ignored, epochs decoded); junk is refused', () => {
    expect(purlMatches('pkg:deb/debian/openssl', PURL)).toEqual({ match: true, exactVersion: false });
    expect(purlMatches('pkg:deb/openssl@3.0.11-1~deb12u2', PURL)).toEqual({ match: true, exactVersion: true });
    expect(purlMatches('pkg:deb/ubuntu/openssl', PURL).match).toBe(false);
    expect(purlMatches('pkg:deb/debian/bash@1%3A5.2', 'pkg:deb/debian/bash@1:5.2').exactVersion).toBe(true);
    expect(purlMatches('pkg:pypi/Foo_Bar', 'pkg:pypi/foo-bar@1.0').match).toBe(true);
    expect(() => parseVex({ hello: 'world' })).toThrow(VexError);
    expect(() => parseVex(openvex([{ vulnerability: { name: 'CVE-1' }, status: 'maybe' }]))).toThrow(/unknown status "maybe"/);
  });
});

describe('VEX in the promotion vulnerability gate (real Temporal, PostgreSQL)', () => {
  let h: Harness;
  let app: FastifyInstance;
  let auth: { authorization: string };
  let builder: TestKey;
  let vendor: TestKey;
  let stranger: TestKey;
  const TENANT = 'default';
  const ENV = 'vex-prod';

  const api = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const r = await app.inject({ method, url, headers: auth, ...(payload !== undefined ? { payload: payload as never } : {}) });
    return { status: r.statusCode, body: r.json() as any };
  };
  const signedUpload = async (st: Statement, kind: string, key: TestKey, digest: string) => {
    const r = await app.inject({
      method: 'POST',
      url: `/evidence?${new URLSearchParams({ kind, artifact: digest })}`,
      headers: { ...auth, 'content-type': 'application/vnd.dsse.envelope.v1+json' },
      payload: await envelopeOf(st, key),
    });
    expect(r.statusCode, r.body).toBe(201);
    return r.json() as { id: string };
  };
  /** A signed vulnerability report with one critical finding in openssl. */
  const report = (d: string) =>
    makeStatement(
      [subject('registry.example/app', d)],
      VULNS_V02,
      vulnsPredicate({
        scanner: { uri: 'https://scanner.example', version: '1' },
        db: { lastUpdate: new Date() },
        result: [{ id: 'CVE-2026-0001', severity: [{ method: 'CVSSv3', score: '9.8' }], annotations: [{ purl: PURL, severity: 'critical' }] }],
        scanStartedOn: new Date(),
        scanFinishedOn: new Date(),
      }),
    );
  const vexStatement = (d: string) =>
    makeStatement(
      [subject('registry.example/app', d)],
      OPENVEX,
      openvex([
        {
          vulnerability: { name: 'CVE-2026-0001' },
          products: [{ '@id': `pkg:oci/app@${d}`, subcomponents: [{ '@id': 'pkg:deb/debian/openssl' }] }],
          status: 'not_affected',
          justification: 'vulnerable_code_not_in_execute_path',
        },
      ]),
    );
  const promote = (d: string) => api('POST', '/promotions?wait=30', { artifact: d, to: ENV });
  const gateOf = (body: any) => body.gates.find((g: any) => g.name === 'vulnerability-scan');

  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
    app = await apiFor(h);
    const token = await mintToken(h.ctx.keys, { sub: 'ci-pipeline', tenant: TENANT, scopes: ['admin'], ttlSeconds: 3600 }, { purpose: TOKEN_PURPOSE });
    auth = { authorization: `Bearer ${token}` };
    builder = await builderKey(h.ctx);
    // Both VEX keys are trusted through the RootPack (ingest verifies them); only the vendor's signs VEX the policy accepts.
    vendor = freshKey();
    stranger = freshKey();
    await trustKey(h.ctx, vendor);
    await trustKey(h.ctx, stranger);
    await setPolicy(h.ctx.db, {
      tenant: TENANT,
      env: ENV,
      text: ['requirements:', '  - kind: scan-report', '    thresholds: { critical: 0 }', `    vexSigners: [${vendor.kid}]`, 'waitDeadline: 1h'].join('\n'),
      actor: 'test',
    });
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('a not_affected VEX from a trusted signer unblocks the promotion the finding blocked; the same VEX from an untrusted signer does not', async () => {
    const d = sha256Digest(`registry.example/app@${randomBytes(8).toString('hex')}`);
    await signedUpload(report(d), 'scan-report', builder, d);

    const blocked = await promote(d);
    expect(blocked.body).toMatchObject({ final: true, state: 'failed' });
    expect(blocked.body.reason).toContain('1 critical (max 0)');

    // The same VEX signed by a key the policy does not trust for VEX: ignored, with the reason in the status.
    const untrusted = await signedUpload(vexStatement(d), 'vex', stranger, d);
    const still = await promote(d);
    expect(still.body).toMatchObject({ final: true, state: 'failed' });
    const g1 = gateOf((await api('GET', `/promotions/${still.body.id}`)).body);
    expect(g1.detail).toContain('1 critical (max 0)');
    expect(g1.detail).toContain(`VEX ${untrusted.id} is signed by key ${stranger.kid.slice(0, 12)}; policy trusts VEX signed by key ${vendor.kid}; ignored`);
    expect(g1.considered).toContainEqual(expect.objectContaining({ id: untrusted.id, kind: 'vex', accepted: false }));
    expect(g1.rule).toContain(`VEX signers key ${vendor.kid}`);

    // Signed by the trusted vendor key: the finding is suppressed and the promotion goes through.
    const trusted = await signedUpload(vexStatement(d), 'vex', vendor, d);
    const promoted = await promote(d);
    expect(promoted.body.state, JSON.stringify(promoted.body)).toBe('promoted');
    const g2 = gateOf((await api('GET', `/promotions/${promoted.body.id}`)).body);
    expect(g2.passed).toBe(true);
    expect(g2.detail).toContain('critical=0');
    expect(g2.detail).toContain(
      `1 finding(s) suppressed by VEX [CVE-2026-0001 in ${PURL}: not affected (vulnerable_code_not_in_execute_path) (VEX ${trusted.id})]`,
    );
    expect(g2.considered).toContainEqual(expect.objectContaining({ id: trusted.id, kind: 'vex', accepted: true, rule: `VEX signer key ${vendor.kid}` }));
  });

  it('unsigned VEX never suppresses; a signed CycloneDX VEX does; unknown severity blocks by default', async () => {
    const d = sha256Digest(`registry.example/app@${randomBytes(8).toString('hex')}`);
    await signedUpload(report(d), 'scan-report', builder, d);
    const raw = await app.inject({
      method: 'POST',
      url: `/evidence?${new URLSearchParams({ kind: 'vex', artifact: d })}`,
      headers: { ...auth, 'content-type': 'application/json' },
      payload: JSON.stringify(vexStatement(d).predicate),
    });
    expect(raw.statusCode).toBe(201);
    const r = await promote(d);
    expect(r.body.state).toBe('failed');
    const g = gateOf((await api('GET', `/promotions/${r.body.id}`)).body);
    expect(g.detail).toContain(`VEX ${raw.json().id} is unsigned (uploaded); policy trusts VEX signed by key ${vendor.kid}; ignored`);

    // CycloneDX VEX (vulnerabilities[].analysis), signed by the vendor as a CycloneDX statement of kind vex: applied the same way.
    const cdx = makeStatement([subject('registry.example/app', d)], 'https://cyclonedx.org/bom', {
      bomFormat: 'CycloneDX',
      specVersion: '1.6',
      components: [{ 'bom-ref': 'ossl', type: 'library', name: 'openssl', purl: 'pkg:deb/debian/openssl@3.0.11-1~deb12u2' }],
      vulnerabilities: [{ id: 'CVE-2026-0001', analysis: { state: 'not_affected', justification: 'code_not_reachable' }, affects: [{ ref: 'ossl' }] }],
    });
    const signedCdx = await signedUpload(cdx, 'vex', vendor, d);
    const ok = await promote(d);
    expect(ok.body.state, JSON.stringify(ok.body)).toBe('promoted');
    expect(gateOf((await api('GET', `/promotions/${ok.body.id}`)).body).detail).toContain(`not affected (code_not_reachable) (VEX ${signedCdx.id})`);

    // A finding of unknown severity (no severity anywhere) blocks under the default policy field.
    const d2 = sha256Digest(`registry.example/app@${randomBytes(8).toString('hex')}`);
    const st = report(d2);
    (st.predicate as any).scanner.result = [{ id: 'CVE-2026-0100', severity: [], annotations: [{ purl: PURL }] }];
    await signedUpload(st, 'scan-report', builder, d2);
    const u = await promote(d2);
    expect(u.body.state).toBe('failed');
    expect(u.body.reason).toContain('1 of unknown severity (policy unknownSeverity: block)');
  });
});
