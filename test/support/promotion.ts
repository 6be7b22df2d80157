import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../src/core/context';
import { makeStatement, signStatement, slsaProvenance, subject, SLSA_PROVENANCE_V1 } from '../../src/crypto/intoto';
import { SIGNING_PURPOSE } from '../../src/core/keys';

/**
 * Evidence as the scan-then-attest workflow stores it: a CycloneDX SBOM, a scan report
 * (parent = the SBOM) with severity counts, and a DSSE-signed SLSA provenance attestation.
 */
export async function storeSbom(ctx: AppContext, tenant: string, artifact: string) {
  const sbom = Buffer.from(
    JSON.stringify({
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      serialNumber: `urn:uuid:${randomUUID()}`,
      metadata: { component: { name: 'app' } },
      components: [],
    }),
  );
  return ctx.evidence.ingest({
    tenant,
    data: sbom,
    kind: 'sbom',
    mediaType: 'application/vnd.cyclonedx+json',
    subjects: [artifact],
    producer: { type: 'test' },
  });
}

export async function storeScanReport(
  ctx: AppContext,
  tenant: string,
  artifact: string,
  sbomId: string,
  counts: Partial<Record<'critical' | 'high' | 'medium' | 'low' | 'unknown', number>> = {},
) {
  const report = Buffer.from(
    JSON.stringify({ artifact, scanner: 'test', nonce: randomUUID(), counts: { critical: 0, high: 0, medium: 0, low: 0, unknown: 0, ...counts } }),
  );
  return ctx.evidence.ingest({ tenant, data: report, kind: 'scan-report', mediaType: 'application/json', subjects: [artifact], parents: [{ id: sbomId }] });
}

export async function storeProvenance(ctx: AppContext, tenant: string, artifact: string, opts: { purpose?: string } = {}) {
  const st = makeStatement(
    [subject('registry.example/app', artifact)],
    SLSA_PROVENANCE_V1,
    slsaProvenance({
      buildType: 'https://stella.dev/buildtypes/test@v1',
      externalParameters: { nonce: randomUUID() },
      builderId: 'https://stella.dev/builders/test',
    }),
  );
  const signer = await ctx.keys.signer((await ctx.keys.active(opts.purpose ?? SIGNING_PURPOSE)).kid);
  const env = await signStatement(st, [signer]);
  return ctx.evidence.ingest({
    tenant,
    data: Buffer.from(JSON.stringify(env)),
    kind: 'attestation',
    mediaType: 'application/vnd.dsse.envelope.v1+json',
    predicateType: SLSA_PROVENANCE_V1,
    subjects: [artifact],
  });
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
