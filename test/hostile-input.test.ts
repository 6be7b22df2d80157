/**
 * Hostile input over the whole route table: for every registered route, every parameter its zod
 * schema declares (path, query, body) gets malformed values — wrong types, negative and huge
 * numbers, overlong strings, bad digests, bad enums, control characters — and the answer must be
 * a 4xx with a reason, never a 5xx or a driver's text. Plus the probes that found 500s.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { mapLimit } from '../src/lib/concurrency';
import { apiFor, bearer } from './support/api';
import { harness, type Harness } from './support/context';

let h: Harness;
let app: FastifyInstance;
let auth: { authorization: string };

beforeAll(async () => {
  h = await harness({ worker: false, env: { STELLA_LOG_LEVEL: 'fatal' } });
  app = await apiFor(h);
  auth = await bearer(h, ['admin']);
});
afterAll(async () => {
  await app?.close();
  await h?.close();
});

/** The fields of a zod object schema (unwrapping optional/default/pipe around it). */
function fieldsOf(schema: unknown): Record<string, z.ZodType> {
  let s = schema as z.ZodType | undefined;
  for (let i = 0; s && i < 6; i++) {
    if (s instanceof z.ZodObject) return s.shape as Record<string, z.ZodType>;
    const def = (s as unknown as { def: { innerType?: z.ZodType; in?: z.ZodType } }).def;
    s = def.innerType ?? def.in;
  }
  return {};
}

/** The base type of a field: string, number, enum, boolean, array, object… */
function baseType(t: z.ZodType): string {
  let s: z.ZodType | undefined = t;
  for (let i = 0; s && i < 6; i++) {
    const def: { type: string; innerType?: z.ZodType; in?: z.ZodType } = (s as unknown as { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } }).def;
    if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable' || def.type === 'prefault') s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else return def.type;
  }
  return 'unknown';
}

const LONG = 'x'.repeat(4000);
const BAD_DIGEST = `sha256:${'g'.repeat(64)}`;
/** Malformed values for a query or path parameter (always strings on the wire). */
function wireValues(type: string): string[] {
  const common = [LONG, '\u0000x', '../../etc/passwd', BAD_DIGEST];
  if (type === 'number') return [...common, 'abc', '-5', '1.5', '1e309', '99999999999999999999'];
  if (type === 'enum' || type === 'boolean' || type === 'literal') return [...common, 'bogus', ''];
  return [...common, '', '-5'];
}
/** Malformed values for a JSON body field. */
function bodyValues(type: string): unknown[] {
  const common: unknown[] = [null, {}, 'x'.repeat(100_000), BAD_DIGEST, '\u0000'];
  if (type === 'number') return [...common, 'abc', -5, 1.5, 1e308];
  if (type === 'array') return [...common, 'not-an-array', [null], Array.from({ length: 20_000 }, () => BAD_DIGEST)];
  return [...common, -5, 1e308, ['x']];
}

const encode = (v: string) => encodeURIComponent(v);

interface Call {
  method: string;
  url: string;
  payload?: unknown;
  where: string;
}

/** One call per malformed value of each declared parameter, other parameters left out or plausible. */
function callsFor(route: { method: string; url: string; schema?: { params?: unknown; querystring?: unknown; body?: unknown } }): Call[] {
  const params = fieldsOf(route.schema?.params);
  const fill = (over: Record<string, string>) => route.url.replace(/:(\w+)/g, (_m, n: string) => encode(over[n] ?? `sha256:${'a'.repeat(64)}`));
  const calls: Call[] = [];
  const method = route.method;
  const emptyBody = method === 'GET' || method === 'HEAD' ? undefined : {};
  for (const [name, t] of Object.entries(params)) {
    for (const v of wireValues(baseType(t))) {
      if (v === '') continue; // an empty path segment is another route
      calls.push({ method, url: fill({ [name]: v }), payload: emptyBody, where: `params.${name}=${v.slice(0, 20)}` });
    }
  }
  for (const [name, t] of Object.entries(fieldsOf(route.schema?.querystring))) {
    for (const v of wireValues(baseType(t)))
      calls.push({ method, url: `${fill({})}?${name}=${encode(v)}`, payload: emptyBody, where: `query.${name}=${v.slice(0, 20)}` });
  }
  if (method !== 'GET' && method !== 'HEAD') {
    for (const [name, t] of Object.entries(fieldsOf(route.schema?.body))) {
      for (const v of bodyValues(baseType(t)))
        calls.push({ method, url: fill({}), payload: { [name]: v }, where: `body.${name}=${JSON.stringify(v)?.slice(0, 20)}` });
    }
    for (const payload of ['[1,2', 'null', '[]', '{"__proto__":{"x":1}}']) calls.push({ method, url: fill({}), payload, where: `body ${payload}` });
  }
  return calls;
}

