/** HTTP contract of liveness and readiness (src/api/routes/health.ts); /metrics is Prometheus text. */
import { z } from 'zod';

export const Liveness = z.object({ status: z.literal('ok') });

export const ReadinessCheck = z.object({ name: z.string(), ok: z.boolean(), latencyMs: z.number(), error: z.string().optional() });
export const Readiness = z.object({
  status: z.enum(['ready', 'unready']),
  failed: z.array(z.string()),
  checks: z.array(ReadinessCheck),
});
export type Readiness = z.infer<typeof Readiness>;
