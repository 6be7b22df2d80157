import type { AppContext } from '../context';
import type { Feed, Finding } from '../../scanner/osv';
import type { Distro, Package } from '../../scanner/detectors/types';
import { buildBundle, INPUT_BUNDLE, OUTPUT_BUNDLE } from './bundles';
import { MANIFEST_SCHEMA_ID, manifestBytes, signManifest, type ReplayManifest } from './manifest';
import { scannerIdentity } from './tools';
import { decideVerdict, DEFAULT_VERDICT_POLICY, type VerdictPolicy } from './verdict';
import { sha256Digest } from '../../lib/hash';
import { SIGNING_PURPOSE } from '../keys';
import type { Envelope } from '../../crypto/dsse';

export const MANIFEST_MEDIA_TYPE = 'application/vnd.stella.replay-manifest.v1+json';
export const ENVELOPE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
export const BUNDLE_MEDIA_TYPE = 'application/vnd.stella.replay-bundle.v1+tar+zstd';

export interface ReplayRecordInput {
  tenant: string;
  scanId: string;
  artifactDigest: string;
  imageRef?: string | null;
  packages: Package[];
  distro?: Distro;
  feed: Pick<Feed, 'records' | 'digest'> | null;
  policy?: VerdictPolicy;
  sbom: unknown;
  findings: Finding[];
  vex?: unknown;
  logs?: string;
  createdAt: string;
}

export interface BuiltReplay {
  manifest: ReplayManifest;
  envelope: Envelope;
  input: Buffer;
  output: Buffer;
}

/** Builds the deterministic bundles and the signed manifest for one scan (no storage). */
export async function buildReplay(input: ReplayRecordInput, signer: Awaited<ReturnType<AppContext['keys']['signer']>>): Promise<BuiltReplay> {
  const policy = input.policy ?? DEFAULT_VERDICT_POLICY;
  const scanner = await scannerIdentity();
  const inputB = await buildBundle({
    'inventory.json': { packages: input.packages, distro: input.distro ?? null },
    'feed/records.json': input.feed?.records ?? [],
    'feed/digest.txt': `${input.feed?.digest ?? 'none'}\n`,
    'policy.json': policy,
    'tools.json': scanner,
    'env.json': { scanner: `${scanner.name}@${scanner.version}`, artifactDigest: input.artifactDigest, imageRef: input.imageRef ?? null },
  });
  const verdict = decideVerdict(policy, input.findings);
  const outputB = await buildBundle({
    'sbom.cdx.json': input.sbom,
    'findings.json': JSON.parse(JSON.stringify(input.findings)),
    'vex.json': input.vex ?? { statements: [] },
    'logs/scan.log': input.logs ?? '',
    'verdict.json': verdict,
  });
  const manifest: ReplayManifest = {
    schema: MANIFEST_SCHEMA_ID,
    scanId: input.scanId,
    tenant: input.tenant,
    artifactDigest: input.artifactDigest,
    imageRef: input.imageRef ?? null,
    inputBundle: { path: INPUT_BUNDLE, digest: inputB.digest, size: inputB.bytes.length },
    outputBundle: { path: OUTPUT_BUNDLE, digest: outputB.digest, size: outputB.bytes.length },
    scanner,
    feedDigest: input.feed?.digest ?? null,
    policyId: policy.id,
    verdict: verdict.status,
    counts: verdict.counts,
    createdAt: input.createdAt,
  };
  const envelope = await signManifest(manifest, signer);
  return { manifest, envelope, input: inputB.bytes, output: outputB.bytes };
}

/**
 * Records a scan's replay: bundles + manifest + envelope to the blob store's replay/ namespace,
 * mirrored into the Evidence Locker as replay-bundle items for the artifact, and a replay_runs
 * row. Idempotent: same inputs → same bytes → same digests; the row is upserted.
 */
export async function recordReplay(
  ctx: AppContext,
  input: ReplayRecordInput,
): Promise<{ manifest: ReplayManifest; manifestDigest: string; evidenceIds: string[] }> {
  const existing = await ctx.db.query('SELECT * FROM replay_runs WHERE tenant_id=$1 AND scan_id=$2', [input.tenant, input.scanId]);
  if (existing.rowCount) {
    // Already recorded (a retried activity): signatures are randomized, so never re-sign.
    const row = existing.rows[0];
    const manifest = JSON.parse((await ctx.blobs.primary.withPrefix('replay').getBuffer(row.manifest_digest)).toString('utf8')) as ReplayManifest;
    return { manifest, manifestDigest: row.manifest_digest, evidenceIds: [row.input_digest, row.output_digest, row.manifest_digest, row.envelope_digest] };
  }
  const signer = await ctx.keys.signer((await ctx.keys.active(SIGNING_PURPOSE)).kid);
  const built = await buildReplay(input, signer);
  const mBytes = manifestBytes(built.manifest);
  const eBytes = Buffer.from(JSON.stringify(built.envelope));
  const replayStore = ctx.blobs.primary.withPrefix('replay');
  const parts: [Buffer, string][] = [
    [built.input, BUNDLE_MEDIA_TYPE],
    [built.output, BUNDLE_MEDIA_TYPE],
    [mBytes, MANIFEST_MEDIA_TYPE],
    [eBytes, ENVELOPE_MEDIA_TYPE],
  ];
  const ids: string[] = [];
  for (const [bytes, mediaType] of parts) {
    const d = sha256Digest(bytes);
    await replayStore.put(d, bytes);
    const r = await ctx.evidence.ingest({
      tenant: input.tenant,
      data: bytes,
      kind: 'replay-bundle',
      mediaType,
      subjects: [input.artifactDigest],
      producer: { type: 'replay-record', scanId: input.scanId },
      parents: ids.length && mediaType !== BUNDLE_MEDIA_TYPE ? ids.slice(0, 2).map((id) => ({ id, relation: 'describes' })) : [],
    });
    ids.push(r.id);
  }
  await ctx.db.query(
    `INSERT INTO replay_runs (tenant_id, scan_id, artifact_digest, manifest_digest, envelope_digest, input_digest, output_digest, input_size, output_size, verdict, scanner_version, created_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT (tenant_id, scan_id) DO NOTHING`,
    [
      input.tenant,
      input.scanId,
      input.artifactDigest,
      ids[2],
      ids[3],
      ids[0],
      ids[1],
      built.input.length,
      built.output.length,
      built.manifest.verdict,
      built.manifest.scanner.version,
      input.createdAt,
    ],
  );
  return { manifest: built.manifest, manifestDigest: ids[2]!, evidenceIds: ids };
}
