/**
 * Discover and import: the attestations a registry holds for an image digest — its OCI 1.1
 * referrers (the referrers tag schema where the API is missing) and cosign's `sha256-<hex>.att`
 * tag — each verified the way a signed upload is (RootPack, policy PEM signers; cosign's
 * `keyid: ""` envelopes against those keys) and, on import, stored as signed evidence about the
 * digest with its signer. What fails verification is reported with the reason and not stored.
 */
import type { AppContext } from '../context';
import { audit } from '../audit';
import { importAttestation } from '../attest/attest';
import { evidenceTrust, verifyEvidenceEnvelope } from '../evidence/signed';
import { asStellaError } from '../../lib/errors';
import { registryTarget, type RegistryTarget } from './client';
import { envelopeForImport } from '../attest/external';
import { cosignAttestationTag } from '../../crypto/cosign';
import { type DocumentFormat, formatOf, layersOf, MAX_DOCUMENT_BYTES } from './layout';
import { sha256Digest } from '../../lib/hash';

export type FoundStatus = 'verified' | 'failed' | 'unsigned' | 'unsupported';

export type FoundDocument = {
  source: 'referrer' | 'cosign-tag';
  manifestDigest: string;
  layerDigest: string;
  format: DocumentFormat;
  predicateType: string | null;
  status: FoundStatus;
  signer: string | null;
  reason: string | null;
};

export type Discovery = {
  image: string;
  repository: string;
  digest: string;
  items: FoundDocument[];
};

type Found = FoundDocument & {
  /** Verified ones: the document as the registry holds it (what import takes) and the DSSE envelope it is or carries. */
  document?: Buffer;
  envelope?: Buffer;
};

interface Layer {
  source: FoundDocument['source'];
  manifestDigest: string;
  layerDigest: string;
  size: number;
  format: DocumentFormat;
  /** The manifest's subject (referrers): must be the digest asked about. */
  subject?: string;
}

const NOT_FOUND = (e: unknown) => asStellaError(e)?.code === 'NOT_FOUND';

/** The documents' layers: every referrer's, then the cosign `.att` tag's. */
async function layersFor(t: RegistryTarget, digest: string): Promise<Layer[]> {
  const out: Layer[] = [];
  for (const d of await t.client.referrers(t.repository, digest)) {
    const m = await t.client.getManifest(`${t.repository}@${d.digest}`);
    const { layers, artifactType, subject } = layersOf(m.json);
    for (const l of layers)
      out.push({
        source: 'referrer',
        manifestDigest: m.digest,
        layerDigest: l.digest,
        size: l.size,
        format: formatOf(l.mediaType, artifactType ?? d.artifactType),
        subject: subject ?? '',
      });
  }
  try {
    const m = await t.client.getManifest(`${t.repository}:${cosignAttestationTag(digest)}`);
    for (const l of layersOf(m.json).layers)
      out.push({ source: 'cosign-tag', manifestDigest: m.digest, layerDigest: l.digest, size: l.size, format: formatOf(l.mediaType) });
  } catch (e) {
    if (!NOT_FOUND(e)) throw e;
  }
  return out;
}

