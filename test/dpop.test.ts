/**
 * DPoP (RFC 9449) and token hygiene (issue 17) against a real API on PostgreSQL: proofs checked
 * step by step (replay, htu, htm, iat, ath, key binding), bearer tokens refused where DPoP is
 * required, the nonce flow, revocation by jti and by key, an audit entry per issued token, per-token
 * rate limits, and the real CLI reading a replay route with a DPoP-bound token.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiFor, bearer, dpopAuth, newDpopKey } from './support/api';
import { harness, type Harness } from './support/context';
import { runStella } from './support/cli';
import { dpopKeyThumbprint } from '../src/api/auth';
import { createDpopProof, jwkThumbprint } from '../src/crypto/dpop';
import { issueStellaToken } from '../src/core/identity/issue';
import { TOKEN_PURPOSE } from '../src/core/keys';
import { MAX_TTL_SECONDS, verifyToken } from '../src/crypto/tokens';

const RUNS = '/replay/runs';
const URL_OF = (path: string) => `http://localhost${path}`;

describe('DPoP-bound tokens and token hygiene', () => {
  let h: Harness;
  let app: FastifyInstance;

  beforeAll(async () => {
    h = await harness({ worker: false });
    app = await apiFor(h);
    // A stand-in token endpoint (the real one is POST /auth/token): public, binds to the proof's key.
    app.post('/test/token-endpoint', { config: { public: true } }, async (req) => ({ jkt: (await dpopKeyThumbprint(req)) ?? null }));
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  const get = (path: string, headers: Record<string, string>) => app.inject({ method: 'GET', url: path, headers });

  it('a DPoP-bound token with a fresh proof reads a replay:read route', async () => {
    const a = await dpopAuth(h, ['replay:read']);
    const r = await get(RUNS, await a.headers('GET', RUNS));
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toEqual({ runs: [] });
    // The query string is not part of htu (§4.3 step 9).
    const q = await get(`${RUNS}?limit=5`, await a.headers('GET', RUNS));
    expect(q.statusCode, q.body).toBe(200);
  });

  it('refuses a replayed proof (same jti twice)', async () => {
    const a = await dpopAuth(h, ['replay:read']);
    const headers = await a.headers('GET', RUNS);
    expect((await get(RUNS, headers)).statusCode).toBe(200);
    const again = await get(RUNS, headers);
    expect(again.statusCode).toBe(401);
    expect(again.json().detail).toMatch(/already used/);
    expect(again.headers['www-authenticate']).toMatch(/^DPoP error="invalid_dpop_proof".*algs="ES256 EdDSA"/);
  });

  it('refuses a proof for another URL, another method, a stale iat, and a missing or wrong ath', async () => {
    const a = await dpopAuth(h, ['replay:read']);
    const proof = (o: Partial<Parameters<typeof createDpopProof>[1]>) =>
      createDpopProof(a.key, { method: 'GET', url: URL_OF(RUNS), accessToken: a.token, ...o });
    const refused = async (dpop: string, why: RegExp) => {
      const r = await get(RUNS, { authorization: `DPoP ${a.token}`, dpop });
      expect(r.statusCode, r.body).toBe(401);
      expect(r.json().detail).toMatch(why);
      expect(r.headers['www-authenticate']).toMatch(/^DPoP error="invalid_dpop_proof"/);
    };
    await refused(await proof({ url: URL_OF('/replay/runs/other') }), /htu/);
    await refused(await proof({ url: 'https://localhost/replay/runs' }), /htu/);
    await refused(await proof({ url: 'http://evil.example/replay/runs' }), /htu/);
    await refused(await proof({ method: 'POST' }), /htm/);
    await refused(await proof({ now: new Date(Date.now() - 3600_000) }), /iat/);
    await refused(await proof({ now: new Date(Date.now() + 3600_000) }), /iat/);
    await refused(await proof({ accessToken: undefined }), /no ath/);
    await refused(await proof({ accessToken: `${a.token}x` }), /ath does not match/);
    // No proof at all with the DPoP scheme.
    const none = await get(RUNS, { authorization: `DPoP ${a.token}` });
    expect(none.statusCode).toBe(401);
    expect(none.json().detail).toMatch(/no DPoP proof/);
  });

  it('refuses a proof signed by another key than the token is bound to (cnf.jkt)', async () => {
    const a = await dpopAuth(h, ['replay:read']);
    const other = await newDpopKey();
    const dpop = await createDpopProof(other, { method: 'GET', url: URL_OF(RUNS), accessToken: a.token });
    const r = await get(RUNS, { authorization: `DPoP ${a.token}`, dpop });
    expect(r.statusCode).toBe(401);
    expect(r.json().detail).toMatch(/another key/);
  });

  it('replay:read refuses bearer tokens, and a DPoP-bound token is never a bearer token', async () => {
    const plain = await bearer(h, ['replay:read', 'evidence:read']);
    const r = await get(RUNS, plain);
    expect(r.statusCode).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/^DPoP error="invalid_token"/);
    expect(r.json().detail).toMatch(/replay:read needs a DPoP-bound token/);
    // The same bearer token still works where DPoP is not required.
    expect((await get('/evidence/status', plain)).statusCode).toBe(200);
    // An admin bearer token is refused on replay routes too.
    expect((await get(RUNS, await bearer(h, ['admin']))).statusCode).toBe(401);

    const bound = await dpopAuth(h, ['replay:read', 'evidence:read']);
    const asBearer = await get('/evidence/status', { authorization: `Bearer ${bound.token}` });
    expect(asBearer.statusCode).toBe(401);
    expect(asBearer.json().detail).toMatch(/DPoP-bound/);
    // The DPoP scheme with an unbound token is refused as well.
    const unbound = plain.authorization.slice('Bearer '.length);
    const key = await newDpopKey();
    const mixed = await get(RUNS, {
      authorization: `DPoP ${unbound}`,
      dpop: await createDpopProof(key, { method: 'GET', url: URL_OF(RUNS), accessToken: unbound }),
    });
    expect(mixed.statusCode).toBe(401);
  });

  it('a token endpoint gets the thumbprint of a valid proof, and 400 for a bad one', async () => {
    const key = await newDpopKey();
    const path = '/test/token-endpoint';
    const ok = await app.inject({ method: 'POST', url: path, headers: { dpop: await createDpopProof(key, { method: 'POST', url: URL_OF(path) }) } });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().jkt).toBe(await jwkThumbprint(key.publicJwk));
    expect((await app.inject({ method: 'POST', url: path })).json()).toEqual({ jkt: null });
    const wrong = await app.inject({ method: 'POST', url: path, headers: { dpop: await createDpopProof(key, { method: 'GET', url: URL_OF(path) }) } });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ code: 'BAD_INPUT', reason: 'invalid_dpop_proof' });
  });

  it('every issued token has an audit entry, DPoP-bound ones carry cnf.jkt; lifetimes are capped at 24 hours', async () => {
    const key = await newDpopKey();
    const jkt = await jwkThumbprint(key.publicJwk);
    const issued = await issueStellaToken(h.ctx, { sub: 'auditor', tenant: 'default', scopes: ['replay:read'], ttlSeconds: 300, via: 'cli', jkt });
    expect(issued.tokenType).toBe('DPoP');
    const claims = await verifyToken(issued.token, (await h.ctx.keys.publicJwks()) as never);
    expect(claims.jkt).toBe(jkt);
    const rows = await h.ctx.db.query("SELECT actor, target, details FROM audit_log WHERE action='token.issued' AND details->>'jti'=$1", [issued.jti]);
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0]).toMatchObject({
      actor: 'auditor',
      target: 'auditor',
      details: { via: 'cli', dpop: true, jkt, kid: issued.kid, scopes: ['replay:read'] },
    });
    await expect(issueStellaToken(h.ctx, { sub: 'x', tenant: 'default', scopes: ['admin'], ttlSeconds: MAX_TTL_SECONDS + 1, via: 'cli' })).rejects.toThrow(
      /at most 24 hours/,
    );
    expect(MAX_TTL_SECONDS).toBe(24 * 3600);
  });

  it('a revoked token (jti) and every token of a revoked key are refused; only admins revoke', async () => {
    const admin = await bearer(h, ['admin']);
    const victim = await issueStellaToken(h.ctx, { sub: 'leaked', tenant: 'default', scopes: ['evidence:read'], ttlSeconds: 600, via: 'admin' });
    const keep = await issueStellaToken(h.ctx, { sub: 'kept', tenant: 'default', scopes: ['evidence:read'], ttlSeconds: 600, via: 'admin' });
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    expect((await get('/evidence/status', auth(victim.token))).statusCode).toBe(200);

    const denied = await app.inject({ method: 'POST', url: '/auth/revocations', headers: auth(keep.token), payload: { jti: victim.jti } });
    expect(denied.statusCode).toBe(403);
    const bad = await app.inject({ method: 'POST', url: '/auth/revocations', headers: admin, payload: { jti: victim.jti, kid: victim.kid } });
    expect(bad.statusCode).toBe(400);

    const rj = await app.inject({ method: 'POST', url: '/auth/revocations', headers: admin, payload: { jti: victim.jti, reason: 'leaked in a log' } });
    expect(rj.statusCode, rj.body).toBe(201);
    const gone = await get('/evidence/status', auth(victim.token));
    expect(gone.statusCode).toBe(401);
    expect(gone.json().detail).toMatch(/revoked/);
    expect((await get('/evidence/status', auth(keep.token))).statusCode).toBe(200);

    // Revoking the active token key rotates first: old tokens die, new ones work.
    const unknownKid = await app.inject({ method: 'POST', url: '/auth/revocations', headers: admin, payload: { kid: 'no-such-key' } });
    expect(unknownKid.statusCode).toBe(404);
    const oldKid = keep.kid;
    expect((await h.ctx.keys.active(TOKEN_PURPOSE)).kid).toBe(oldKid);
    const rk = await app.inject({ method: 'POST', url: '/auth/revocations', headers: admin, payload: { kid: oldKid } });
    expect(rk.statusCode, rk.body).toBe(201);
    const rotatedTo = rk.json().rotatedTo as string;
    expect(rotatedTo).toBeTruthy();
    expect(rotatedTo).not.toBe(oldKid);
    expect((await get('/evidence/status', auth(keep.token))).statusCode).toBe(401);
    expect((await get('/evidence/status', admin)).statusCode).toBe(401); // signed by the revoked key too
    const fresh = await issueStellaToken(h.ctx, { sub: 'after', tenant: 'default', scopes: ['evidence:read'], ttlSeconds: 600, via: 'admin' });
    expect(fresh.kid).toBe(rotatedTo);
    expect((await get('/evidence/status', auth(fresh.token))).statusCode).toBe(200);
    const audited = await h.ctx.db.query("SELECT target, reason FROM audit_log WHERE action='token.revoked' ORDER BY id");
    expect(audited.rows).toEqual([
      { target: victim.jti, reason: 'leaked in a log' },
      { target: oldKid, reason: null },
    ]);
  });
});

describe('DPoP nonces and per-token rate limits', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await harness({ worker: false, env: { STELLA_DPOP_NONCE: 'true', STELLA_API_RATE_LIMIT: '3' } });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it('asks for its nonce (use_dpop_nonce + DPoP-Nonce) and accepts the proof that carries it', async () => {
    const app = await apiFor(h);
    try {
      const a = await dpopAuth(h, ['replay:read']);
      const first = await app.inject({ method: 'GET', url: RUNS, headers: await a.headers('GET', RUNS) });
      expect(first.statusCode).toBe(401);
      expect(first.headers['www-authenticate']).toMatch(/^DPoP error="use_dpop_nonce"/);
      const nonce = first.headers['dpop-nonce'] as string;
      expect(nonce).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      const second = await app.inject({ method: 'GET', url: RUNS, headers: await a.headers('GET', RUNS, { nonce }) });
      expect(second.statusCode, second.body).toBe(200);
      expect(second.headers['dpop-nonce']).toBeTruthy();
      const forged = await app.inject({ method: 'GET', url: RUNS, headers: await a.headers('GET', RUNS, { nonce: `${nonce.slice(0, -2)}AA` }) });
      expect(forged.statusCode).toBe(401);
      expect(forged.headers['www-authenticate']).toMatch(/use_dpop_nonce/);
    } finally {
      await app.close();
    }
  });

  it('answers 429 with Retry-After past the per-token limit; another token is unaffected', async () => {
    const app = await apiFor(h);
    try {
      const one = await bearer(h, ['evidence:read']);
      for (let i = 0; i < 3; i++) expect((await app.inject({ method: 'GET', url: '/evidence/status', headers: one })).statusCode).toBe(200);
      const over = await app.inject({ method: 'GET', url: '/evidence/status', headers: one });
      expect(over.statusCode).toBe(429);
      expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
      expect(over.json()).toMatchObject({ code: 'RATE_LIMITED' });
      expect((await app.inject({ method: 'GET', url: '/evidence/status', headers: await bearer(h, ['evidence:read']) })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('the CLI with a DPoP-bound token', () => {
  let h: Harness;
  let app: FastifyInstance;
  let env: Record<string, string>;

  beforeAll(async () => {
    h = await harness({ worker: false });
    app = await apiFor(h);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    // The CLI shares the API's key folder and database (as on the machine that runs the stack).
    env = {
      STELLA_API_URL: `http://127.0.0.1:${port}`,
      STELLA_DATA_DIR: mkdtempSync(join(tmpdir(), 'cli-dpop-')),
      STELLA_KEYS_DIR: h.ctx.cfg.keysDir,
      DATABASE_URL: h.ctx.cfg.databaseUrl!,
      STELLA_TOKEN: '',
      STELLA_TENANT: '',
    };
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('auth token --dpop binds to the CLI key; the CLI signs a proof per request and reads replay runs; a bearer token is refused', async () => {
    const minted = await runStella(env, 'auth', 'token', '--dpop', '--scopes', 'replay:read', '--sub', 'cli-dpop', '--format', 'json');
    expect(minted.code, minted.stderr).toBe(0);
    const issued = JSON.parse(minted.stdout);
    expect(issued).toMatchObject({ tokenType: 'DPoP', ttlSeconds: 3600, scopes: ['replay:read'] });
    const keyFile = join(env.STELLA_DATA_DIR!, 'dpop-key.json');
    const { statSync } = await import('node:fs');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);

    const list = await runStella({ ...env, STELLA_TOKEN: issued.token }, 'replay-runs', 'list', '--format', 'json');
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ runs: [] });
    // Two requests in a row: each with its own proof (a reused one would be a replay).
    const again = await runStella({ ...env, STELLA_TOKEN: issued.token }, 'replay-runs', 'list', '--format', 'json');
    expect(again.code, again.stderr).toBe(0);

    const plain = JSON.parse((await runStella(env, 'auth', 'token', '--scopes', 'replay:read', '--format', 'json')).stdout);
    expect(plain.tokenType).toBe('Bearer');
    const refused = await runStella({ ...env, STELLA_TOKEN: plain.token }, 'replay-runs', 'list');
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/DPoP-bound/);

    // Another CLI (another data dir, so another key) cannot use the bound token.
    const stolen = await runStella({ ...env, STELLA_TOKEN: issued.token, STELLA_DATA_DIR: mkdtempSync(join(tmpdir(), 'cli-thief-')) }, 'replay-runs', 'list');
    expect(stolen.code).toBe(6);

    // Every token the CLI issued is audited; --ttl past 24 hours is a usage error.
    const audited = await h.ctx.db.query("SELECT details->>'jti' AS jti FROM audit_log WHERE action='token.issued' AND details->>'via'='cli'");
    expect(audited.rows.map((r) => r.jti).sort()).toEqual([issued.jti, plain.jti].sort());
    const tooLong = await runStella(env, 'auth', 'token', '--ttl', String(MAX_TTL_SECONDS + 1));
    expect(tooLong.code).toBe(2);

    // auth revoke through the API (admin only), then the token is refused.
    const admin = JSON.parse((await runStella(env, 'auth', 'token', '--dpop', '--scopes', 'admin', '--format', 'json')).stdout);
    const revoked = await runStella({ ...env, STELLA_TOKEN: admin.token }, 'auth', 'revoke', '--jti', issued.jti, '--reason', 'test');
    expect(revoked.code, revoked.stderr).toBe(0);
    const after = await runStella({ ...env, STELLA_TOKEN: issued.token }, 'replay-runs', 'list');
    expect(after.code).toBe(6);
    expect(after.stderr).toMatch(/revoked/);
  });
});
