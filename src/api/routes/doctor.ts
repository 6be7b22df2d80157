/** `stella doctor`: runs the features' checks (src/core/doctor.ts) in the API process. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { DoctorCheckList, DoctorQuery, DoctorReport } from '../../contracts/doctor';
import { checkArgs, runDoctor, selectChecks, sortedChecks } from '../../core/doctor';
import { badInput, StellaError } from '../../lib/errors';
import { type ApiDeps, tenantOf } from '../deps';

export async function registerDoctorRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get('/doctor/checks', { schema: { response: { 200: DoctorCheckList } } }, async (req) => {
    if (!req.principal) throw new StellaError('FORBIDDEN', 'no principal');
    return { checks: sortedChecks(deps.doctorChecks).map((c) => ({ id: c.id, categories: c.categories, description: c.description, scope: c.scope ?? null })) };
  });

  app.get('/doctor', { schema: { querystring: DoctorQuery, response: { 200: DoctorReport } } }, async (req) => {
    const p = req.principal;
    if (!p) throw new StellaError('FORBIDDEN', 'no principal');
    const q = req.query;
    if (!selectChecks(deps.doctorChecks, q).length) {
      const known = sortedChecks(deps.doctorChecks).map((c) => c.id);
      throw badInput(`no doctor check matches ${q.check ?? `category ${q.category}`}; known: ${known.join(', ')}`);
    }
    const env = { ctx: deps.ctx, tenant: tenantOf(req), scopes: p.scopes, temporal: deps.temporal, args: checkArgs(q) };
    return runDoctor(env, q, deps.doctorChecks);
  });
}
