/**
 * Errors that cross the API/CLI/Temporal boundary carry a stable code; the API maps them to
 * HTTP statuses, the CLI to exit codes (src/cli/exit.ts) and activities to failure types.
 * Libraries throw their own `LibraryError` subclasses; core maps those at its boundary.
 */
export type StellaCode = 'BAD_INPUT' | 'NOT_FOUND' | 'CONFLICT' | 'INTEGRITY' | 'TOO_LARGE' | 'UNAVAILABLE' | 'FORBIDDEN';

export class StellaError extends Error {
  constructor(
    public readonly code: StellaCode,
    message: string,
    public readonly details?: Record<string, unknown>,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'StellaError';
  }
}
export const badInput = (m: string, d?: Record<string, unknown>, o?: ErrorOptions) => new StellaError('BAD_INPUT', m, d, o);
export const notFound = (m: string, d?: Record<string, unknown>, o?: ErrorOptions) => new StellaError('NOT_FOUND', m, d, o);
export const conflict = (m: string, d?: Record<string, unknown>, o?: ErrorOptions) => new StellaError('CONFLICT', m, d, o);
export const integrity = (m: string, d?: Record<string, unknown>, o?: ErrorOptions) => new StellaError('INTEGRITY', m, d, o);
export const unavailable = (m: string, d?: Record<string, unknown>, o?: ErrorOptions) => new StellaError('UNAVAILABLE', m, d, o);

/**
 * Base of every library's own error (MerkleError, CryptoError, ArchiveError, ScannerError,
 * BlobError): a code from the library's vocabulary, a message, and the cause. `category`
 * says which StellaCode the library means, so core can map it without knowing each code.
 */
export class LibraryError<C extends string = string> extends Error {
  constructor(
    public readonly code: C,
    message: string,
    public readonly category: StellaCode,
    public readonly details?: Record<string, unknown>,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The StellaError a thrown value means at the boundary, or undefined for unexpected errors. */
export function asStellaError(e: unknown): StellaError | undefined {
  if (e instanceof StellaError) return e;
  if (e instanceof LibraryError) return new StellaError(e.category, e.message, { ...(e.details ?? {}), reason: e.code }, { cause: e });
  return undefined;
}
