/**
 * Where stella's attestations sit in a registry, as pure decisions: which documents go out in
 * which manifests (OCI 1.1 referrer artifacts or cosign's `sha256-<hex>.att` tag), what is already
 * there, and what a manifest found in a registry holds. No I/O here; publish.ts and discover.ts
 * move the bytes.
 */
import { canonicalJson } from '../../lib/canonical';
import { sha256Digest } from '../../lib/hash';
import { cosignAttestationLayer, DSSE_ENVELOPE_LAYER, OCI_EMPTY_CONFIG, OCI_IMAGE_MANIFEST, type OciDescriptor } from '../../crypto/cosign';
import { SIGSTORE_BUNDLE_V03 } from '../../crypto/sigstore-bundle';
import { MEDIA_TYPES } from '../../registry/index';

// The media types the layouts use, under this module's short names (one definition each).
export const OCI_MANIFEST = OCI_IMAGE_MANIFEST;
export const OCI_INDEX = MEDIA_TYPES.ociIndex;
export const DOCKER_MANIFEST = MEDIA_TYPES.dockerManifest;
export const OCI_EMPTY = OCI_EMPTY_CONFIG;
export const SIGSTORE_BUNDLE = SIGSTORE_BUNDLE_V03;
export const CYCLONEDX_JSON = 'application/vnd.cyclonedx+json';
export const DSSE_LAYER = DSSE_ENVELOPE_LAYER;
/** The largest document (envelope, bundle, SBOM) read from a registry. */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

export type Descriptor = OciDescriptor;

export const descriptorOf = (mediaType: string, bytes: Buffer, extra: Partial<Descriptor> = {}): Descriptor => ({
  mediaType,
  digest: sha256Digest(bytes),
  size: bytes.length,
  ...extra,
});

/** The OCI empty config (`{}`), which artifact manifests carry as their config. */
export const EMPTY_CONFIG_BYTES = Buffer.from('{}');
export const EMPTY_CONFIG: Descriptor = descriptorOf(OCI_EMPTY, EMPTY_CONFIG_BYTES);

// ---------------------------------------------------------------------------------------
// Referrers (OCI 1.1)

/**
 * An OCI 1.1 artifact manifest for one document about `subject` (the SBOM; attestations go out
 * as Sigstore-bundle referrers, src/crypto/cosign.ts). Deterministic (no creation
 * time), so pushing the same document again writes the same manifest digest.
 */
export function referrerManifest(a: { artifactType: string; layer: Descriptor; subject: Descriptor; annotations?: Record<string, string> }): Buffer {
  return Buffer.from(
    canonicalJson({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: a.artifactType,
      config: EMPTY_CONFIG,
      layers: [a.layer],
      subject: { mediaType: a.subject.mediaType, digest: a.subject.digest, size: a.subject.size },
      ...(a.annotations && Object.keys(a.annotations).length ? { annotations: a.annotations } : {}),
    }),
  );
}

/** The referrers tag schema's tag for `subject` (OCI 1.1, registries without the API): `sha256-<hex>`. */
export const referrersTag = (subject: string) => subject.replace(':', '-');

/**
 * The referrers tag schema's index after adding `added` to what it lists (registries without the
 * referrers API: the client keeps this index itself). Each manifest listed once; null when nothing is new.
 */
export function referrersIndex(existing: readonly Descriptor[], added: readonly Descriptor[]): Buffer | null {
  const have = new Set(existing.map((d) => d.digest));
  const fresh = added.filter((d) => !have.has(d.digest) && have.add(d.digest));
  if (!fresh.length) return null;
  return Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...existing, ...fresh] }));
}

// ---------------------------------------------------------------------------------------
// cosign's tag scheme (the layer and manifest formats: src/crypto/cosign.ts)

export interface AttLayer {
  /** The DSSE envelope bytes as cosign stores them (the layer blob). */
  bytes: Buffer;
  predicateType: string;
}

/**
 * The layers of the `.att` manifest after appending `incoming` to what the tag holds: layers
 * already there (same digest) are not added again, so a re-push writes nothing new.
 */
export function planAttLayers<L extends AttLayer>(existing: readonly Descriptor[], incoming: readonly L[]): { layers: Descriptor[]; added: L[] } {
  const have = new Set(existing.map((l) => l.digest));
  const layers = [...existing];
  const added: L[] = [];
  for (const l of incoming) {
    const { descriptor } = cosignAttestationLayer(l.bytes, l.predicateType);
    if (have.has(descriptor.digest)) continue;
    have.add(descriptor.digest);
    layers.push(descriptor);
    added.push(l);
  }
  return { layers, added };
}

// ---------------------------------------------------------------------------------------
// Reading what a registry holds

export type DocumentFormat = 'dsse' | 'sigstore-bundle' | 'cyclonedx' | 'other';

/** What a layer is, by its media type (and the manifest's artifactType for referrers). */
export function formatOf(layerMediaType: string, artifactType?: string): DocumentFormat {
  const t = layerMediaType.split(';')[0]!.trim();
  if (t === DSSE_LAYER || t === 'application/vnd.in-toto+json') return 'dsse';
  if (t.startsWith('application/vnd.dev.sigstore.bundle') || artifactType?.startsWith('application/vnd.dev.sigstore.bundle')) return 'sigstore-bundle';
  if (t === CYCLONEDX_JSON || artifactType === CYCLONEDX_JSON) return 'cyclonedx';
  return 'other';
}

/** The layer descriptors of a manifest read from a registry (malformed entries are reported, not trusted). */
export function layersOf(manifest: Record<string, unknown>): { layers: Descriptor[]; artifactType?: string; subject?: string } {
  const raw = Array.isArray(manifest.layers) ? manifest.layers : Array.isArray(manifest.blobs) ? manifest.blobs : [];
  const layers: Descriptor[] = [];
  for (const l of raw as Record<string, unknown>[]) {
    if (!l || typeof l !== 'object') continue;
    if (typeof l.mediaType !== 'string' || typeof l.digest !== 'string' || typeof l.size !== 'number') continue;
    if (!/^sha256:[0-9a-f]{64}$/.test(l.digest) || l.size < 0) continue;
    layers.push({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
      ...(l.annotations && typeof l.annotations === 'object' ? { annotations: l.annotations as Record<string, string> } : {}),
    });
  }
  const cfg = manifest.config as { mediaType?: unknown } | undefined;
  const artifactType =
    typeof manifest.artifactType === 'string'
      ? manifest.artifactType
      : typeof cfg?.mediaType === 'string' && cfg.mediaType !== OCI_EMPTY
        ? cfg.mediaType
        : undefined;
  const subject = (manifest.subject as { digest?: unknown } | undefined)?.digest;
  return { layers, ...(artifactType ? { artifactType } : {}), ...(typeof subject === 'string' ? { subject } : {}) };
}
