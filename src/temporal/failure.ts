/** What a failed workflow says to its caller: the root cause's message and code, not "Activity task failed". */
import { type StellaCode, StellaError } from '../lib/errors';

export interface WorkflowFailure {
  message: string;
  /** The StellaError code the failing activity carried as its failure type (BAD_INPUT, INTEGRITY…), if any. */
  code: string | null;
}

const CODES = new Set(['BAD_INPUT', 'NOT_FOUND', 'CONFLICT', 'INTEGRITY', 'TOO_LARGE', 'UNAVAILABLE', 'FORBIDDEN']);

/** Walks WorkflowFailedError → ActivityFailure → ApplicationFailure to the innermost cause. */
export function rootFailure(e: unknown): WorkflowFailure {
  let cur = e as { message?: string; type?: string; cause?: unknown } | undefined;
  let code: string | null = null;
  for (let i = 0; cur && i < 10; i++) {
    if (typeof cur.type === 'string' && CODES.has(cur.type)) code = cur.type;
    const next = cur.cause as typeof cur;
    if (!next || typeof next !== 'object' || !next.message) break;
    cur = next;
  }
  return { message: String(cur?.message ?? 'workflow failed'), code };
}

/** Why a failed workflow failed (its root cause), or null when its result settled fine. */
export function failureOf(result: Promise<unknown>): Promise<WorkflowFailure | null> {
  return result.then(() => null, rootFailure);
}

/** A failure as an error the API answers with: its StellaError code when it has one. */
export function failureError(what: string, f: WorkflowFailure): Error {
  const message = `${what} failed: ${f.message}`;
  return f.code ? new StellaError(f.code as StellaCode, message) : new Error(message);
}
