/** HTTP route of token revocation (admin only); contracts in src/contracts/revocation.ts. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { RevocationAnswer, RevokeBody } from '../../contracts/revocation';
import { revoke } from '../../core/identity/revocation';
import { requireScope, type ApiDeps } from '../deps';

export async function registerRevocationRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.post('/auth/revocations', { schema: { body: RevokeBody, response: { 201: RevocationAnswer } } }, async (req, reply) => {
    const p = requireScope(req, 'admin');
    const { jti, kid, reason } = req.body;
    const target = jti !== undefined ? { jti } : { kid: kid! };
    const r = await revoke(deps.ctx, p.tenant, { ...target, actor: p.sub, ...(reason ? { reason } : {}) });
    return reply.status(201).send(r);
  });
}
