import { createHash, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { importAttestation, importTrust } from '../../src/core/attest/attest';
import type { AppContext } from '../../src/core/context';
import { rawSign, type Signer } from '../../src/crypto/dsse';
import {
  CYCLONEDX_BOM,
  makeStatement,
  SLSA_PROVENANCE_V1,
  type Statement,
  signStatement,
  slsaProvenance,
  subject,
  VULNS_V02,
  vulnsPredicate,
} from '../../src/crypto/intoto';
import { rootPackDigest } from '../../src/crypto/rootpack';

/**
 * Evidence for promotion gates. The default policy accepts only signed statements (signers
 * stella or rootpack; provenance: rootpack), so these helpers store, next to the raw SBOM and
 * report, statements signed by a "builder" key that is trusted through an imported RootPack —
 * ingested through the one verifying path (`importAttestation`), never raw.
 */
export interface TestKey extends Signer {
  kid: string;
  pem: string;
}

/** A fresh ES256 key (not in stella's key store), with its PEM public key. */
export function freshKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as { crv: string; kty: string; x: string; y: string };
  const kid = createHash('sha256')
    .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
    .digest('base64url');
  return {
    kid,
    keyid: kid,
    alg: 'ES256',
    pem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    sign: async (data: Uint8Array) => rawSign('ES256', privateKey, data),
  };
}

/** Trusts `key` for signing through an imported RootPack (as `stella rootpack import` would); status/window as given. */
export async function trustKey(
  ctx: AppContext,
  key: TestKey,
  opts: { status?: 'active' | 'retired' | 'revoked'; notBefore?: string; notAfter?: string | null } = {},
): Promise<void> {
  const jwk = createPublicKey(key.pem).export({ format: 'jwk' });
  const body = {
    version: 1 as const,
    createdAt: new Date().toISOString(),
    keys: [
      {
        kid: key.kid,
        alg: 'ES256' as const,
        publicJwk: { ...jwk, kid: key.kid, alg: 'ES256', use: 'sig' },
        notBefore: opts.notBefore ?? new Date(Date.now() - 3600_000).toISOString(),
        notAfter: opts.notAfter ?? null,
        status: opts.status ?? 'active',
        purposes: ['signing'],
      },
    ],
  };
  await importTrust(ctx, 'default', { ...body, digest: rootPackDigest(body as never) }, 'test');
}

const builders = new WeakMap<AppContext, Promise<TestKey>>();
/** The CI builder's key, trusted through an imported RootPack (one per context). */
export function builderKey(ctx: AppContext): Promise<TestKey> {
  let k = builders.get(ctx);
  if (!k) {
    k = (async () => {
      const key = freshKey();
      await trustKey(ctx, key);
      return key;
    })();
    builders.set(ctx, k);
  }
  return k;
}

export const BUILDER_ID = 'https://github.com/actions/runner/github-hosted';
export const SOURCE_REPO = 'git+https://github.com/example/app@refs/heads/main';

/** A DSSE envelope of `statement` signed by `key`, as bytes. */
export async function envelopeOf(statement: Statement, key: Signer): Promise<Buffer> {
  return Buffer.from(JSON.stringify(await signStatement(statement, [key])));
}

