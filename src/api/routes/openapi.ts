/**
 * The API's OpenAPI 3.1 document, generated from the routes' zod schemas (src/contracts) as they
 * are registered, served at GET /openapi.json, and a small offline docs page at GET /docs.
 * Register it before any other route: @fastify/swagger collects routes as they are added.
 */
import { readFileSync } from 'node:fs';
import swagger, { type SwaggerOptions } from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';

const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

type Json = Record<string, unknown>;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** The error body every non-2xx answer carries: RFC 9457 problem details (src/api/problem.ts). */
const ERROR_BODY = {
  type: 'object' as const,
  required: ['type', 'title', 'status', 'detail', 'instance', 'code'],
  additionalProperties: true,
  properties: {
    type: { type: 'string' as const, description: 'problem type URI: urn:stella:problem:<code in kebab case>' },
    title: { type: 'string' as const, description: 'the HTTP status phrase' },
    status: { type: 'integer' as const, description: 'the HTTP status code' },
    detail: { type: 'string' as const, description: 'one line naming what was wrong (the parameter, the limit, the dependency)' },
    instance: { type: 'string' as const, description: 'the request path' },
    code: {
      type: 'string' as const,
      description:
        'stable code: BAD_INPUT, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED, CONFLICT, TOO_LARGE, URI_TOO_LONG, UNSUPPORTED_MEDIA_TYPE, INTEGRITY, RATE_LIMITED, UNAVAILABLE, INTERNAL',
    },
  },
};

const errorResponse = (description: string, headers?: Record<string, { description: string; schema: { type: 'string' } }>) => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/**
 * The document @fastify/swagger builds, completed: public operations need no token, protected ones
 * answer 401/403/429 in the error shape, and every operation documents its 4xx/5xx error body.
 */
export function completeDocument(doc: Json): Json {
  const paths = (doc.paths ?? {}) as Record<string, Record<string, Json>>;
  for (const item of Object.values(paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const responses = (op.responses ?? {}) as Record<string, unknown>;
      const isPublic = Array.isArray(op.security) && op.security.length === 0;
      if (!isPublic) {
        responses['401'] ??= { $ref: '#/components/responses/Unauthorized' };
        responses['403'] ??= { $ref: '#/components/responses/Forbidden' };
        responses['429'] ??= { $ref: '#/components/responses/RateLimited' };
      }
      responses['4XX'] ??= { $ref: '#/components/responses/BadRequest' };
      responses['5XX'] ??= { $ref: '#/components/responses/ServerError' };
      op.responses = responses;
    }
  }
  return doc;
}

/** Registers @fastify/swagger (before the other routes), GET /openapi.json and GET /docs (both public). */
export async function registerOpenApi(app: FastifyInstance, opts: { publicPaths: ReadonlySet<string> }): Promise<void> {
  const options: SwaggerOptions = {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'stella API',
        version,
        description:
          'Evidence locker and release orchestrator. Request and response schemas are generated from the zod contracts the server validates with. Errors answer RFC 9457 problem details (`application/problem+json`: type, title, status, detail, instance) with a stable `code`.',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'A stella access token (stella auth token) or an accepted OIDC access token: `Authorization: Bearer <jwt>`.',
          },
          dpop: {
            type: 'apiKey',
            in: 'header',
            name: 'Authorization',
            description:
              'A DPoP-bound token (RFC 9449): `Authorization: DPoP <jwt>` plus a `DPoP` header with a fresh proof (htm, htu, ath) signed by the bound key; the replay:read scope requires it.',
          },
        },
        schemas: { Error: ERROR_BODY },
        responses: {
          BadRequest: errorResponse('bad input: the body names the parameter and what is wrong'),
          Unauthorized: errorResponse('missing, expired, revoked or forged token, or a bad DPoP proof', {
            'WWW-Authenticate': { description: 'Bearer or DPoP challenge (RFC 6750 / RFC 9449)', schema: { type: 'string' } },
          }),
          Forbidden: errorResponse('the token lacks the scope or is for another tenant'),
          RateLimited: errorResponse('too many requests with this token', {
            'Retry-After': { description: 'seconds', schema: { type: 'string' } },
          }),
          ServerError: errorResponse('a dependency is unavailable (503, with Retry-After) or an unexpected error naming the request id'),
        },
      },
      security: [{ bearer: [] }, { dpop: [] }],
    },
    transform: (doc) => {
      const out = jsonSchemaTransform(doc);
      const { route, url } = doc;
      const open = opts.publicPaths.has(url) || (route.config as { public?: boolean } | undefined)?.public === true;
      if (open && out.schema) (out.schema as Json).security = [];
      return out;
    },
    transformObject: jsonSchemaTransformObject,
  };
  await app.register(swagger, options);

  let cached: Json | undefined;
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => {
    cached ??= completeDocument(structuredClone(app.swagger() as unknown as Json));
    return reply.type('application/json').send(cached);
  });
  app.get('/docs', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', CSP).send(DOCS_HTML),
  );
}