/** Reads one layer and decides what it is worth: verified (with its envelope), failed, unsigned, unsupported. */
async function examine(
  ctx: AppContext,
  tenant: string,
  t: RegistryTarget,
  digest: string,
  l: Layer,
  trust: Awaited<ReturnType<typeof evidenceTrust>>,
): Promise<Found> {
  const base = { source: l.source, manifestDigest: l.manifestDigest, layerDigest: l.layerDigest, format: l.format, predicateType: null, signer: null };
  const fail = (status: FoundStatus, reason: string): Found => ({ ...base, status, reason });
  if (l.subject !== undefined && l.subject !== digest)
    return fail('failed', `referrer ${l.manifestDigest} is about ${l.subject || 'no subject'}, not ${digest}`);
  if (l.format === 'other') return fail('unsupported', 'not an attestation (neither a DSSE envelope nor a Sigstore bundle)');
  if (l.format === 'cyclonedx') return fail('unsigned', 'an unsigned SBOM: only signed attestations are imported as evidence');
  if (l.size > MAX_DOCUMENT_BYTES) return fail('failed', `layer ${l.layerDigest} is ${l.size} bytes, larger than ${MAX_DOCUMENT_BYTES}`);
  let bytes: Buffer;
  try {
    bytes = await t.client.getBlob(t.repository, l.layerDigest, MAX_DOCUMENT_BYTES);
  } catch (e) {
    const s = asStellaError(e);
    if (s && s.code !== 'UNAVAILABLE') return fail('failed', s.message);
    throw e;
  }
  // A keyed Sigstore bundle carries the DSSE envelope that is verified and stored (src/core/attest/external.ts).
  let envelope = bytes;
  if (l.format === 'sigstore-bundle') {
    try {
      envelope = (await envelopeForImport(ctx, tenant, bytes)).envelope;
    } catch (e) {
      return fail('failed', (e as Error).message.replace(/; nothing stored$/, ''));
    }
  }
  try {
    const v = verifyEvidenceEnvelope(envelope, trust, { kind: 'attestation', subjects: [digest] });
    return { ...base, predicateType: v.predicateType, status: 'verified', signer: v.provenance.signer, reason: null, document: bytes, envelope };
  } catch (e) {
    return fail('failed', (e as Error).message.replace(/; nothing stored$/, ''));
  }
}

async function discoverFound(
  ctx: AppContext,
  tenant: string,
  req: { image: string; insecure?: boolean },
): Promise<Omit<Discovery, 'items'> & { items: Found[] }> {
  const t = registryTarget(ctx, req.image, { insecure: req.insecure });
  const resolved = await t.client.resolve(t.ref);
  const trust = await evidenceTrust(ctx, tenant);
  const items: Found[] = [];
  const seen = new Set<string>();
  for (const l of await layersFor(t, resolved.digest)) {
    const f = await examine(ctx, tenant, t, resolved.digest, l, trust);
    // The same envelope reachable twice (a referrer and the .att tag) is listed once.
    const key = f.envelope ? sha256Digest(f.envelope) : `${l.manifestDigest}/${l.layerDigest}`;
    if (seen.has(key)) continue;
    seen.add(key);
    items.push(f);
  }
  return { image: req.image, repository: t.repository, digest: resolved.digest, items };
}

/** `stella attest discover --image <ref>`: what the registry holds for the image's digest, each with its verification status. */
export async function discoverAttestations(ctx: AppContext, tenant: string, req: { image: string; insecure?: boolean }): Promise<Discovery> {
  const d = await discoverFound(ctx, tenant, req);
  return { ...d, items: d.items.map(({ envelope: _e, document: _d, ...rest }) => rest) };
}

export type ImportedDocument = FoundDocument & {
  evidenceId: string | null;
  /** False when an identical attestation was already stored. */
  created: boolean;
};

/** `stella attest import --image <ref>`: store the verified attestations as signed evidence about the digest (audited). */
export async function importFromRegistry(
  ctx: AppContext,
  tenant: string,
  req: { image: string; insecure?: boolean; actor: string },
): Promise<Omit<Discovery, 'items'> & { items: ImportedDocument[]; imported: number; failed: number }> {
  const d = await discoverFound(ctx, tenant, req);
  const items: ImportedDocument[] = [];
  for (const { envelope: _e, document, ...f } of d.items) {
    if (f.status !== 'verified' || !document) {
      items.push({ ...f, evidenceId: null, created: false });
      continue;
    }
    try {
      const r = await importAttestation(ctx, tenant, document, { actor: req.actor });
      items.push({ ...f, signer: r.signer, evidenceId: r.id, created: r.created });
    } catch (e) {
      items.push({ ...f, status: 'failed', reason: (e as Error).message, evidenceId: null, created: false });
    }
  }
  const imported = items.filter((i) => i.evidenceId).length;
  const failed = items.filter((i) => i.status === 'failed').length;
  await audit(ctx.db, {
    tenant,
    actor: req.actor,
    action: 'attestation.registry-import',
    target: d.digest,
    details: { repository: d.repository, imported: items.filter((i) => i.evidenceId).map((i) => i.evidenceId), failed },
  });
  return { ...d, items, imported, failed };
}
