import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/lib/canonical';
import { sha256Hex } from '../src/lib/hash';
import { CryptoError } from '../src/crypto/errors';
import { signEnvelope } from '../src/crypto/dsse';
import {
  CYCLONEDX_BOM,
  INTOTO_PAYLOAD_TYPE,
  SLSA_PROVENANCE_V1,
  STATEMENT_TYPE_V1,
  VULNS_V02,
  cyclonedxPredicate,
  makeStatement,
  parseStatement,
  signStatement,
  slsaProvenance,
  statementFromEnvelope,
  subject,
  verifyStatement,
  vulnsPredicate,
} from '../src/crypto/intoto';
import { KeyStore, type KeySigner } from '../src/crypto/keys';
import { exportRootPack, rootPackResolver, type RootPack } from '../src/crypto/rootpack';

const IMAGE_DIGEST = `sha256:${sha256Hex('image')}`;
let dir: string;
let signer: KeySigner;
let pack: RootPack;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stella-intoto-'));
  const ks = await KeyStore.open(dir);
  await ks.generate({ alg: 'EdDSA', purpose: 'attestation' });
  signer = await ks.signer();
  pack = await exportRootPack(ks);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const provenance = () =>
  slsaProvenance({
    buildType: 'https://stella.dev/buildtypes/container@v1',
    externalParameters: { repository: 'https://git.example/app', ref: 'refs/heads/main' },
    internalParameters: { worker: 'w-1' },
    resolvedDependencies: [{ uri: 'git+https://git.example/app', digest: { gitCommit: 'a'.repeat(40) } }],
    builderId: 'https://stella.dev/builder@v1',
    invocationId: 'wf-123',
    startedOn: new Date('2024-05-01T10:00:00Z'),
    finishedOn: '2024-05-01T10:05:00Z',
  });

