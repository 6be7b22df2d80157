/**
 * GET /openapi.json: an OpenAPI 3.1 document generated from the routes' zod schemas, public, that
 * lists every registered route with its method, path parameters in `{name}` form and each declared
 * query parameter; validated by an independent OpenAPI schema validator. GET /docs: an offline page.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { apiFor } from './support/api';
import { harness, type Harness } from './support/context';

let h: Harness;
let app: FastifyInstance;

beforeAll(async () => {
  h = await harness({ worker: false, env: { STELLA_LOG_LEVEL: 'fatal' } });
  app = await apiFor(h);
});
afterAll(async () => {
  await app?.close();
  await h?.close();
});

interface Operation {
  parameters?: { name: string; in: string; required?: boolean }[];
  responses?: Record<string, unknown>;
  security?: unknown[];
  requestBody?: unknown;
}
interface Doc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string }>; schemas: Record<string, unknown> };
  security: Record<string, unknown>[];
}

/** `/evidence/:id/meta` → `/evidence/{id}/meta` */
const openapiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** The keys of a zod object schema (unwrapping optional/default/pipe around it). */
function keysOf(schema: unknown): string[] {
  let s = schema as z.ZodType | undefined;
  for (let i = 0; s && i < 6; i++) {
    if (s instanceof z.ZodObject) return Object.keys(s.shape);
    const def = (s as unknown as { def: { innerType?: z.ZodType; in?: z.ZodType } }).def;
    s = def.innerType ?? def.in;
  }
  return [];
}

async function fetchDoc(): Promise<Doc> {
  const res = await app.inject({ method: 'GET', url: '/openapi.json' }); // no token
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res.json() as Doc;
}

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document with the package version and both token schemes', async () => {
    const doc = await fetchDoc();
    expect(doc.openapi).toBe('3.1.0');
    const { version } = (await import('../package.json', { with: { type: 'json' } })).default as { version: string };
    expect(doc.info).toMatchObject({ title: 'stella API', version });
    expect(Object.keys(doc.paths).length).toBeGreaterThan(50);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.securitySchemes.dpop).toBeDefined();
    expect(doc.security).toEqual([{ bearer: [] }, { dpop: [] }]);
    expect(doc.components.schemas.Error).toBeDefined();

    const result = await new Validator().validate(doc as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('lists every registered route with its method, {param} paths and declared parameters', async () => {
    const doc = await fetchDoc();
    const routes = app.routeList().filter((r) => r.method !== 'HEAD' && r.url !== '/openapi.json' && r.url !== '/docs');
    expect(routes.length).toBeGreaterThan(80);
    const missing: string[] = [];
    const badParams: string[] = [];
    for (const r of routes) {
      const path = openapiPath(r.url);
      const op = doc.paths[path]?.[r.method.toLowerCase()];
      if (!op) {
        missing.push(`${r.method} ${r.url}`);
        continue;
      }
      const declared = (where: 'path' | 'query') => (op.parameters ?? []).filter((p) => p.in === where).map((p) => p.name);
      // Every `:name` of the URL is a required path parameter.
      for (const name of [...r.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!)) {
        const p = op.parameters?.find((x) => x.in === 'path' && x.name === name);
        if (!p?.required) badParams.push(`${r.method} ${r.url}: path parameter ${name}`);
      }
      for (const key of keysOf(r.schema?.querystring)) {
        if (!declared('query').includes(key)) badParams.push(`${r.method} ${r.url}: query parameter ${key}`);
      }
      if (r.schema?.body && !op.requestBody) badParams.push(`${r.method} ${r.url}: request body`);
    }
    expect(missing).toEqual([]);
    expect(badParams).toEqual([]);
    // No Express-style path survives, and the document has no route the server lacks.
    expect(Object.keys(doc.paths).filter((p) => p.includes(':'))).toEqual([]);
    const registered = new Set(routes.map((r) => `${r.method.toLowerCase()} ${openapiPath(r.url)}`));
    const documented = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m} ${p}`));
    expect(documented.filter((k) => !registered.has(k))).toEqual([]);
  });

  it('a route with a zod query schema lists its query parameters; responses carry the error body', async () => {
    const doc = await fetchDoc();
    const withQuery = app.routeList().filter((r) => r.method === 'GET' && keysOf(r.schema?.querystring).length > 0);
    expect(withQuery.length).toBeGreaterThan(5);
    const list = doc.paths['/evidence']?.get;
    expect(list?.parameters?.filter((p) => p.in === 'query').map((p) => p.name)).toEqual(
      expect.arrayContaining(keysOf(app.routeList().find((r) => r.method === 'GET' && r.url === '/evidence')?.schema?.querystring)),
    );
    // Protected operations document 401 (with the challenge) and the error shape; public ones need no token.
    expect(list?.responses?.['401']).toEqual({ $ref: '#/components/responses/Unauthorized' });
    expect(list?.responses?.['4XX']).toEqual({ $ref: '#/components/responses/BadRequest' });
    expect(doc.paths['/healthz']?.get?.security).toEqual([]);
    expect(doc.paths['/auth/token']?.post?.security).toEqual([]);
    expect(list?.security).toBeUndefined(); // the document-wide bearer/DPoP requirement applies
  });

  it('matches what the API sends: an unauthenticated call answers the documented error body', async () => {
    const doc = await fetchDoc();
    const res = await app.inject({ method: 'GET', url: '/evidence' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const errorSchema = doc.components.schemas.Error as { required: string[] };
    const body = res.json() as Record<string, unknown>;
    for (const k of errorSchema.required) expect(body).toHaveProperty(k);
    expect(body).toMatchObject({
      status: 401,
      code: 'UNAUTHENTICATED',
      title: 'Unauthorized',
      instance: '/evidence',
      type: 'urn:stella:problem:unauthenticated',
    });
  });
});

describe('GET /docs', () => {
  it('is a self-contained HTML page (no token, no external scripts) that loads openapi.json', async () => {
    const res = await app.inject({ method: 'GET', url: '/docs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('<!doctype html>');
    expect(res.body).toContain("fetch('openapi.json')");
    expect(res.body).not.toMatch(/<script[^>]+src=|<link[^>]+href=["']?https?:/i);
  });
});
