/**
 * cosign's attestation layouts in an OCI registry, as pure builders and parsers (no I/O: the
 * registry code pushes and pulls the bytes):
 *
 * - the `.att` form `cosign attest` writes under the tag `sha256-<hex>.att`: an OCI image manifest
 *   whose layers are DSSE envelopes (mediaType `application/vnd.dsse.envelope.v1+json`), each
 *   annotated `dev.cosignproject.cosign/signature: ""` (the signature is inside the envelope) and
 *   `predicateType`;
 * - the OCI 1.1 referrer form of a Sigstore bundle (cosign v2.4+ `--new-bundle-format`,
 *   policy-controller): artifactType and layer `application/vnd.dev.sigstore.bundle.v0.3+json`,
 *   the OCI empty config, `subject` = the image's descriptor.
 *
 * Manifests are canonical JSON (sorted keys, no creation time), so the same content always has
 * the same digest and a re-push writes nothing new.
 */
import { canonicalJson } from '../lib/canonical';
import { sha256Digest } from '../lib/hash';
import { parseEnvelope } from './dsse';
import { CryptoError } from './errors';
import { SIGSTORE_BUNDLE_V03 } from './sigstore-bundle';

export const OCI_IMAGE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';
export const DSSE_ENVELOPE_LAYER = 'application/vnd.dsse.envelope.v1+json';
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const PREDICATE_TYPE_ANNOTATION = 'predicateType';
export const BUNDLE_CONTENT_ANNOTATION = 'dev.sigstore.bundle.content';
export const BUNDLE_PREDICATE_TYPE_ANNOTATION = 'dev.sigstore.bundle.predicateType';

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** A blob and its descriptor. */
export interface OciBlob {
  descriptor: OciDescriptor;
  bytes: Buffer;
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** cosign's tag for the attestations of an image digest: `sha256-<hex>.att`. */
export function cosignAttestationTag(imageDigest: string): string {
  if (!DIGEST_RE.test(imageDigest)) throw new CryptoError('MALFORMED_DIGEST', `not a sha256 digest: ${imageDigest}`);
  return `${imageDigest.replace(':', '-')}.att`;
}

/** One `.att` layer: the DSSE envelope bytes as the blob, annotated as cosign does. The envelope must parse. */
export function cosignAttestationLayer(envelope: Buffer, predicateType: string): OciBlob {
  parseEnvelope(envelope);
  return {
    bytes: envelope,
    descriptor: {
      mediaType: DSSE_ENVELOPE_LAYER,
      digest: sha256Digest(envelope),
      size: envelope.length,
      annotations: { [COSIGN_SIGNATURE_ANNOTATION]: '', [PREDICATE_TYPE_ANNOTATION]: predicateType },
    },
  };
}

/**
 * The `.att` manifest for some layers (duplicates by digest dropped) and its config blob — an
 * OCI image config listing the layers, as cosign writes it with a zero creation time.
 */
export function cosignAttestationManifest(layers: OciDescriptor[]): { manifest: Buffer; config: OciBlob } {
  const seen = new Set<string>();
  const unique = layers.filter((l) => !seen.has(l.digest) && seen.add(l.digest));
  const zero = '0001-01-01T00:00:00Z';
  const configBytes = Buffer.from(
    canonicalJson({
      architecture: '',
      config: {},
      created: zero,
      history: [{ created: zero }],
      os: '',
      rootfs: { type: 'layers', diff_ids: unique.map((l) => l.digest) },
    }),
  );
  const config: OciBlob = { bytes: configBytes, descriptor: { mediaType: OCI_IMAGE_CONFIG, digest: sha256Digest(configBytes), size: configBytes.length } };
  const manifest = Buffer.from(canonicalJson({ schemaVersion: 2, mediaType: OCI_IMAGE_MANIFEST, config: config.descriptor, layers: unique }));
  return { manifest, config };
}

export interface AttestationLayerRef {
  digest: string;
  size: number;
  predicateType: string | null;
}

/**
 * The DSSE layers of a `.att` manifest (what cosign or stella pushed), with their predicate type
 * annotation. Layers of other media types are skipped; a manifest that is not an OCI/Docker image
 * manifest throws MALFORMED_ENVELOPE naming what is wrong.
 */
export function parseCosignAttestationManifest(manifest: Buffer | string): AttestationLayerRef[] {
  const m = manifestObject(manifest);
  if (!Array.isArray(m.layers)) throw new CryptoError('MALFORMED_ENVELOPE', 'cosign attestation manifest has no layers array');
  return m.layers.flatMap((l: unknown) => {
    const d = descriptorOf(l);
    if (!d || d.mediaType !== DSSE_ENVELOPE_LAYER) return [];
    return [{ digest: d.digest, size: d.size, predicateType: d.annotations?.[PREDICATE_TYPE_ANNOTATION] ?? null }];
  });
}

/**
 * An OCI 1.1 referrer manifest holding one Sigstore bundle about `subject` (cosign v2.4+
 * `--new-bundle-format`, policy-controller): returns the manifest, the bundle layer and the empty config.
 */
export function sigstoreBundleReferrer(bundle: Buffer, subject: OciDescriptor, predicateType: string): { manifest: Buffer; layer: OciBlob; config: OciBlob } {
  if (!DIGEST_RE.test(subject.digest)) throw new CryptoError('MALFORMED_DIGEST', `subject digest is not sha256: ${subject.digest}`);
  const configBytes = Buffer.from('{}');
  const config: OciBlob = { bytes: configBytes, descriptor: { mediaType: OCI_EMPTY_CONFIG, digest: sha256Digest(configBytes), size: configBytes.length } };
  const layer: OciBlob = { bytes: bundle, descriptor: { mediaType: SIGSTORE_BUNDLE_V03, digest: sha256Digest(bundle), size: bundle.length } };
  const manifest = Buffer.from(
    canonicalJson({
      schemaVersion: 2,
      mediaType: OCI_IMAGE_MANIFEST,
      artifactType: SIGSTORE_BUNDLE_V03,
      config: config.descriptor,
      layers: [layer.descriptor],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: { [BUNDLE_CONTENT_ANNOTATION]: 'dsse-envelope', [BUNDLE_PREDICATE_TYPE_ANNOTATION]: predicateType },
    }),
  );
  return { manifest, layer, config };
}

/** The bundle layer of a Sigstore-bundle referrer manifest, or null when the manifest is another kind of artifact. */
export function parseSigstoreBundleReferrer(manifest: Buffer | string): { layer: OciDescriptor; subject: string | null; predicateType: string | null } | null {
  const m = manifestObject(manifest);
  const layers = Array.isArray(m.layers) ? m.layers.map(descriptorOf) : [];
  const layer = layers.find((l) => l?.mediaType === SIGSTORE_BUNDLE_V03);
  if (m.artifactType !== SIGSTORE_BUNDLE_V03 && !layer) return null;
  if (!layer) throw new CryptoError('MALFORMED_ENVELOPE', 'Sigstore bundle referrer has no bundle layer');
  const subject = descriptorOf(m.subject)?.digest ?? null;
  const annotations = (m.annotations ?? {}) as Record<string, unknown>;
  const pt = annotations[BUNDLE_PREDICATE_TYPE_ANNOTATION];
  return { layer, subject, predicateType: typeof pt === 'string' ? pt : null };
}

function manifestObject(
  manifest: Buffer | string,
): Record<string, unknown> & { layers?: unknown; artifactType?: unknown; subject?: unknown; annotations?: unknown } {
  let m: unknown;
  try {
    m = JSON.parse(typeof manifest === 'string' ? manifest : manifest.toString('utf8'));
  } catch {
    throw new CryptoError('MALFORMED_ENVELOPE', 'manifest is not JSON');
  }
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw new CryptoError('MALFORMED_ENVELOPE', 'manifest is not a JSON object');
  const o = m as Record<string, unknown>;
  if (o.schemaVersion !== 2) throw new CryptoError('MALFORMED_ENVELOPE', `manifest schemaVersion is ${JSON.stringify(o.schemaVersion)}, expected 2`);
  return o;
}

function descriptorOf(v: unknown): OciDescriptor | null {
  if (!v || typeof v !== 'object') return null;
  const d = v as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || !DIGEST_RE.test(d.digest) || typeof d.size !== 'number') return null;
  const annotations =
    d.annotations && typeof d.annotations === 'object'
      ? Object.fromEntries(Object.entries(d.annotations as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'))
      : undefined;
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(annotations ? { annotations } : {}) };
}