describe('in-toto statements', () => {
  it('builds a SLSA provenance v1 statement with the expected shape', () => {
    const st = makeStatement([subject('registry.example/app', IMAGE_DIGEST)], SLSA_PROVENANCE_V1, provenance());
    expect(st).toEqual({
      _type: STATEMENT_TYPE_V1,
      subject: [{ name: 'registry.example/app', digest: { sha256: IMAGE_DIGEST.slice(7) } }],
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: {
        buildDefinition: {
          buildType: 'https://stella.dev/buildtypes/container@v1',
          externalParameters: { repository: 'https://git.example/app', ref: 'refs/heads/main' },
          internalParameters: { worker: 'w-1' },
          resolvedDependencies: [{ uri: 'git+https://git.example/app', digest: { gitCommit: 'a'.repeat(40) } }],
        },
        runDetails: {
          builder: { id: 'https://stella.dev/builder@v1' },
          metadata: { invocationId: 'wf-123', startedOn: '2024-05-01T10:00:00.000Z', finishedOn: '2024-05-01T10:05:00Z' },
        },
      },
    });
  });

  it('signs as a DSSE in-toto envelope over the canonical statement, and verifies', async () => {
    const st = makeStatement([subject('app', IMAGE_DIGEST)], SLSA_PROVENANCE_V1, provenance());
    const env = await signStatement(st, [signer]);
    expect(env.payloadType).toBe(INTOTO_PAYLOAD_TYPE);
    const body = Buffer.from(env.payload, 'base64');
    expect(body.toString('utf8')).toBe(canonicalJson(st));
    // Independent check of the signature over PAE.
    const message = Buffer.concat([Buffer.from(`DSSEv1 ${INTOTO_PAYLOAD_TYPE.length} ${INTOTO_PAYLOAD_TYPE} ${body.length} `), body]);
    const pub = createPublicKey({ key: signer.publicJwk as never, format: 'jwk' });
    expect(nodeVerify(null, message, pub, Buffer.from(env.signatures[0]!.sig, 'base64'))).toBe(true);

    const { statement, verification } = verifyStatement(env, rootPackResolver(pack), undefined, { predicateType: SLSA_PROVENANCE_V1 });
    expect(statement).toEqual(st);
    expect(verification.ok).toBe(true);
    expect(statementFromEnvelope(env)).toEqual(st);
  });

  it('builds CycloneDX and vulnerability-scan statements', () => {
    const bom = cyclonedxPredicate({ bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [{ type: 'library', name: 'left-pad' }] });
    const sbom = makeStatement([subject('app', IMAGE_DIGEST)], CYCLONEDX_BOM, bom);
    expect(sbom.predicate).toBe(bom);
    expect(parseStatement(canonicalJson(sbom))).toEqual(sbom);

    const vulns = vulnsPredicate({
      scanner: { uri: 'pkg:github/aquasecurity/trivy@v0.50.0', version: '0.50.0' },
      db: { uri: 'pkg:oci/trivy-db', version: '2', lastUpdate: new Date('2024-05-01T00:00:00Z') },
      result: [{ id: 'CVE-2024-0001', severity: [{ method: 'nvd', score: 'HIGH' }] }],
      scanStartedOn: '2024-05-01T10:00:00Z',
      scanFinishedOn: new Date('2024-05-01T10:01:00Z'),
    });
    expect(vulns).toEqual({
      scanner: {
        uri: 'pkg:github/aquasecurity/trivy@v0.50.0',
        version: '0.50.0',
        db: { uri: 'pkg:oci/trivy-db', version: '2', lastUpdate: '2024-05-01T00:00:00.000Z' },
        result: [{ id: 'CVE-2024-0001', severity: [{ method: 'nvd', score: 'HIGH' }] }],
      },
      metadata: { scanStartedOn: '2024-05-01T10:00:00Z', scanFinishedOn: '2024-05-01T10:01:00.000Z' },
    });
    const st = makeStatement([subject('app', IMAGE_DIGEST)], VULNS_V02, vulns);
    expect(st.predicateType).toBe('https://in-toto.io/attestation/vulns/v0.2');
  });

  it('rejects malformed statements and predicates', () => {
    const bad = (f: () => unknown) => expect(f).toThrow(CryptoError);
    bad(() => subject('app', 'sha256:XYZ'));
    bad(() => cyclonedxPredicate({ bomFormat: 'SPDX', specVersion: '2.3' } as never));
    bad(() => vulnsPredicate({ scanner: { uri: 'x' }, db: { lastUpdate: 'yesterday' }, result: [], scanStartedOn: new Date(), scanFinishedOn: new Date() }));
    bad(() => makeStatement([], SLSA_PROVENANCE_V1, provenance()));
    // Known predicate types are validated even when parsed from foreign input.
    bad(() =>
      parseStatement({
        _type: STATEMENT_TYPE_V1,
        subject: [{ name: 'a', digest: { sha256: 'a'.repeat(64) } }],
        predicateType: SLSA_PROVENANCE_V1,
        predicate: {},
      }),
    );
    bad(() =>
      parseStatement({
        _type: 'https://in-toto.io/Statement/v2',
        subject: [{ name: 'a', digest: { sha256: 'a'.repeat(64) } }],
        predicateType: 'x',
        predicate: {},
      }),
    );
    // cosign v2 still writes Statement/v0.1 (the same fields): read as v1.
    expect(
      parseStatement({
        _type: 'https://in-toto.io/Statement/v0.1',
        subject: [{ name: 'a', digest: { sha256: 'a'.repeat(64) } }],
        predicateType: 'x',
        predicate: {},
      }).predicateType,
    ).toBe('x');
    bad(() => parseStatement('not json'));
    // Foreign predicate types pass with any object predicate.
    expect(
      parseStatement({ _type: STATEMENT_TYPE_V1, subject: [{ name: 'a', digest: { sha512: 'ab' } }], predicateType: 'https://example/p', predicate: { x: 1 } })
        .predicateType,
    ).toBe('https://example/p');
  });

  it('refuses envelopes that are untrusted or carry another payloadType', async () => {
    const st = makeStatement([subject('app', IMAGE_DIGEST)], SLSA_PROVENANCE_V1, provenance());
    const env = await signStatement(st, [signer]);
    expect(() => verifyStatement(env, () => undefined)).toThrow(expect.objectContaining({ code: 'BAD_SIGNATURE', category: 'INTEGRITY' }));
    const other = await signEnvelope('application/json', new TextEncoder().encode(canonicalJson(st)), [signer]);
    expect(() => verifyStatement(other, rootPackResolver(pack))).toThrow(/payloadType/);
    expect(() => statementFromEnvelope(other)).toThrow(/payloadType/);
    expect(() => verifyStatement(env, rootPackResolver(pack), undefined, { predicateType: VULNS_V02 })).toThrow(/predicateType/);
  });
});
