/**
 * Shared pieces of the HTTP contract: the error body, digests, ids and paging. Every route's
 * request and response schemas live in src/contracts/<feature>.ts; the API validates with them
 * (fastify-type-provider-zod) and the CLI parses answers with them.
 */
import { z } from 'zod';

export const Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 hex>');

/**
 * The error body every non-2xx answer carries: RFC 9457 problem details
 * (`application/problem+json`) with stella's stable `code`; errors with details add them as
 * extension members (e.g. `reason`, `retryAfter`, `requestId`). See src/api/problem.ts.
 */
export const Problem = z.looseObject({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  instance: z.string(),
  code: z.string(),
});
export type Problem = z.infer<typeof Problem>;

/** The error body before RFC 9457 (`{ error: { code, message } }`), still read by the CLI client. */
export const LegacyErrorBody = z.object({
  error: z.looseObject({ code: z.string(), message: z.string() }),
});

/** `?limit=` on list routes: a positive integer, capped. */
export const Limit = (max = 1000, dflt = 100) => z.coerce.number().int().min(1).max(max).default(dflt);

/** Query-string booleans: `true`/`false`/`1`/`0`. */
export const QueryBool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** A 202 for work handed to a Temporal workflow. */
export const Accepted = z.looseObject({ workflowId: z.string() });
