import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { apiFor, bearer } from './support/api';
import { harness, type Harness } from './support/context';
import { Problem } from '../src/contracts/common';

// Every error the API answers is RFC 9457 problem details (application/problem+json) with a
// stable `code`: stella's own errors and the framework's (unknown route, body too large,
// validation, rate limit, authentication).
let h: Harness;
let app: FastifyInstance;

beforeAll(async () => {
  h = await harness({ worker: false, env: { STELLA_API_RATE_LIMIT: '2' } });
  app = await apiFor(h);
}, 120_000);
afterAll(async () => {
  await app?.close();
  await h?.close();
});

function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; json: () => unknown }, status: number, code: string, path: string) {
  expect(res.statusCode).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  const body = Problem.parse(res.json());
  expect(body).toMatchObject({ status, code, instance: path, type: `urn:stella:problem:${code.toLowerCase().replace(/_/g, '-')}` });
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.detail.length).toBeGreaterThan(0);
  expect(body).not.toHaveProperty('error');
  return body;
}

describe('API errors as RFC 9457 problem details', () => {
  it('an unknown route is a 404 problem naming the method and path', async () => {
    const res = await app.inject({ method: 'GET', url: '/no/such/route?x=1', headers: await bearer(h, ['evidence:read']) });
    const p = expectProblem(res, 404, 'NOT_FOUND', '/no/such/route');
    expect(p.detail).toBe('no route GET /no/such/route');
  });

  it('a missing token is 401 UNAUTHENTICATED (not FORBIDDEN) with the challenge; a missing scope is 403 FORBIDDEN', async () => {
    const none = await app.inject({ method: 'GET', url: '/evidence' });
    expectProblem(none, 401, 'UNAUTHENTICATED', '/evidence');
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    const forged = await app.inject({ method: 'GET', url: '/evidence', headers: { authorization: 'Bearer not.a.jwt' } });
    expectProblem(forged, 401, 'UNAUTHENTICATED', '/evidence');
    const hold = { scope: 'artifact', values: [`sha256:${'a'.repeat(64)}`], reason: 'INC-1 test', incidentTicket: 'INC-1' };
    const scope = await app.inject({ method: 'POST', url: '/evidence/holds', headers: await bearer(h, ['evidence:read']), payload: hold });
    expect(expectProblem(scope, 403, 'FORBIDDEN', '/evidence/holds').detail).toMatch(/evidence:write/);
  });

  it('a validation error is a 400 BAD_INPUT naming the parameter; a stella error keeps its code', async () => {
    const auth = await bearer(h, ['evidence:read', 'replay:read', 'promotion:read', 'promotion:write']);
    const bad = await app.inject({ method: 'GET', url: '/evidence/retention/runs?limit=abc', headers: auth });
    expect(expectProblem(bad, 400, 'BAD_INPUT', '/evidence/retention/runs').detail).toMatch(/limit/);
    const digest = await app.inject({ method: 'GET', url: '/evidence/sha256:nothex', headers: auth });
    expectProblem(digest, 400, 'BAD_INPUT', '/evidence/sha256:nothex');
  });

  it('an over-large JSON body is 413 TOO_LARGE, malformed JSON is 400 BAD_INPUT (framework errors, stable codes)', async () => {
    const auth = { ...(await bearer(h, ['evidence:write'])), 'content-type': 'application/json' };
    const big = await app.inject({ method: 'POST', url: '/evidence/holds', headers: auth, payload: `{"reason":"${'x'.repeat(9 * 1024 * 1024)}"}` });
    expectProblem(big, 413, 'TOO_LARGE', '/evidence/holds');
    const junk = await app.inject({ method: 'POST', url: '/evidence/holds', headers: auth, payload: '{"reason":' });
    expectProblem(junk, 400, 'BAD_INPUT', '/evidence/holds');
  });

  it('a body in a media type the route does not take is 415 UNSUPPORTED_MEDIA_TYPE, nothing stored', async () => {
    const auth = { ...(await bearer(h, ['evidence:write', 'evidence:read'])), 'content-type': 'application/xml' };
    const res = await app.inject({ method: 'POST', url: '/evidence/holds', headers: auth, payload: '<hold reason="INC-1"/>' });
    expect(expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE', '/evidence/holds').detail).toMatch(/application\/xml/);
    const holds = await app.inject({ method: 'GET', url: '/evidence/holds', headers: await bearer(h, ['evidence:read']) });
    expect(holds.statusCode).toBe(200);
    expect(JSON.stringify(holds.json())).not.toMatch(/INC-1/);
  });

  it('past the per-token rate limit: 429 RATE_LIMITED with Retry-After', async () => {
    const one = await bearer(h, ['evidence:read']);
    let res = await app.inject({ method: 'GET', url: '/evidence/status', headers: one });
    for (let i = 0; i < 5 && res.statusCode !== 429; i++) res = await app.inject({ method: 'GET', url: '/evidence/status', headers: one });
    expectProblem(res, 429, 'RATE_LIMITED', '/evidence/status');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });
});
