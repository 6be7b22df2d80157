/**
 * The OCI distribution client's contract (src/registry): what the scanner, the attest feature
 * (publish/discover) and the promotion/event edges rely on. The implementation lives beside
 * this file (client.ts and friends); callers import from './index'.
 *
 * Everything is digest-first: a tag is resolved once to a manifest digest and every later
 * call names the digest, so a tag moving under us never changes what we scan or gate.
 */
import type { Readable } from 'node:stream';
import type { OciDescriptor as CosignDescriptor } from '../crypto/cosign';

/** `host[:port]/repo/path[:tag][@sha256:…]`, normalised (docker.io defaults applied). */
export interface ImageReference {
  /** Registry host as used on the wire, e.g. `registry-1.docker.io`, `localhost:5000`. */
  registry: string;
  /** Repository path, e.g. `library/alpine`, `team/app`. */
  repository: string;
  tag?: string;
  digest?: string;
  /** The canonical string form (`registry/repository[:tag][@digest]`). */
  toString(): string;
}

/** A descriptor as the cosign/referrer layouts write it, plus the platform an index entry names. */
export interface OciDescriptor extends CosignDescriptor {
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface RegistryClientOptions {
  /** docker config.json with `auths` (and credHelpers ignored); default: STELLA_REGISTRY_AUTH_FILE, then ~/.docker/config.json. */
  authFile?: string;
  /** Hosts (host[:port]) that may be spoken to over plain HTTP; never implied. */
  insecureRegistries?: string[];
  /** Largest manifest/index accepted, bytes (default 4 MiB, the distribution spec's limit). */
  maxManifestBytes?: number;
  /** Per-request timeout, ms. */
  timeoutMs?: number;
}

export interface FetchedManifest {
  ref: ImageReference;
  /** sha256 of the exact bytes received (checked against the reference's digest, when it has one). */
  digest: string;
  mediaType: string;
  bytes: Buffer;
  json: Record<string, unknown>;
}

export interface ResolvedReference {
  /** The reference as given, normalised. */
  ref: ImageReference;
  /** The platform image manifest's digest: the artifact digest stella works on. */
  digest: string;
  mediaType: string;
  /** Set when `ref` named a multi-platform index and a platform was selected from it. */
  indexDigest?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
  /** `registry/repository@digest`. */
  pinned: string;
}

/** What the scanner, attest and promotion code needs from a registry. */
export interface RegistryClient {
  /** Tag or digest → the platform manifest digest (index resolved with `platform`, default the worker's linux/<arch>). */
  resolve(ref: string | ImageReference, opts?: { platform?: string }): Promise<ResolvedReference>;
  getManifest(ref: string | ImageReference, opts?: { accept?: string[] }): Promise<FetchedManifest>;
  /** PUT a manifest under a tag or its digest; returns its digest. */
  putManifest(ref: string | ImageReference, bytes: Buffer, mediaType: string): Promise<string>;
  /** A blob's bytes, verified against `digest` while streaming: the stream errors (RegistryError DIGEST_MISMATCH) instead of ending when they do not match. */
  openBlob(repo: string | ImageReference, digest: string, size?: number): Promise<Readable>;
  /** Small blobs (configs, attestations), bounded and verified. */
  getBlob(repo: string | ImageReference, digest: string, maxBytes?: number): Promise<Buffer>;
  /** Upload a blob (skipped when the registry already has it); returns its descriptor digest and size. */
  pushBlob(repo: string | ImageReference, bytes: Buffer): Promise<{ digest: string; size: number }>;
  /**
   * Manifests that refer to `digest` (OCI 1.1 referrers API; when the registry lacks it, the
   * referrers tag schema `sha256-<hex>` index), optionally filtered by artifactType.
   */
  referrers(repo: string | ImageReference, digest: string, opts?: { artifactType?: string }): Promise<OciDescriptor[]>;
  /** Whether the registry serves the OCI 1.1 referrers API (probed once per host). */
  supportsReferrers(repo: string | ImageReference): Promise<boolean>;
}
