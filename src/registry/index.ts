/** The OCI distribution client library: see types.ts for the contract and docs/registries.md. */
export * from './types';
export { RegistryError, isRegistryError, type RegistryErrorCode } from './errors';
export { parseReference, toReference, pinnedReference, withTarget, manifestTarget, isSha256Digest, DOCKER_HUB } from './reference';
export {
  createRegistryClient,
  OciRegistryClient,
  DigestVerifier,
  MEDIA_TYPES,
  DEFAULT_MAX_MANIFEST_BYTES,
  defaultPlatform,
  parsePlatform,
  formatPlatform,
  isIndex,
  indexChildren,
  type ManifestHead,
  type Platform,
} from './client';
export { createLayerCache, layerCacheFromEnv, type LayerCache, type LayerCacheOptions } from './cache';
export { openRegistryImage, type OpenRegistryImageOptions } from './image';
export { AuthFile, parseChallenge, type Credentials, type Challenge } from './auth';
