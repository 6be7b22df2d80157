import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { tenantOf, type ApiDeps } from '../deps';
import { badInput, StellaError } from '../../lib/errors';
import { runDoctor, selectChecks, sortedChecks } from '../../core/doctor';

const query = z.object({
  category: z
    .string()
    .regex(/^[a-z0-9-]+$/)
    .optional(),
  check: z
    .string()
    .regex(/^check(\.[a-z0-9-]+)+$/, 'expected a check id such as check.storage.evidencelocker')
    .optional(),
  tenant: z.string().optional(),
});

/** `stella doctor`: runs registered checks (src/core/doctor.ts) in the API process. */
export async function registerDoctorRoutes(app: FastifyInstance, deps: ApiDeps) {
  app.get('/doctor/checks', async (req) => {
    if (!req.principal) throw new StellaError('FORBIDDEN', 'no principal');
    return { checks: sortedChecks(deps.doctorChecks).map((c) => ({ id: c.id, categories: c.categories, description: c.description, scope: c.scope ?? null })) };
  });

  app.get('/doctor', async (req) => {
    const p = req.principal;
    if (!p) throw new StellaError('FORBIDDEN', 'no principal');
    const raw = req.query as Record<string, string>;
    const q = query.safeParse(raw);
    if (!q.success) throw badInput(q.error.issues[0]!.message);
    if (!selectChecks(deps.doctorChecks, q.data).length) {
      throw badInput(
        `no doctor check matches ${q.data.check ?? `category ${q.data.category}`}; known: ${sortedChecks(deps.doctorChecks)
          .map((c) => c.id)
          .join(', ')}`,
      );
    }
    // Extra `arg.<name>=<value>` query parameters reach checks that take arguments.
    const args = Object.fromEntries(
      Object.entries(raw)
        .filter(([k]) => k.startsWith('arg.'))
        .map(([k, v]) => [k.slice(4), String(v)]),
    );
    return runDoctor({ ctx: deps.ctx, tenant: tenantOf(req), scopes: p.scopes, temporal: deps.temporal, args }, q.data, deps.doctorChecks);
  });
}
