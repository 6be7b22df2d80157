import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctorChecksOf } from '../src/app/features';
import { runDoctor } from '../src/core/doctor';
import { evaluateGates } from '../src/core/promotion/evaluate';
import { resolvePolicy, setPolicy } from '../src/core/promotion/policy';
import { CYCLONEDX_BOM, SLSA_PROVENANCE_V1, type Statement } from '../src/crypto/intoto';
import { sha256Digest } from '../src/lib/hash';
import { apiFor } from './support/api';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { BUILDER_ID, builderKey, envelopeOf, freshKey, statements, type TestKey, trustKey, waitFor } from './support/promotion';

const TENANT = 'default';
const DSSE = 'application/vnd.dsse.envelope.v1+json';
const artifact = () => sha256Digest(`registry.example/app@${randomBytes(8).toString('hex')}`);

const stella = runStella;

describe('evidence provenance and signer policy (real Temporal, PostgreSQL, CLI)', () => {
  let h: Harness;
  let app: FastifyInstance;
  let auth: { authorization: string };
  let cli: Record<string, string>;
  let builder: TestKey;

  const api = async (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => {
    const r = await app.inject({ method, url, headers: auth, ...(payload !== undefined ? { payload: payload as never } : {}) });
    return { status: r.statusCode, body: r.json() as any };
  };
  /** POST /evidence with raw bytes, as `stella evidence put` does. */
  const upload = async (bytes: Buffer | string, q: { kind: string; artifact: string; predicateType?: string; contentType?: string }) => {
    const qs = new URLSearchParams({ kind: q.kind, artifact: q.artifact, ...(q.predicateType ? { predicateType: q.predicateType } : {}) });
    const r = await app.inject({
      method: 'POST',
      url: `/evidence?${qs}`,
      headers: { ...auth, 'content-type': q.contentType ?? 'application/json' },
      payload: typeof bytes === 'string' ? Buffer.from(bytes) : bytes,
    });
    return { status: r.statusCode, body: r.json() as any };
  };
  const signedUpload = async (st: Statement, kind: string, key: TestKey, digest: string) =>
    upload(await envelopeOf(st, key), { kind, artifact: digest, contentType: DSSE });
  const status = (id: string) => api('GET', `/promotions/${id}`).then((r) => r.body);
  const itemCount = async () => Number((await h.ctx.db.query('SELECT count(*) AS n FROM evidence_items WHERE tenant_id=$1', [TENANT])).rows[0].n);

  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
    app = await apiFor(h);
    cli = await cliEnvFor(h, app, 'ci-pipeline');
    auth = { authorization: `Bearer ${cli.STELLA_TOKEN}` };
    builder = await builderKey(h.ctx);
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('unsigned uploads and stella-signed "provenance" for an unbuilt digest no longer pass; the reason is shown everywhere; trusted signed evidence promotes', async () => {
    const d = artifact();
    // Bypass 1: unsigned SBOM and scan report uploads are stored, as `uploaded`.
    const sbom = await upload(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', serialNumber: `urn:uuid:${randomBytes(8).toString('hex')}` }), {
      kind: 'sbom',
      artifact: d,
      contentType: 'application/vnd.cyclonedx+json',
    });
    expect(sbom.status).toBe(201);
    const report = await upload(JSON.stringify({ counts: { critical: 0, high: 0, medium: 0, low: 0 }, n: randomBytes(4).toString('hex') }), {
      kind: 'scan-report',
      artifact: d,
    });
    expect(report.status).toBe(201);
    expect((await api('GET', `/evidence/${sbom.body.id}/meta`)).body).toMatchObject({ provenance: 'uploaded', signer: null });

    // Bypass 2: stella refuses to sign SLSA provenance for a digest it did not build (nothing signed or stored).
    const before = await itemCount();
    const claim = await api('POST', '/attestations', { subject: d, type: 'slsa-provenance' });
    expect(claim.status).toBe(409);
    expect(claim.body.detail).toMatch(/stella did not build or scan sha256:.*SLSA provenance comes from the builder/);
    expect(await itemCount()).toBe(before);

    const start = await api('POST', '/promotions', { artifact: d, from: 'staging', to: 'prod' });
    const blocked = await waitFor(
      () => status(start.body.id),
      (s) => s.state === 'waiting-evidence',
      'waiting-evidence',
    );
    const gate = (n: string) => blocked.gates.find((g: any) => g.name === n);
    expect(gate('sbom')).toMatchObject({ passed: false, evidence: { id: sbom.body.id, provenance: 'uploaded', signer: null } });
    expect(gate('sbom').detail).toContain(`sbom ${sbom.body.id} is unsigned (uploaded); policy requires signer stella or rootpack`);
    expect(gate('sbom').rule).toMatch(/^sbom "sbom"; signers stella or rootpack; predicateType https:\/\/cyclonedx.org\/bom/);
    expect(gate('vulnerability-scan').detail).toContain(`vulnerability report ${report.body.id} is unsigned (uploaded)`);
    expect(gate('provenance').passed).toBe(false);

    // --explain names each gate's evidence, provenance/signer and rule.
    const explain = await stella(cli, 'promotion', 'status', start.body.id, '--explain');
    expect(explain.code, explain.stderr).toBe(0);
    expect(explain.stdout).toContain('sbom: FAIL');
    expect(explain.stdout).toContain(`evidence: sbom ${sbom.body.id} — uploaded (unsigned)`);
    expect(explain.stdout).toContain('rule:     sbom "sbom"; signers stella or rootpack');
    expect(explain.stdout).toContain('policy requires signer stella or rootpack');
    // evidence --missing gives the reason (exit 8: still pending).
    const missing = await stella(cli, 'promotion', 'evidence', start.body.id, '--missing');
    expect(missing.code).toBe(8);
    expect(missing.stdout).toContain(`sbom ${sbom.body.id} is unsigned (uploaded); policy requires signer stella or rootpack`);
    expect(missing.stdout).toMatch(/stella attest import <provenance\.dsse\.json>/);
    // The doctor check shows the reason too.
    const doctor = await runDoctor(
      { ctx: h.ctx, tenant: TENANT, scopes: ['admin'], temporal: null, args: {} },
      { check: 'check.orchestrator.evidence-availability' },
      doctorChecksOf(),
    );
    expect(doctor.results[0]!.message).toContain(`SBOM not found (sbom ${sbom.body.id} is unsigned (uploaded); policy requires signer stella or rootpack)`);

    // Signed uploads by the builder's RootPack-trusted key: verified at ingest, recorded as signed, and they promote.
    const sSbom = await signedUpload(statements.sbom(d), 'sbom', builder, d);
    expect(sSbom.status, JSON.stringify(sSbom.body)).toBe(201);
    const meta = (await api('GET', `/evidence/${sSbom.body.id}/meta`)).body;
    expect(meta).toMatchObject({ provenance: 'signed', signer: builder.kid, predicateType: CYCLONEDX_BOM });
    expect((await signedUpload(statements.vulns(d, { low: 1 }), 'scan-report', builder, d)).status).toBe(201);
    expect((await signedUpload(statements.provenance(d), 'attestation', builder, d)).status).toBe(201);
    const retried = await api('POST', `/promotions/${start.body.id}/retry`);
    expect(retried.body.state, JSON.stringify(retried.body.gates)).toBe('promoted');
    const prov = retried.body.gates.find((g: any) => g.name === 'provenance');
    expect(prov).toMatchObject({ passed: true, evidence: { provenance: 'signed', signer: builder.kid } });
    expect(prov.detail).toMatch(/trusted as rootpack$/);
  });

  it('bad signed input at ingest is a clear 4xx and nothing is stored', async () => {
    const d = artifact();
    const before = await itemCount();
    const env = JSON.parse((await envelopeOf(statements.provenance(d), builder)).toString());
    // Tampered: the payload swapped for another statement, the signature kept.
    const other = Buffer.from(JSON.stringify(statements.provenance(d, { builderId: 'https://evil.example/builder' }))).toString('base64');
    const tampered = await upload(JSON.stringify({ ...env, payload: other }), { kind: 'attestation', artifact: d, contentType: DSSE });
    expect(tampered.status).toBe(422);
    expect(tampered.body.detail).toMatch(/^signature refused: .*signature does not verify.*; nothing stored$/);
    // Signed by a key nobody trusts.
    const stranger = await signedUpload(statements.provenance(d), 'attestation', freshKey(), d);
    expect(stranger.status).toBe(422);
    expect(stranger.body.detail).toMatch(/unknown key/);
    // Expired: trusted only for a window that has ended.
    const expired = freshKey();
    await trustKey(h.ctx, expired, {
      status: 'retired',
      notBefore: new Date(Date.now() - 2 * 86_400_000).toISOString(),
      notAfter: new Date(Date.now() - 86_400_000).toISOString(),
    });
    const ex = await signedUpload(statements.provenance(d), 'attestation', expired, d);
    expect(ex.status).toBe(422);
    expect(ex.body.detail).toMatch(/after key notAfter/);
    // Revoked.
    const revoked = freshKey();
    await trustKey(h.ctx, revoked, { status: 'revoked' });
    const rv = await signedUpload(statements.provenance(d), 'attestation', revoked, d);
    expect(rv.status).toBe(422);
    expect(rv.body.detail).toMatch(/key revoked/);
    // Wrong predicate type: declared SLSA, signed statement is an SBOM; an SBOM upload that is a vulnerability report.
    const wrong = await upload(await envelopeOf(statements.sbom(d), builder), {
      kind: 'attestation',
      artifact: d,
      contentType: DSSE,
      predicateType: SLSA_PROVENANCE_V1,
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.detail).toMatch(
      /^wrong predicate type: declared https:\/\/slsa.dev\/provenance\/v1, the signed statement says https:\/\/cyclonedx.org\/bom/,
    );
    const wrongKind = await signedUpload(statements.vulns(d), 'sbom', builder, d);
    expect(wrongKind.status).toBe(400);
    expect(wrongKind.body.detail).toMatch(/a sbom cannot be a https:\/\/in-toto.io\/attestation\/vulns\/v0.2 statement/);
    // A statement about another artifact, and bytes that are no envelope at all.
    const foreign = await upload(await envelopeOf(statements.provenance(artifact()), builder), { kind: 'attestation', artifact: d, contentType: DSSE });
    expect(foreign.status).toBe(400);
    expect(foreign.body.detail).toMatch(/does not name sha256:.* as its subject/);
    const junk = await upload('not json', { kind: 'attestation', artifact: d, contentType: DSSE });
    expect(junk.status).toBe(400);
    expect(junk.body.detail).toMatch(/^not a valid DSSE envelope/);
    // `attest import` refuses the same way.
    const imp = await app.inject({
      method: 'POST',
      url: '/attestations/import',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: await envelopeOf(statements.provenance(d), freshKey()),
    });
    expect(imp.statusCode).toBe(422);
    expect(await itemCount()).toBe(before);
  });

  it('policy mismatches fail the gate with the reason: untrusted builder id or source, unknown severity, revoked key, stella key where rootpack is required; a policy PEM key verifies', async () => {
    await setPolicy(h.ctx.db, {
      tenant: TENANT,
      env: 'prod-slsa',
      text: [
        'requirements:',
        '  - kind: sbom',
        '  - kind: scan-report',
        '    thresholds: { critical: 0, high: 0 }',
        '  - kind: attestation',
        `    builderIds: [${BUILDER_ID}]`,
        '    sourceRepos: [https://github.com/example/app]',
        'waitDeadline: 1h',
      ].join('\n'),
      actor: 'test',
    });
    const policy = (await resolvePolicy(h.ctx.db, TENANT, 'prod-slsa')).policy;
    const gates = async (d: string) => {
      const gs = await evaluateGates(h.ctx, { tenant: TENANT, artifactDigest: d, imageRef: null, policy });
      return Object.fromEntries(gs.map((g) => [g.name, g]));
    };
    const put = async (st: Statement, kind: string, key: TestKey, d: string) => expect((await signedUpload(st, kind, key, d)).status).toBe(201);

    // Provenance from an untrusted builder, and from a fork: the gate fails naming builder.id / source.
    const d1 = artifact();
    await put(statements.sbom(d1), 'sbom', builder, d1);
    await put(statements.vulns(d1), 'scan-report', builder, d1);
    await put(statements.provenance(d1, { builderId: 'https://evil.example/builder' }), 'attestation', builder, d1);
    let g = await gates(d1);
    expect(g.sbom!.passed && g['vulnerability-scan']!.passed).toBe(true);
    expect(g.provenance!.passed).toBe(false);
    expect(g.provenance!.detail).toContain(`builder.id "https://evil.example/builder" is not allowed (policy builderIds: ${BUILDER_ID})`);
    await put(statements.provenance(d1, { sourceRepo: 'git+https://github.com/fork/app@refs/heads/main' }), 'attestation', builder, d1);
    g = await gates(d1);
    expect(g.provenance!.detail).toContain('source repository git+https://github.com/fork/app@refs/heads/main is not allowed');
    await put(statements.provenance(d1), 'attestation', builder, d1);
    expect((await gates(d1)).provenance!.passed).toBe(true);

    // Unknown severity blocks (policy default): through the workflow, a violation fails the promotion at once.
    const d2 = artifact();
    await put(statements.sbom(d2), 'sbom', builder, d2);
    await put(statements.vulns(d2, { unknown: 2 }), 'scan-report', builder, d2);
    await put(statements.provenance(d2), 'attestation', builder, d2);
    const failed = await api('POST', '/promotions?wait=30', { artifact: d2, to: 'prod-slsa' });
    expect(failed.body).toMatchObject({ final: true, state: 'failed' });
    expect(failed.body.reason).toContain('2 of unknown severity (policy unknownSeverity: block)');

    // A key revoked after its evidence was stored no longer counts.
    const d3 = artifact();
    const ci = freshKey();
    await trustKey(h.ctx, ci);
    await put(statements.sbom(d3), 'sbom', ci, d3);
    expect((await gates(d3)).sbom!.passed).toBe(true);
    await trustKey(h.ctx, ci, { status: 'revoked' });
    const revoked = (await gates(d3)).sbom!;
    expect(revoked.passed).toBe(false);
    expect(revoked.detail).toMatch(/no longer verifies/);

    // stella's own key signing a statement over evidence stella did not produce is neither `stella` nor `rootpack`.
    const d4 = artifact();
    const own = await h.ctx.keys.signer((await h.ctx.keys.active('signing')).kid);
    const ownUpload = await signedUpload(statements.sbom(d4), 'sbom', own as unknown as TestKey, d4);
    expect(ownUpload.status, JSON.stringify(ownUpload.body)).toBe(201);
    expect((await api('GET', `/evidence/${ownUpload.body.id}/meta`)).body).toMatchObject({ provenance: 'signed', signer: own.keyid });
    const mine = (await gates(d4)).sbom!;
    expect(mine.passed).toBe(false);
    expect(mine.detail).toContain("signed by stella's key");

    // A PEM key named by a policy: uploads signed by it verify at ingest (no RootPack needed) and satisfy only that rule.
    const vendor = freshKey();
    const d5 = artifact();
    expect((await signedUpload(statements.provenance(d5), 'attestation', vendor, d5)).status).toBe(422);
    const pemDoc = `requirements:\n  - kind: attestation\n    signers:\n      - pem: |\n${vendor.pem
      .trim()
      .split('\n')
      .map((l) => `          ${l}`)
      .join('\n')}\n`;
    await setPolicy(h.ctx.db, { tenant: TENANT, env: 'vendor', text: pemDoc, actor: 'test' });
    await put(statements.provenance(d5), 'attestation', vendor, d5);
    const vendorPolicy = (await resolvePolicy(h.ctx.db, TENANT, 'vendor')).policy;
    const [pv] = await evaluateGates(h.ctx, { tenant: TENANT, artifactDigest: d5, imageRef: null, policy: vendorPolicy });
    expect(pv).toMatchObject({ passed: true, evidence: { provenance: 'signed', signer: vendor.kid } });
    expect(pv!.detail).toContain(`trusted as pem ${vendor.kid}`);
    // ...but the same evidence does not meet a requirement that trusts only the RootPack.
    expect((await gates(d5)).provenance!.passed).toBe(false);
  });
});