/** Statements the gates read, about `artifact`. */
export const statements = {
  sbom: (artifact: string) =>
    makeStatement([subject('registry.example/app', artifact)], CYCLONEDX_BOM, {
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      serialNumber: `urn:uuid:${randomUUID()}`,
      components: [],
    }),
  vulns: (artifact: string, counts: Partial<Record<'critical' | 'high' | 'medium' | 'low' | 'unknown', number>> = {}) =>
    makeStatement(
      [subject('registry.example/app', artifact)],
      VULNS_V02,
      vulnsPredicate({
        scanner: { uri: 'https://scanner.example', version: '1' },
        db: { lastUpdate: new Date() },
        result: Object.entries(counts).flatMap(([sev, n]) =>
          Array.from({ length: n ?? 0 }, (_, i) => ({
            id: `CVE-2026-${sev}-${i}`,
            severity: sev === 'unknown' ? [] : [{ method: 'severity', score: sev }],
            annotations: [{ severity: sev }],
          })),
        ),
        scanStartedOn: new Date(),
        scanFinishedOn: new Date(),
      }),
    ),
  provenance: (artifact: string, opts: { builderId?: string; sourceRepo?: string } = {}) =>
    makeStatement(
      [subject('registry.example/app', artifact)],
      SLSA_PROVENANCE_V1,
      slsaProvenance({
        buildType: 'https://actions.github.io/buildtypes/workflow/v1',
        externalParameters: { workflow: { repository: opts.sourceRepo ?? SOURCE_REPO, path: '.github/workflows/build.yml' }, nonce: randomUUID() },
        resolvedDependencies: [{ uri: opts.sourceRepo ?? SOURCE_REPO, digest: { gitCommit: 'a'.repeat(40) } }],
        builderId: opts.builderId ?? BUILDER_ID,
      }),
    ),
};

/** Stores a signed statement through the verifying import path (refused like an upload when it does not verify). */
export async function importSigned(ctx: AppContext, tenant: string, statement: Statement, key?: Signer) {
  return importAttestation(ctx, tenant, await envelopeOf(statement, key ?? (await builderKey(ctx))), { actor: 'test' });
}

/** A raw CycloneDX SBOM (unsigned upload) and, unless `signed: false`, a signed CycloneDX statement. */
export async function storeSbom(ctx: AppContext, tenant: string, artifact: string, opts: { signed?: boolean } = {}) {
  const sbom = Buffer.from(
    JSON.stringify({
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      serialNumber: `urn:uuid:${randomUUID()}`,
      metadata: { component: { name: 'app' } },
      components: [],
    }),
  );
  const raw = await ctx.evidence.ingest({
    tenant,
    data: sbom,
    kind: 'sbom',
    mediaType: 'application/vnd.cyclonedx+json',
    subjects: [artifact],
    producer: { type: 'test' },
  });
  if (opts.signed !== false) await importSigned(ctx, tenant, statements.sbom(artifact));
  return raw;
}

/** A raw scan report with counts (unsigned upload) and, unless `signed: false`, a signed vulnerability statement with the same findings. */
export async function storeScanReport(
  ctx: AppContext,
  tenant: string,
  artifact: string,
  sbomId: string,
  counts: Partial<Record<'critical' | 'high' | 'medium' | 'low' | 'unknown', number>> = {},
  opts: { signed?: boolean } = {},
) {
  const report = Buffer.from(
    JSON.stringify({ artifact, scanner: 'test', nonce: randomUUID(), counts: { critical: 0, high: 0, medium: 0, low: 0, unknown: 0, ...counts } }),
  );
  const raw = await ctx.evidence.ingest({
    tenant,
    data: report,
    kind: 'scan-report',
    mediaType: 'application/json',
    subjects: [artifact],
    parents: [{ id: sbomId }],
  });
  if (opts.signed !== false) await importSigned(ctx, tenant, statements.vulns(artifact, counts));
  return raw;
}

/** The builder's signed SLSA provenance (trusted through the RootPack). */
export async function storeProvenance(ctx: AppContext, tenant: string, artifact: string, opts: { builderId?: string; sourceRepo?: string; key?: Signer } = {}) {
  return importSigned(ctx, tenant, statements.provenance(artifact, opts), opts.key);
}

export async function storeAllEvidence(ctx: AppContext, tenant: string, artifact: string, counts?: Parameters<typeof storeScanReport>[4]) {
  const sbom = await storeSbom(ctx, tenant, artifact);
  const scan = await storeScanReport(ctx, tenant, artifact, sbom.id, counts);
  const att = await storeProvenance(ctx, tenant, artifact);
  return { sbom: sbom.id, scan: scan.id, attestation: att.id };
}

export async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await fn();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 500)}`);
}
