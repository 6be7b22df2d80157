/** The one classifier activities use to turn errors into Temporal failures. */
import { ApplicationFailure } from '@temporalio/activity';
import { asStellaError } from '../src/lib/errors';

/**
 * Business errors (bad input, not found, integrity, conflict …) are decisions, not faults:
 * they fail the activity without retrying, with the code as the failure type so the workflow,
 * the API status and the CLI exit code all see it. UNAVAILABLE and unexpected errors are
 * rethrown as they are, so Temporal retries them.
 */
export function toActivityFailure(e: unknown): never {
  const s = asStellaError(e);
  if (s && s.code !== 'UNAVAILABLE')
    throw ApplicationFailure.create({
      message: s.message,
      type: s.code,
      details: s.details ? [s.details] : [],
      nonRetryable: true,
      cause: e instanceof Error ? e : undefined,
    });
  throw e;
}

/** Runs an activity body and classifies what it throws. */
export async function classified<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    return toActivityFailure(e);
  }
}
