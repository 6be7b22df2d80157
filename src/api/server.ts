import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { asStellaError, type StellaError } from '../lib/errors';
import type { ApiDeps, RegisterRoutes } from './deps';
import rateLimit from '@fastify/rate-limit';
import { authenticate, challenge, registerDpop } from './auth';
import { classifyFailure, portOf } from './failures';
import { registerHealthRoutes } from './routes/health';
import { registerDoctorRoutes } from './routes/doctor';
import { registerOpenApi } from './routes/openapi';

/** One registered route: method and URL pattern (`/evidence/:id/meta`). */
export interface ApiRoute {
  method: string;
  url: string;
  /** The route's declared request schemas (zod), for tests that probe every parameter. */
  schema?: { params?: unknown; querystring?: unknown; body?: unknown };
}

declare module 'fastify' {
  interface FastifyInstance {
    routeList: () => ApiRoute[];
  }
}

const STATUS: Record<StellaError['code'], number> = {
  BAD_INPUT: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_LARGE: 413,
  INTEGRITY: 422,
  UNAVAILABLE: 503,
};

/** Routes that need no token: probes and metrics scraping. */
const PUBLIC = new Set(['/healthz', '/readyz', '/metrics']);

/** The HTTP API: platform routes (health, metrics, doctor) plus each feature's routes, in list order. */
export async function buildApi(deps: ApiDeps, featureRoutes: readonly RegisterRoutes[]): Promise<FastifyInstance> {
  const app = createFastify();
  recordRoutes(app);
  useZodAndRawBodies(app);
  await authenticateRequests(app, deps);
  countRequests(app, deps);
  handleErrors(app, deps);

  // First: the OpenAPI document collects every route registered after it.
  await registerOpenApi(app, { publicPaths: PUBLIC });
  await registerHealthRoutes(app, deps);
  await registerDoctorRoutes(app, deps);
  for (const register of featureRoutes) await register(app, deps);
  return app;
}

/** The fastify instance, with its body limit and framework errors in our error shape. */
function createFastify(): FastifyInstance {
  return Fastify({
    logger: false,
    bodyLimit: 8 * 1024 * 1024,
    // An over-long or undecodable path parameter is the caller's bad input, in our error shape (not the router's).
    frameworkErrors: (err, _req, reply) => {
      const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const message = tooLong ? 'a path parameter is longer than 100 characters' : 'the URL has a malformed path component';
      (reply as FastifyReply).status(tooLong ? 414 : 400).send({ error: { code: 'BAD_INPUT', message } });
    },
  });
}

/** Every registered route, for tests that must cover each one (tenant isolation). */
function recordRoutes(app: FastifyInstance) {
  const routes: ApiRoute[] = [];
  app.addHook('onRoute', (r) => {
    const { params, querystring, body } = (r.schema ?? {}) as NonNullable<ApiRoute['schema']>;
    for (const method of [r.method].flat()) routes.push({ method: String(method), url: r.url, schema: { params, querystring, body } });
  });
  app.decorate('routeList', () => [...routes]);
}

/** Zod schemas for validation and serialization; evidence uploads reach handlers as the raw stream. */
function useZodAndRawBodies(app: FastifyInstance) {
  // Routes declare zod schemas (src/contracts) for params, query, body and responses.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Evidence uploads are streamed: any content type reaches the handler as the raw stream.
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
}

/** Authentication (Bearer or DPoP) on each request, then a per-token rate limit. */
async function authenticateRequests(app: FastifyInstance, deps: ApiDeps) {
  // Access tokens (Bearer or DPoP-bound); a route with `config: { public: true }` (a token endpoint) needs none.
  const auth = deps.ctx.cfg.auth;
  registerDpop(app, { publicUrl: auth.publicUrl, iatWindowSeconds: auth.dpopIatWindowSeconds, nonce: auth.dpopNonce });
  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0]!;
    if (PUBLIC.has(path) || (req.routeOptions.config as { public?: boolean } | undefined)?.public === true) return;
    req.principal = await authenticate(req, deps);
  });
  // Per-token rate limit (by jti, else subject), after authentication; 429 with Retry-After.
  await app.register(rateLimit, {
    hook: 'preHandler',
    max: auth.rateLimitPerMinute,
    timeWindow: 60_000,
    allowList: (req) => !req.principal,
    keyGenerator: (req) => `token:${req.principal?.jti ?? `${req.principal?.tenant}/${req.principal?.sub}`}`,
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      code: 'RATE_LIMITED',
      message: `too many requests with this token: at most ${ctx.max} a minute; retry in ${Math.ceil(ctx.ttl / 1000)}s`,
    }),
  });
}

/** Request counts by route, method and status. */
function countRequests(app: FastifyInstance, deps: ApiDeps) {
  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.httpRequests.inc({ route: req.routeOptions.url ?? 'unknown', method: req.method, status: String(reply.statusCode) });
  });
}

/** Errors as `{ error: { code, message } }`: StellaErrors by code, validation errors as 400, the rest classified. */
function handleErrors(app: FastifyInstance, deps: ApiDeps) {
  const ports = { postgres: portOf(deps.ctx.cfg.databaseUrl, 5432), temporal: portOf(deps.ctx.cfg.temporal.address, 7233) };
  app.setErrorHandler((err, req, reply) => {
    const se = asStellaError(err); // StellaErrors, and library errors by their category
    if (se) {
      const details = se.details as { unauthenticated?: boolean; reason?: string; dpopError?: string } | undefined;
      const status = se.code === 'FORBIDDEN' && details?.unauthenticated ? 401 : STATUS[se.code];
      if (status === 401) reply.header('www-authenticate', challenge(details, se.message));
      return reply.status(status).send({ error: { code: se.code, message: se.message, ...(se.details ?? {}) } });
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      // 400 naming the parameter: "querystring.limit: Too small: expected number to be >=1".
      const first = err.validation[0];
      const where = `${err.validationContext ?? 'request'}${first?.instancePath ? first.instancePath.replace(/\//g, '.') : ''}`;
      return reply.status(400).send({ error: { code: 'BAD_INPUT', message: `${where}: ${first?.message ?? 'invalid'}` } });
    }
    const e = err as { statusCode?: number; message: string; code?: string };
    if (e.statusCode && e.statusCode < 500) return reply.status(e.statusCode).send({ error: { code: e.code ?? 'BAD_REQUEST', message: e.message } });
    const f = classifyFailure(err, ports);
    deps.ctx.log[f.status >= 500 ? 'error' : 'warn']({ err, url: req.url, reqId: req.id, status: f.status }, 'request failed');
    if (f.retryAfter) reply.header('retry-after', String(f.retryAfter));
    const message = f.code === 'INTERNAL' ? `${f.message} (request ${req.id})` : f.message;
    return reply.status(f.status).send({ error: { code: f.code, message } });
  });
}
