/**
 * Shared pieces of the HTTP contract: the error body, digests, ids and paging. Every route's
 * request and response schemas live in src/contracts/<feature>.ts; the API validates with them
 * (fastify-type-provider-zod) and the CLI parses answers with them.
 */
import { z } from 'zod';

export const Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'expected sha256:<64 hex>');

/** The error body every non-2xx answer carries. */
export const ErrorBody = z.object({
  error: z.looseObject({ code: z.string(), message: z.string() }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** `?limit=` on list routes: a positive integer, capped. */
export const Limit = (max = 1000, dflt = 100) => z.coerce.number().int().min(1).max(max).default(dflt);

/** Query-string booleans: `true`/`false`/`1`/`0`. */
export const QueryBool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** A 202 for work handed to a Temporal workflow. */
export const Accepted = z.looseObject({ workflowId: z.string() });
