import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { Counter, Histogram } from 'prom-client';
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { asStellaError, type StellaError } from '../lib/errors';
import type { ApiDeps, RegisterRoutes } from './deps';
import rateLimit from '@fastify/rate-limit';
import { authenticate, challenge, registerDpop } from './auth';
import { classifyFailure, portOf } from './failures';
import { registerHealthRoutes } from './routes/health';
import { registerDoctorRoutes } from './routes/doctor';
import { registerOpenApi } from './routes/openapi';
import { codeForStatus, sendProblem } from './problem';

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
  const app = createFastify(deps);
  recordRoutes(app);
  useZodAndRawBodies(app);
  await authenticateRequests(app, deps);
  // Without an OTLP endpoint every span is a no-op: the per-request hooks would only cost time.
  if (deps.ctx.cfg.telemetry.otlpEndpoint) traceRequests(app);
  countRequests(app, deps);
  handleErrors(app, deps);
  answerUnknownRoutes(app);

  // First: the OpenAPI document collects every route registered after it.
  await registerOpenApi(app, { publicPaths: PUBLIC });
  await registerHealthRoutes(app, deps);
  await registerDoctorRoutes(app, deps);
  for (const register of featureRoutes) await register(app, deps);
  return app;
}

/**
 * The fastify instance, logging through stella's pino logger (one JSON line per request, written
 * by countRequests), with its body limit and framework errors as problem details.
 */
