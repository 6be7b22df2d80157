/**
 * Errors that cross the API/CLI boundary carry a stable code; the API maps them to HTTP
 * statuses and the CLI to exit codes (see src/cli/exit.ts).
 */
export class StellaError extends Error {
  constructor(public readonly code: 'BAD_INPUT' | 'NOT_FOUND' | 'CONFLICT' | 'INTEGRITY' | 'TOO_LARGE' | 'UNAVAILABLE' | 'FORBIDDEN', message: string, public readonly details?: Record<string, unknown>) {
    super(message);
  }
}
export const badInput = (m: string, d?: Record<string, unknown>) => new StellaError('BAD_INPUT', m, d);
export const notFound = (m: string, d?: Record<string, unknown>) => new StellaError('NOT_FOUND', m, d);
export const conflict = (m: string, d?: Record<string, unknown>) => new StellaError('CONFLICT', m, d);
export const integrity = (m: string, d?: Record<string, unknown>) => new StellaError('INTEGRITY', m, d);
