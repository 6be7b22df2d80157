/** HTTP routes of attestations in registries: parse (src/contracts/oci-attest) → call core → reply. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { requireScope, tenantOf, type ApiDeps } from '../deps';
import {
  DiscoverQuery,
  Discovery,
  ImportBody,
  PublicationList,
  PublicationsQuery,
  PublishBody,
  PublishConfigBody,
  PublishConfigView,
  Published,
  RegistryImport,
} from '../../contracts/oci-attest';
import { publishConfig, setPublishConfig } from '../../core/oci-attest/auto';
import { discoverAttestations, importFromRegistry } from '../../core/oci-attest/discover';
import { publishAttestations } from '../../core/oci-attest/publish';
import { listPublications } from '../../core/oci-attest/store';

export async function registerOciAttestRoutes(fastify: FastifyInstance, { ctx }: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.post('/attestations/registry/push', { schema: { body: PublishBody, response: { 200: Published } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    return publishAttestations(ctx, tenantOf(req), { ...req.body, actor: p.sub });
  });

  app.get('/attestations/registry/publications', { schema: { querystring: PublicationsQuery, response: { 200: PublicationList } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return { items: await listPublications(ctx.db, tenantOf(req), req.query.artifact) };
  });

  app.get('/attestations/registry/discover', { schema: { querystring: DiscoverQuery, response: { 200: Discovery } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return discoverAttestations(ctx, tenantOf(req), { image: req.query.image, ...(req.query.insecure ? { insecure: true } : {}) });
  });

  app.post('/attestations/registry/import', { schema: { body: ImportBody, response: { 200: RegistryImport } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    return importFromRegistry(ctx, tenantOf(req), { ...req.body, actor: p.sub });
  });

  app.get('/attestations/registry/config', { schema: { response: { 200: PublishConfigView } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return publishConfig(ctx, tenantOf(req));
  });

  app.put('/attestations/registry/config', { schema: { body: PublishConfigBody, response: { 200: PublishConfigView } } }, async (req) => {
    const p = requireScope(req, 'admin');
    return setPublishConfig(ctx, tenantOf(req), req.body, p.sub);
  });
}