const CSP = "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'";

/** A dependency-free page that lists /openapi.json's operations: method, path, parameters, body, responses. */
const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stella API</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}
h1{margin-bottom:0}.op{border:1px solid #ddd;border-radius:4px;margin:.5em 0}
summary{cursor:pointer;padding:.4em .6em;font-family:monospace}
.m{display:inline-block;width:5em;font-weight:bold}.get{color:#0a6}.post{color:#06c}.put,.patch{color:#a60}.delete{color:#c22}
.lock{color:#888;font-size:90%}.body{padding:0 1em 1em}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:30em}
</style></head>
<body><h1>stella API</h1><p id="meta">Loading <a href="/openapi.json">/openapi.json</a>…</p><input id="filter" placeholder="filter paths" size="40"><div id="ops"></div>
<script>
(async function () {
  var el = function (tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    (kids || []).forEach(function (c) { e.append(c); });
    return e;
  };
  var doc;
  try { doc = await (await fetch('openapi.json')).json(); }
  catch (err) { document.getElementById('meta').textContent = 'Could not load openapi.json: ' + err; return; }
  document.getElementById('meta').textContent = doc.info.title + ' ' + doc.info.version + ' (OpenAPI ' + doc.openapi + ')';
  var ref = function (r) {
    return r && r.$ref ? r.$ref.slice(2).split('/').reduce(function (o, k) { return o && o[k]; }, doc) : r;
  };
  var ops = document.getElementById('ops');
  Object.keys(doc.paths).sort().forEach(function (path) {
    var item = doc.paths[path];
    ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'].forEach(function (m) {
      var op = item[m];
      if (!op) return;
      var open = Array.isArray(op.security) && op.security.length === 0;
      var body = el('div', { class: 'body' });
      if (op.summary || op.description) body.append(el('p', {}, [op.summary || op.description]));
      var params = (op.parameters || []).map(ref);
      if (params.length) {
        body.append(el('h4', {}, ['Parameters']));
        body.append(el('table', {}, [el('tr', {}, [el('th', {}, ['name']), el('th', {}, ['in']), el('th', {}, ['required']), el('th', {}, ['schema'])])].concat(
          params.map(function (p) {
            return el('tr', {}, [el('td', {}, [p.name]), el('td', {}, [p.in]), el('td', {}, [p.required ? 'yes' : '']), el('td', {}, [JSON.stringify(p.schema || {})])]);
          }))));
      }
      if (op.requestBody) {
        body.append(el('h4', {}, ['Request body']));
        var c = ref(op.requestBody).content || {};
        Object.keys(c).forEach(function (t) { body.append(el('div', {}, [t]), el('pre', {}, [JSON.stringify(c[t].schema, null, 2)])); });
      }
      body.append(el('h4', {}, ['Responses']));
      Object.keys(op.responses || {}).forEach(function (code) {
        var r = ref(op.responses[code]) || {};
        var d = el('details', {}, [el('summary', {}, [code + ' ' + (r.description || '')])]);
        var rc = r.content || {};
        Object.keys(rc).forEach(function (t) { d.append(el('div', {}, [t]), el('pre', {}, [JSON.stringify(rc[t].schema, null, 2)])); });
        body.append(d);
      });
      var s = el('summary', {}, [el('span', { class: 'm ' + m }, [m.toUpperCase()]), path, ' ', el('span', { class: 'lock' }, [open ? '(public)' : '(token)'])]);
      ops.append(el('details', { class: 'op', 'data-path': path }, [s, body]));
    });
  });
  document.getElementById('filter').addEventListener('input', function (e) {
    var q = e.target.value.toLowerCase();
    ops.querySelectorAll('.op').forEach(function (o) { o.style.display = o.dataset.path.toLowerCase().indexOf(q) >= 0 ? '' : 'none'; });
  });
})();
</script></body></html>
`;
