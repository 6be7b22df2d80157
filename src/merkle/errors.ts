/** The Merkle library's one error type: a code from its vocabulary, a StellaCode category, and the cause. */
import { LibraryError, type StellaCode } from '../lib/errors';

export type MerkleCode =
  /** A size, index or leaf range outside what the tree allows (or not a safe integer). */
  | 'BAD_SIZE'
  /** A value that should be a 32-byte hash (or its 64-char lowercase hex) is not. */
  | 'BAD_HASH'
  /** Leaf entry or leaf bytes that are not a canonical v1 evidence leaf. */
  | 'BAD_LEAF'
  /** Persisted frontier state that cannot be a frontier. */
  | 'BAD_FRONTIER'
  /** A SubtreeSource returned the wrong number or shape of results. */
  | 'BAD_SOURCE'
  /** A proof that does not verify against the root it is checked against. */
  | 'BAD_PROOF'
  /** A malformed anchor JWS or payload. */
  | 'BAD_ANCHOR'
  /** An anchor whose signature does not verify. */
  | 'BAD_SIGNATURE'
  /** An unknown or unsuitable anchor key. */
  | 'BAD_KEY';

const CATEGORY: Record<MerkleCode, StellaCode> = {
  BAD_SIZE: 'BAD_INPUT',
  BAD_HASH: 'BAD_INPUT',
  BAD_LEAF: 'BAD_INPUT',
  BAD_FRONTIER: 'INTEGRITY',
  BAD_SOURCE: 'INTEGRITY',
  BAD_PROOF: 'INTEGRITY',
  BAD_ANCHOR: 'INTEGRITY',
  BAD_SIGNATURE: 'INTEGRITY',
  BAD_KEY: 'BAD_INPUT',
};

export class MerkleError extends LibraryError<MerkleCode> {
  constructor(code: MerkleCode, message: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super(code, message, CATEGORY[code], details, options);
  }
}
