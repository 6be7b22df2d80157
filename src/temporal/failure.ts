/** What a failed workflow says to its caller: the root cause's message and code, not "Activity task failed". */

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
