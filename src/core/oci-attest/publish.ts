/**
 * Publish: stella's attestations (and its SBOM) about an artifact, pushed to the image's
 * repository where cosign, policy-controller and Kyverno look — OCI 1.1 referrers (a Sigstore
 * bundle v0.3 per attestation, the CycloneDX SBOM) when the registry serves the referrers API,
 * else cosign's tag scheme (`sha256-<hex>.att`, one DSSE layer per attestation, appended).
 * Gather (read stored evidence and the registry) → plan (layout.ts) → push → record (audited).
 */
import type { AppContext } from '../context';
import { audit } from '../audit';
import { SIGNING_PURPOSE } from '../keys';
import type { EvidenceItem } from '../evidence';
import { badInput, notFound, asStellaError } from '../../lib/errors';
import { parseEnvelope } from '../../crypto/dsse';
import { parseStatement } from '../../crypto/intoto';
import { registryTarget, type RegistryTarget } from './client';
import { cosignAttestationManifest, cosignAttestationTag, sigstoreBundleReferrer } from '../../crypto/cosign';
import {
  type AttLayer,
  CYCLONEDX_JSON,
  type Descriptor,
  DSSE_LAYER,
  descriptorOf,
  EMPTY_CONFIG_BYTES,
  layersOf,
  OCI_INDEX,
  OCI_MANIFEST,
  planAttLayers,
  referrersIndex,
  referrersTag,
  referrerManifest,
  SIGSTORE_BUNDLE,
} from './layout';
import { sha256Digest } from '../../lib/hash';
import { sigstoreBundleOf } from '../../crypto/sigstore-bundle';
import { canonicalJson } from '../../lib/canonical';
import { recordPublications } from './store';

export type PublishMethod = 'referrers' | 'cosign-tag';

export interface PublishRequest {
  artifact: string;
  image: string;
  insecure?: boolean;
  /** Default: referrers when the registry serves the API, else the cosign tag scheme. */
  method?: PublishMethod;
  actor: string;
}

export type PublishedItem = {
  evidenceId: string;
  kind: 'attestation' | 'sbom';
  artifactType: string;
  predicateType: string | null;
  manifestDigest: string;
  tag: string | null;
  /** False when the registry already held exactly this document there (re-push). */
  pushed: boolean;
};

export type PublishResult = {
  artifact: string;
  repository: string;
  method: PublishMethod;
  items: PublishedItem[];
};

interface Doc {
  item: EvidenceItem;
  bytes: Buffer;
  predicateType: string | null;
}

/** Stella-signed attestations (signer = one of stella's signing keys) and the newest SBOM stored for the artifact. */
async function gatherDocs(ctx: AppContext, tenant: string, artifact: string): Promise<{ attestations: Doc[]; sbom: Doc | null }> {
  const own = new Set((await ctx.keys.list()).filter((k) => k.purpose === SIGNING_PURPOSE).map((k) => k.kid));
  const list = async (kind: string) => (await ctx.evidence.list({ tenant, artifact, kind, limit: 1000 })).items.filter((i) => i.state !== 'purged');
  const attestations: Doc[] = [];
  for (const item of await list('attestation')) {
    if (!item.signer || !own.has(item.signer)) continue;
    attestations.push({ item, bytes: await ctx.evidence.read(tenant, item.id), predicateType: item.predicateType });
  }
  const sboms = (await list('sbom')).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const sbom = sboms[0] ? { item: sboms[0], bytes: await ctx.evidence.read(tenant, sboms[0].id), predicateType: null } : null;
  attestations.sort((a, b) => a.item.createdAt.localeCompare(b.item.createdAt) || a.item.id.localeCompare(b.item.id));
  return { attestations, sbom };
}

/** The image manifest the documents are about, as the subject descriptor (it must exist in that repository). */
async function subjectOf(t: RegistryTarget, artifact: string): Promise<Descriptor> {
  const m = await t.client.getManifest(`${t.repository}@${artifact}`);
  return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
}

async function pushReferrers(t: RegistryTarget, subject: Descriptor, docs: { attestations: Doc[]; sbom: Doc | null }): Promise<PublishedItem[]> {
  const present = new Set((await t.client.referrers(t.repository, subject.digest)).map((d) => d.digest));
  await t.client.pushBlob(t.repository, EMPTY_CONFIG_BYTES);
  const out: PublishedItem[] = [];
  const listed: Descriptor[] = [];
  const put = async (d: Doc, kind: PublishedItem['kind'], artifactType: string, layerBytes: Buffer, manifest: Buffer) => {
    const digest = sha256Digest(manifest);
    const pushed = !present.has(digest);
    if (pushed) {
      await t.client.pushBlob(t.repository, layerBytes);
      await t.client.putManifest(`${t.repository}@${digest}`, manifest, OCI_MANIFEST);
      listed.push({ mediaType: OCI_MANIFEST, digest, size: manifest.length, artifactType });
    }
    out.push({ evidenceId: d.item.id, kind, artifactType, predicateType: d.predicateType, manifestDigest: digest, tag: null, pushed });
  };
  for (const d of docs.attestations) {
    const env = parseEnvelope(d.bytes);
    const bundle = Buffer.from(canonicalJson(sigstoreBundleOf(env, env.signatures[0]?.keyid || d.item.signer || '')));
    const r = sigstoreBundleReferrer(bundle, subject, predicateOf(d));
    await put(d, 'attestation', SIGSTORE_BUNDLE, r.layer.bytes, r.manifest);
  }
  if (docs.sbom) {
    const manifest = referrerManifest({ artifactType: CYCLONEDX_JSON, layer: descriptorOf(CYCLONEDX_JSON, docs.sbom.bytes), subject });
    await put(docs.sbom, 'sbom', CYCLONEDX_JSON, docs.sbom.bytes, manifest);
  }
  if (listed.length && !(await t.client.supportsReferrers(t.repository))) await listInReferrersTag(t, subject.digest, listed);
  return out;
}