function createFastify(deps: ApiDeps): FastifyInstance {
  return Fastify({
    loggerInstance: deps.ctx.log.child({ component: 'http' }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 8 * 1024 * 1024,
    // An over-long or undecodable path parameter is the caller's bad input, as problem details (not the router's).
    frameworkErrors: (err, req, reply) => {
      const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const message = tooLong ? 'a path parameter is longer than 100 characters' : 'the URL has a malformed path component';
      sendProblem(reply as FastifyReply, req, tooLong ? 414 : 400, 'BAD_INPUT', message);
    },
  }) as unknown as FastifyInstance;
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

/**
 * Zod schemas for validation and serialization. Bodies are JSON (or text); a route that takes
 * raw bytes (evidence and image uploads) registers its own catch-all parser in its scope, so
 * any other media type is a 415 problem rather than an empty body failing validation.
 */
function useZodAndRawBodies(app: FastifyInstance) {
  // Routes declare zod schemas (src/contracts) for params, query, body and responses.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
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

/**
 * Per request: the count (route, method, status), the duration histogram (route template, method,
 * status class) and one access-log line. Unmatched URLs count under route "unmatched" so a scan of
 * random paths cannot create unbounded series.
 */
function countRequests(app: FastifyInstance, deps: ApiDeps) {
  // The label-bound series of each (route, method, status), made once: prom-client hashes a label
  // object on every inc/observe otherwise. Bounded: route templates, methods and statuses are few.
  const series = new Map<string, { count: Counter.Internal; duration: Histogram.Internal<string> }>();
  const seriesOf = (route: string, method: string, status: number) => {
    const key = `${status} ${method} ${route}`;
    let s = series.get(key);
    if (!s) {
      s = {
        count: deps.metrics.httpRequests.labels({ route, method, status: String(status) }),
        duration: deps.metrics.httpDuration.labels({ route, method, status_class: `${Math.floor(status / 100)}xx` }),
      };
      series.set(key, s);
    }
    return s;
  };
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const s = seriesOf(route, req.method, status);
    s.count.inc();
    s.duration.observe(reply.elapsedTime / 1000);
    const level = status >= 500 ? 'warn' : 'info';
    // The access line's object is built only when the line is written (pino's isLevelEnabled).
    const log = req.log as typeof req.log & { isLevelEnabled?: (l: string) => boolean };
    if (log.isLevelEnabled?.(level) ?? true)
      log[level](
        { reqId: req.id, method: req.method, route, url: req.url.split('?')[0], status, durationMs: Math.round(reply.elapsedTime * 10) / 10 },
        'request completed',
      );
    done();
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    otelSpan?: Span;
  }
}

/**
 * One server span per request, the parent of whatever the handler does (StartWorkflow and the
 * workflow's activities share its trace id). The global tracer is a no-op unless tracing was
 * started (STELLA_OTLP_ENDPOINT, src/app/tracing.ts); a `traceparent` header continues the caller's trace.
 */
function traceRequests(app: FastifyInstance) {
  const tracer = trace.getTracer('stella-api');
  app.addHook('onRequest', (req, _reply, done) => {
    const parent = propagation.extract(context.active(), req.headers);
    const route = req.routeOptions.url ?? 'unmatched';
    const span = tracer.startSpan(
      `${req.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'http.route': route } },
      parent,
    );
    req.otelSpan = span;
    // The rest of the request runs inside the span's context (AsyncLocalStorage follows it across awaits).
    context.with(trace.setSpan(parent, span), done);
  });
  app.addHook('onResponse', async (req, reply) => {
    const span = req.otelSpan;
    if (!span) return;
    span.setAttribute('http.response.status_code', reply.statusCode);
    if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
}

/** URLs no route matches: 404 problem details naming the method and path. */
function answerUnknownRoutes(app: FastifyInstance) {
  app.setNotFoundHandler((req, reply) => {
    sendProblem(reply, req, 404, 'NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
  });
}

/** Errors as RFC 9457 problem details (src/api/problem.ts): StellaErrors by code, validation errors as 400, the rest classified. */
function handleErrors(app: FastifyInstance, deps: ApiDeps) {
  const ports = { postgres: portOf(deps.ctx.cfg.databaseUrl, 5432), temporal: portOf(deps.ctx.cfg.temporal.address, 7233) };
  app.setErrorHandler((err, req, reply) => {
    const se = asStellaError(err); // StellaErrors, and library errors by their category
    if (se) {
      const details = se.details as { unauthenticated?: boolean; reason?: string; dpopError?: string } | undefined;
      if (se.code === 'FORBIDDEN' && details?.unauthenticated) {
        // Not authenticated (no, expired or forged token; bad DPoP proof): 401 UNAUTHENTICATED, not FORBIDDEN.
        const { unauthenticated: _, ...rest } = details;
        reply.header('www-authenticate', challenge(details, se.message));
        return sendProblem(reply, req, 401, 'UNAUTHENTICATED', se.message, rest);
      }
      return sendProblem(reply, req, STATUS[se.code], se.code, se.message, se.details);
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      // 400 naming the parameter: "querystring.limit: Too small: expected number to be >=1".
      const first = err.validation[0];
      const where = `${err.validationContext ?? 'request'}${first?.instancePath ? first.instancePath.replace(/\//g, '.') : ''}`;
      return sendProblem(reply, req, 400, 'BAD_INPUT', `${where}: ${first?.message ?? 'invalid'}`);
    }
    const e = err as { statusCode?: number; message: string; code?: string };
    // Framework and plugin errors (413 body too large, 415, 429 rate limit, bad JSON): a stable code by status.
    if (e.statusCode === 415) {
      const type = String(req.headers['content-type'] ?? 'none').split(';')[0];
      return sendProblem(
        reply,
        req,
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        `${req.method} ${req.routeOptions.url ?? req.url} does not take ${type} bodies; send application/json`,
      );
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return sendProblem(reply, req, e.statusCode, codeForStatus(e.statusCode, e.code), e.message);
    const f = classifyFailure(err, ports);
    deps.ctx.log[f.status >= 500 ? 'error' : 'warn']({ err, url: req.url, reqId: req.id, status: f.status }, 'request failed');
    if (f.retryAfter) reply.header('retry-after', String(f.retryAfter));
    const message = f.code === 'INTERNAL' ? `${f.message} (request ${req.id})` : f.message;
    return sendProblem(reply, req, f.status, f.code, message, { requestId: req.id });
  });
}
