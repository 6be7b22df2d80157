/** Crypto errors: one LibraryError with the library's codes; `category` keeps the HTTP status / exit code each had as a StellaError. */
import { LibraryError, type StellaCode } from '../lib/errors';

export type CryptoErrorCode =
  | 'INVALID_ARGUMENT' // a caller passed something unusable (empty purpose, bad ttl, no signer …)
  | 'UNSUPPORTED_ALG'
  | 'KEY_ALG_MISMATCH' // the key's type does not fit the algorithm
  | 'MALFORMED_ENVELOPE' // DSSE envelope is not valid JSON / base64 / shape
  | 'MALFORMED_STATEMENT' // in-toto statement does not parse or validate
  | 'MALFORMED_BUNDLE' // a Sigstore bundle that does not parse or is not a DSSE bundle
  | 'NO_TRUSTED_ROOT' // a certificate (keyless) Sigstore bundle with no Sigstore trusted root configured
  | 'MALFORMED_DIGEST'
  | 'WRONG_PAYLOAD_TYPE'
  | 'WRONG_PREDICATE_TYPE'
  | 'BAD_SIGNATURE' // no valid trusted signature
  | 'MALFORMED_KID'
  | 'UNKNOWN_KEY'
  | 'NO_ACTIVE_KEY'
  | 'KEY_NOT_ACTIVE' // signing with a retired/revoked key
  | 'CORRUPT_KEY' // a key file on disk is damaged or does not match itself
  | 'KEYSTORE_LOCKED'
  | 'MALFORMED_ROOTPACK'
  | 'ROOTPACK_DIGEST_MISMATCH'
  | 'KEY_CONFLICT' // the same kid with different content in two root packs
  | 'BAD_TOKEN'
  | 'BAD_DPOP'; // an RFC 9449 proof that does not hold (or lacks the server's nonce)

const CATEGORY: Record<CryptoErrorCode, StellaCode> = {
  INVALID_ARGUMENT: 'BAD_INPUT',
  UNSUPPORTED_ALG: 'BAD_INPUT',
  KEY_ALG_MISMATCH: 'BAD_INPUT',
  MALFORMED_ENVELOPE: 'BAD_INPUT',
  MALFORMED_STATEMENT: 'BAD_INPUT',
  MALFORMED_BUNDLE: 'BAD_INPUT',
  NO_TRUSTED_ROOT: 'BAD_INPUT',
  MALFORMED_DIGEST: 'BAD_INPUT',
  WRONG_PAYLOAD_TYPE: 'BAD_INPUT',
  WRONG_PREDICATE_TYPE: 'BAD_INPUT',
  BAD_SIGNATURE: 'INTEGRITY',
  MALFORMED_KID: 'BAD_INPUT',
  UNKNOWN_KEY: 'NOT_FOUND',
  NO_ACTIVE_KEY: 'NOT_FOUND',
  KEY_NOT_ACTIVE: 'CONFLICT',
  CORRUPT_KEY: 'INTEGRITY',
  KEYSTORE_LOCKED: 'UNAVAILABLE',
  MALFORMED_ROOTPACK: 'BAD_INPUT',
  ROOTPACK_DIGEST_MISMATCH: 'INTEGRITY',
  KEY_CONFLICT: 'CONFLICT',
  BAD_TOKEN: 'FORBIDDEN',
  BAD_DPOP: 'FORBIDDEN',
};

export class CryptoError extends LibraryError<CryptoErrorCode> {
  constructor(code: CryptoErrorCode, message: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super(code, message, CATEGORY[code], details, options);
  }
}
