/** Exit codes are part of the CLI's contract; scripts branch on them. */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  INTEGRITY: 4,
  UNAVAILABLE: 5,
  UNAUTHORIZED: 6,
  CONFLICT: 7,
  /** A wait ended without the awaited outcome (e.g. promotion still blocked). */
  PENDING: 8,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    public readonly exitCode: number = EXIT.FAILURE,
  ) {
    super(message);
  }
}

export const API_CODE_TO_EXIT: Record<string, number> = {
  BAD_INPUT: EXIT.USAGE,
  NOT_FOUND: EXIT.NOT_FOUND,
  INTEGRITY: EXIT.INTEGRITY,
  CONFLICT: EXIT.CONFLICT,
  TOO_LARGE: EXIT.USAGE,
  UNAVAILABLE: EXIT.UNAVAILABLE,
  FORBIDDEN: EXIT.UNAUTHORIZED,
  UNAUTHENTICATED: EXIT.UNAUTHORIZED,
  RATE_LIMITED: EXIT.UNAVAILABLE,
};
