/**
 * Registry errors: one LibraryError with the registry client's own codes; `category` says which
 * stella code each means and `retryable` whether trying again can help (network, 429, 5xx), so
 * activities can fail non-retryably where retrying cannot help. Every message names the reference.
 */
import { LibraryError, type StellaCode } from '../lib/errors';

export type RegistryErrorCode =
  /** The reference string is malformed. */
  | 'BAD_REFERENCE'
  /** A platform string that is not os/arch[/variant]. */
  | 'BAD_PLATFORM'
  /** Unknown host, connection refused/reset, timeout. */
  | 'UNREACHABLE'
  /** TLS failed, or plain HTTP would be needed but the host is not listed as insecure. */
  | 'INSECURE'
  /** 401: credentials missing or wrong. */
  | 'UNAUTHORIZED'
  /** 403: authenticated but not allowed. */
  | 'DENIED'
  /** 404: manifest, tag or blob unknown. */
  | 'NOT_FOUND'
  /** An index has no manifest for the requested platform. */
  | 'PLATFORM_NOT_FOUND'
  /** Bytes received do not hash to the digest (or size) they were asked for / announced with. */
  | 'DIGEST_MISMATCH'
  /** A manifest or blob larger than the bound. */
  | 'TOO_LARGE'
  /** 429 or 5xx. */
  | 'UNAVAILABLE'
  /** The registry answered something the distribution spec does not allow (bad JSON, unexpected status, bad media type). */
  | 'PROTOCOL'
  /** The docker config.json could not be read or parsed. */
  | 'AUTH_FILE';

const CATEGORY: Record<RegistryErrorCode, StellaCode> = {
  BAD_REFERENCE: 'BAD_INPUT',
  BAD_PLATFORM: 'BAD_INPUT',
  UNREACHABLE: 'UNAVAILABLE',
  INSECURE: 'BAD_INPUT',
  UNAUTHORIZED: 'FORBIDDEN',
  DENIED: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  PLATFORM_NOT_FOUND: 'NOT_FOUND',
  DIGEST_MISMATCH: 'INTEGRITY',
  TOO_LARGE: 'TOO_LARGE',
  UNAVAILABLE: 'UNAVAILABLE',
  PROTOCOL: 'BAD_INPUT',
  AUTH_FILE: 'BAD_INPUT',
};

export class RegistryError extends LibraryError<RegistryErrorCode> {
  /** Whether the same call may succeed later (network trouble, rate limits, server errors). */
  readonly retryable: boolean;
  constructor(code: RegistryErrorCode, message: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super(code, message, CATEGORY[code], details, options);
    this.retryable = code === 'UNREACHABLE' || code === 'UNAVAILABLE';
  }
}

export const isRegistryError = (e: unknown): e is RegistryError => e instanceof RegistryError;