/** Without the referrers API the pusher keeps the `sha256-<hex>` index of the subject's referrers (OCI 1.1 fallback). */
async function listInReferrersTag(t: RegistryTarget, subject: string, added: Descriptor[]): Promise<void> {
  const ref = `${t.repository}:${referrersTag(subject)}`;
  let existing: Descriptor[] = [];
  try {
    const m = (await t.client.getManifest(ref, { accept: [OCI_INDEX] })).json as { manifests?: Descriptor[] };
    existing = Array.isArray(m.manifests) ? m.manifests : [];
  } catch (e) {
    if (asStellaError(e)?.code !== 'NOT_FOUND') throw e;
  }
  const index = referrersIndex(existing, added);
  if (index) await t.client.putManifest(ref, index, OCI_INDEX);
}

/** The predicate type cosign annotates a layer with: the signed statement's (the stored label may be absent). */
function predicateOf(d: Doc): string {
  if (d.predicateType) return d.predicateType;
  return parseStatement(Buffer.from(parseEnvelope(d.bytes).payload, 'base64')).predicateType;
}

async function pushCosignTag(t: RegistryTarget, artifact: string, docs: Doc[]): Promise<PublishedItem[]> {
  const tag = cosignAttestationTag(artifact);
  const ref = `${t.repository}:${tag}`;
  let existing: Descriptor[] = [];
  let current: string | null = null;
  try {
    const m = await t.client.getManifest(ref);
    existing = layersOf(m.json).layers;
    current = m.digest;
  } catch (e) {
    if (asStellaError(e)?.code !== 'NOT_FOUND') throw e;
  }
  const incoming: (AttLayer & { doc: Doc })[] = docs.map((d) => ({ bytes: d.bytes, predicateType: predicateOf(d), doc: d }));
  const plan = planAttLayers(existing, incoming);
  let digest = current;
  if (plan.added.length || !current) {
    const { manifest, config } = cosignAttestationManifest(plan.layers);
    for (const l of plan.added) await t.client.pushBlob(t.repository, l.bytes);
    await t.client.pushBlob(t.repository, config.bytes);
    digest = await t.client.putManifest(ref, manifest, OCI_MANIFEST);
  }
  const added = new Set(plan.added.map((l) => sha256Digest(l.bytes)));
  return incoming.map((l) => ({
    evidenceId: l.doc.item.id,
    kind: 'attestation',
    artifactType: DSSE_LAYER,
    predicateType: l.predicateType,
    manifestDigest: digest!,
    tag,
    pushed: added.has(sha256Digest(l.bytes)),
  }));
}

/** `stella attest push`: push what stella signed about `artifact` to the image's repository (audited, recorded). */
export async function publishAttestations(ctx: AppContext, tenant: string, req: PublishRequest, target?: RegistryTarget): Promise<PublishResult> {
  const t = target ?? registryTarget(ctx, req.image, { insecure: req.insecure });
  if (t.ref.digest && t.ref.digest !== req.artifact)
    throw badInput(`image ${req.image} names digest ${t.ref.digest}, not the artifact ${req.artifact}; give the repository (or the same digest)`);
  const docs = await gatherDocs(ctx, tenant, req.artifact);
  if (!docs.attestations.length && !docs.sbom)
    throw notFound(`nothing stella signed about ${req.artifact} to publish; create it first: stella attest create --subject ${req.artifact} --type sbom`);
  const subject = await subjectOf(t, req.artifact);
  const method: PublishMethod = req.method ?? ((await t.client.supportsReferrers(t.repository)) ? 'referrers' : 'cosign-tag');
  if (method === 'cosign-tag' && !docs.attestations.length)
    throw notFound(
      `no stella-signed attestation about ${req.artifact}: the cosign tag scheme carries attestations only (the SBOM goes out as its sbom attestation)`,
    );
  const items = method === 'referrers' ? await pushReferrers(t, subject, docs) : await pushCosignTag(t, req.artifact, docs.attestations);
  const result: PublishResult = { artifact: req.artifact, repository: t.repository, method, items };
  await recordPublications(ctx.db, tenant, req.actor, result);
  await audit(ctx.db, {
    tenant,
    actor: req.actor,
    action: 'attestation.publish',
    target: req.artifact,
    details: { repository: t.repository, method, pushed: items.filter((i) => i.pushed).map((i) => ({ id: i.evidenceId, manifest: i.manifestDigest })) },
  });
  return result;
}