describe('every declared parameter of every route, given malformed values, answers 4xx', () => {
  it('never a 5xx, and every 4xx carries a reason', async () => {
    const routes = app.routeList();
    expect(routes.length).toBeGreaterThan(80);
    const bad: string[] = [];
    const calls = routes.flatMap((route) => callsFor(route).map((c) => ({ route, c })));
    await mapLimit(calls, 6, async ({ route, c }) => {
      const name = `${route.method} ${route.url} ${c.where}`;
      const isString = typeof c.payload === 'string';
      const res = await Promise.race([
        app.inject({
          method: c.method as 'GET',
          url: c.url,
          headers: { ...auth, ...(c.payload !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(c.payload !== undefined ? { payload: isString ? (c.payload as string) : JSON.stringify(c.payload) } : {}),
        }),
        new Promise<null>((r) => setTimeout(() => r(null), 30_000).unref()),
      ]);
      if (!res) bad.push(`${name} → no answer within 30 s`);
      else if (res.statusCode >= 500) bad.push(`${name} → ${res.statusCode} ${res.body.slice(0, 200)}`);
      else if (res.statusCode >= 400 && c.method !== 'HEAD') {
        // Our problem details (RFC 9457), or RFC 6749's error on the OAuth token endpoint.
        const b = res.json() as { detail?: string; code?: string; error?: string; error_description?: string };
        const msg = typeof b.error === 'string' ? b.error_description : b.code && b.detail;
        if (!msg) bad.push(`${name} → ${res.statusCode} without a reason`);
      }
    });
    console.log(`probed ${calls.length} malformed parameter values over ${routes.length} routes; ${bad.length} wrong`);
    expect(bad).toEqual([]);
  }, 600_000);
});

describe('the probes that found 500s', () => {
  it('POST /evidence/anchors with no worker answers 202 with a status URL after ?wait=, not a hang', async () => {
    const t0 = Date.now();
    const res = await app.inject({ method: 'POST', url: '/evidence/anchors?wait=1', headers: { ...auth, 'content-type': 'application/json' }, payload: '{}' });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(res.statusCode).toBe(202);
    const b = res.json();
    expect(b).toMatchObject({ status: 'running', statusUrl: `/evidence/anchors/runs/${b.workflowId}`, anchor: null });
    expect(b.message).toMatch(/worker/);
    const st = await app.inject({ method: 'GET', url: b.statusUrl, headers: auth });
    expect(st.statusCode).toBe(200);
    expect(st.json()).toMatchObject({ workflowId: b.workflowId, status: 'RUNNING', result: null, error: null });
    await h.client.workflow.getHandle(b.workflowId).terminate('test done');
    const gone = await app.inject({ method: 'GET', url: '/evidence/anchors/runs/stella-merkle-anchor-nope', headers: auth });
    expect(gone.statusCode).toBe(404);
    const other = await app.inject({ method: 'GET', url: '/evidence/anchors/runs/some-other-workflow', headers: auth });
    expect(other.statusCode).toBe(400);
  });

  it('POST /auth/token with a JSON body that is not an object is a 400 invalid_request, not a schema 500', async () => {
    for (const payload of ['[]', '"x"', '1', 'true', '[1,2', '{"__proto__":{"x":1}}']) {
      const res = await app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/json' }, payload });
      expect(res.statusCode, payload).toBe(400);
      expect(res.json(), payload).toMatchObject({ error: 'invalid_request', error_description: expect.any(String) });
    }
  });

  it('GET /evidence/retention/runs?limit=abc is a 400 naming limit, without database text', async () => {
    const res = await app.inject({ method: 'GET', url: '/evidence/retention/runs?limit=abc', headers: auth });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatch(/limit/);
    expect(res.body).not.toMatch(/bigint|syntax/);
  });

  it('GET /replay/runs?limit=-5 is a 400 naming limit, without database text', async () => {
    const res = await app.inject({ method: 'GET', url: '/replay/runs?limit=-5', headers: auth });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatch(/limit/);
    expect(res.body).not.toMatch(/LIMIT must not be negative/);
  });
});
