/**
 * Where stella's attestations sit in a registry, as pure decisions: which documents go out in
 * which manifests (OCI 1.1 referrer artifacts or cosign's `sha256-<hex>.att` tag), what is already
 * there, and what a manifest found in a registry holds. No I/O here; publish.ts and discover.ts
 * move the bytes.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../lib/canonical';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const SIGSTORE_BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const CYCLONEDX_JSON = 'application/vnd.cyclonedx+json';
export const DSSE_LAYER = 'application/vnd.dsse.envelope.v1+json';
/** cosign's annotation on a signature/attestation layer (empty for attestations: the signature is inside the DSSE envelope). */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** The largest document (envelope, bundle, SBOM) read from a registry. */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const descriptorOf = (mediaType: string, bytes: Buffer, extra: Partial<Descriptor> = {}): Descriptor => ({
  mediaType,
  digest: sha256(bytes),
  size: bytes.length,
  ...extra,
});

/** The OCI empty config (`{}`), which artifact manifests carry as their config. */
export const EMPTY_CONFIG_BYTES = Buffer.from('{}');
export const EMPTY_CONFIG: Descriptor = descriptorOf(OCI_EMPTY, EMPTY_CONFIG_BYTES);

/** cosign's tag for the attestations of an image digest: `sha256-<hex>.att`. */
export function cosignAttTag(digest: string): string {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  return `${digest.replace(':', '-')}.att`;
}

// ---------------------------------------------------------------------------------------
// Referrers (OCI 1.1)

/**
 * An OCI 1.1 artifact manifest for one document about `subject`. Deterministic (no creation
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

// ---------------------------------------------------------------------------------------
// cosign's tag scheme

export interface AttLayer {
  /** The DSSE envelope bytes as cosign stores them (the layer blob). */
  bytes: Buffer;
  predicateType: string;
}

/**
 * The layers of the `.att` manifest after appending `incoming` to what the tag holds: layers
 * already there (same digest) are not added again, so a re-push writes nothing new.
 */
export function planAttLayers(existing: readonly Descriptor[], incoming: readonly AttLayer[]): { layers: Descriptor[]; added: AttLayer[] } {
  const have = new Set(existing.map((l) => l.digest));
  const layers = [...existing];
  const added: AttLayer[] = [];
  for (const l of incoming) {
    const d = sha256(l.bytes);
    if (have.has(d)) continue;
    have.add(d);
    layers.push(descriptorOf(DSSE_LAYER, l.bytes, { annotations: { [COSIGN_SIGNATURE_ANNOTATION]: '', predicateType: l.predicateType } }));
    added.push(l);
  }
  return { layers, added };
}

/**
 * The config cosign writes for its signature/attestation images: an image config whose rootfs
 * lists the (uncompressed) layers, with zero times, so go-containerregistry reads it as an image.
 */
export function attConfig(layers: readonly Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
}

/** The `.att` manifest (OCI image manifest, cosign's layout) over these layers and config. */
export function attManifest(config: Buffer, layers: readonly Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptorOf('application/vnd.oci.image.config.v1+json', config),
      layers,
    }),
  );
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
