import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { loadConfig } from '../src/config';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_ID_TOKEN } from '../src/contracts/auth';
import { loadIdentityConfig, parseIdentityConfig } from '../src/core/identity/config';
import { matchPublisher } from '../src/core/identity/trusted-publishing';
import { createDpopProof, jwkThumbprint } from '../src/crypto/dpop';
import { sha256Digest } from '../src/lib/hash';
import { apiFor, bearer } from './support/api';
import { type Harness, harness } from './support/context';
import { startTestIdp, type TestIdp } from './support/idp';

const BIN = resolve(import.meta.dirname, '..', 'bin', 'stella.mjs');
const REPO_A = { repository: 'acme/api', ref: 'refs/heads/main', workflow: 'release', sub: 'repo:acme/api:ref:refs/heads/main' };

/** The identity file an operator would write: IdP access tokens for people, two CI publishers for two tenants. */
function identityFile(idp: string): Record<string, unknown> {
  return {
    issuers: [
      {
        issuer: idp,
        audience: 'stella-api',
        tenantClaim: 'stella_tenant',
        tenants: ['acme', 'beta'],
        scopes: { claim: 'scope', map: { 'stella.read': ['evidence:read', 'promotion:read'], 'stella.write': ['evidence:write'] } },
        tokenTtl: '1h',
      },
    ],
    trustedPublishers: [
      {
        name: 'acme-api-release',
        issuer: idp,
        audience: 'stella',
        claims: { repository: 'acme/api', ref: 'refs/heads/main', workflow: 'release' },
        tenant: 'acme',
        scopes: ['promotion:write', 'evidence:write'],
        tokenTtl: '10m',
      },
      { name: 'beta-gitlab', issuer: idp, audience: 'stella', claims: { project_path: 'beta/app', ref: ['main'] }, tenant: 'beta', scopes: ['evidence:write'] },
    ],
  };
}

describe('identity: trusted publishing, OIDC access tokens, stella auth login', () => {
  let idp: TestIdp;
  let other: TestIdp;
  let h: Harness;
  let app: FastifyInstance;
  let apiUrl: string;
  const acmeItem = { id: '' };

  beforeAll(async () => {
    [idp, other] = await Promise.all([startTestIdp(), startTestIdp()]);
    const file = join(mkdtempSync(join(tmpdir(), 'identity-')), 'identity.yaml');
    writeFileSync(file, toYaml(identityFile(idp.issuer)));
    h = await harness({ worker: false, env: { STELLA_IDENTITY_FILE: file } });
    app = await apiFor(h);
    await app.listen({ host: '127.0.0.1', port: 0 });
    apiUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const r = await h.ctx.evidence.ingest({
      tenant: 'acme',
      data: Buffer.from(`{"sbom":"${randomBytes(4).toString('hex')}"}`),
      kind: 'sbom',
      mediaType: 'application/json',
      subjects: [sha256Digest(`acme-${randomBytes(4).toString('hex')}`)],
    });
    acmeItem.id = r.id;
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await h?.close();
    await Promise.all([idp?.stop(), other?.stop()]);
  });

  const exchange = (subjectToken: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) =>
    fetch(`${apiUrl}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({
        grant_type: TOKEN_EXCHANGE_GRANT,
        subject_token: subjectToken,
        subject_token_type: TOKEN_TYPE_ID_TOKEN,
        ...extra,
      }).toString(),
    });
  const issuedCount = async () => Number((await h.ctx.db.query(`SELECT count(*) AS n FROM audit_log WHERE action = 'token.issued'`)).rows[0].n);
  const call = (method: string, url: string, token: string, body?: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}`, ...headers }, ...(body ? { payload: body as object } : {}) });

  it('a CI identity token for repository A exchanges for a short-lived tenant-A token that starts a promotion (no stored secret)', async () => {
    const res = await exchange(await idp.ciToken(REPO_A));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const t = (await res.json()) as Record<string, unknown>;
    expect(t).toMatchObject({ token_type: 'Bearer', expires_in: 600, issued_token_type: TOKEN_TYPE_ACCESS_TOKEN, tenant: 'acme' });
    expect(String(t.scope).split(' ').sort()).toEqual(['evidence:write', 'promotion:write']);
    const claims = decodeJwt(String(t.access_token));
    expect(claims).toMatchObject({ iss: 'stella', tenant: 'acme', sub: `ci:${REPO_A.sub}` });
    expect(claims.exp! - claims.iat!).toBe(600);

    const artifact = sha256Digest(`tp-${randomBytes(4).toString('hex')}`);
    const started = await call('POST', '/promotions', String(t.access_token), { artifact, from: 'dev', to: 'staging' });
    expect(started.statusCode).toBe(202);
    const { workflowId } = started.json() as { workflowId: string };
    expect(workflowId).toContain('acme');
    expect((await h.client.workflow.getHandle(workflowId).describe()).status.name).toBe('RUNNING');
    const requested = await h.ctx.db.query(`SELECT tenant_id, actor FROM audit_log WHERE action = 'promotion.requested' AND target = $1`, [artifact]);
    expect(requested.rows).toEqual([{ tenant_id: 'acme', actor: `ci:${REPO_A.sub}` }]);
    const issued = await h.ctx.db.query(`SELECT tenant_id, actor, details FROM audit_log WHERE action = 'token.issued' AND target = $1`, [`ci:${REPO_A.sub}`]);
    expect(issued.rows[0]).toMatchObject({ tenant_id: 'acme', details: { via: 'trusted-publishing' } });
    expect(issued.rows[0].actor).toContain('acme-api-release');
  });

  it('repository B, wrong audience, wrong ref, expired, another issuer or a forged issuer → 401 naming no configuration; nothing issued', async () => {
    const before = await issuedCount();
    const cases: Record<string, string> = {
      'repository B': await idp.ciToken({ ...REPO_A, repository: 'evil/api' }),
      'wrong audience': await idp.ciToken(REPO_A, { audience: 'someone-else' }),
      'wrong ref': await idp.ciToken({ ...REPO_A, ref: 'refs/heads/feature' }),
      'wrong workflow': await idp.ciToken({ ...REPO_A, workflow: 'ci' }),
      expired: await idp.ciToken(REPO_A, { expiresIn: -120 }),
      'another issuer': await other.ciToken(REPO_A),
      'another issuer’s key claiming the trusted issuer': await other.ciToken(REPO_A, { iss: idp.issuer }),
    };
    for (const [name, token] of Object.entries(cases)) {
      const res = await exchange(token);
      const body = (await res.json()) as { error: string; error_description: string };
      expect([name, res.status, body.error]).toEqual([name, 401, 'invalid_grant']);
      for (const secret of ['acme', 'beta', 'release', 'refs/heads/main']) expect(body.error_description).not.toContain(secret);
    }
    const expired = (await (await exchange(cases.expired!)).json()) as { error_description: string };
    expect(expired.error_description).toMatch(/expired/);
    expect(await issuedCount()).toBe(before);
  });

  it('bad requests are OAuth 400s: grant type, token type, repeated parameter, scope beyond the rule', async () => {
    const token = await idp.ciToken(REPO_A);
    const bad = async (res: Response) => [res.status, ((await res.json()) as { error: string }).error];
    expect(await bad(await exchange(token, { grant_type: 'client_credentials' }))).toEqual([400, 'unsupported_grant_type']);
    expect(await bad(await exchange(token, { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }))).toEqual([400, 'invalid_request']);
    expect(await bad(await exchange(token, { scope: 'admin' }))).toEqual([400, 'invalid_scope']);
    const repeated = await fetch(`${apiUrl}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=${encodeURIComponent(TOKEN_EXCHANGE_GRANT)}&subject_token=${token}&subject_token=${token}&subject_token_type=${encodeURIComponent(TOKEN_TYPE_ID_TOKEN)}`,
    });
    expect(await bad(repeated)).toEqual([400, 'invalid_request']);
    const narrowed = (await (await exchange(token, { scope: 'evidence:write' })).json()) as { scope: string };
    expect(narrowed.scope).toBe('evidence:write');
  });

  it('a token for repository A cannot act for tenant B; B’s own pipeline gets only B', async () => {
    const a = (await (await exchange(await idp.ciToken(REPO_A))).json()) as { access_token: string };
    const artifact = sha256Digest(`tp-b-${randomBytes(4).toString('hex')}`);
    const asB = await call('POST', '/promotions', a.access_token, { artifact, from: 'dev', to: 'staging' }, { 'x-stella-tenant': 'beta' });
    expect(asB.statusCode).toBe(403);
    expect((await call('GET', '/evidence?tenant=beta', a.access_token)).statusCode).toBe(403);
    const b = (await (
      await exchange(await idp.ciToken({ project_path: 'beta/app', ref: 'main', sub: 'project_path:beta/app:ref_type:branch:ref:main' }))
    ).json()) as {
      tenant: string;
      scope: string;
    };
    expect(b).toMatchObject({ tenant: 'beta', scope: 'evidence:write' });
  });

  it('with a DPoP proof the issued token is DPoP-bound (cnf.jkt) and refused as a plain bearer token', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const signer = { privateKey, publicJwk: await exportJWK(publicKey), alg: 'ES256' as const };
    const proof = await createDpopProof(signer, { method: 'POST', url: `${apiUrl}/auth/token` });
    const res = await exchange(await idp.ciToken(REPO_A), {}, { dpop: proof });
    const t = (await res.json()) as { token_type: string; access_token: string };
    expect(res.status).toBe(200);
    expect(t.token_type).toBe('DPoP');
    expect((decodeJwt(t.access_token).cnf as { jkt: string }).jkt).toBe(await jwkThumbprint(signer.publicJwk));
    expect((await call('GET', '/promotions', t.access_token)).statusCode).toBe(401);
  });

  it('an IdP access token is accepted directly, with the tenant and scopes its claims map to', async () => {
    const at = await idp.deviceLogin('alice', { stella_tenant: 'acme' }, 'openid stella.read');
    const list = await call('GET', '/evidence', at);
    expect(list.statusCode).toBe(200);
    expect(JSON.stringify(list.json())).toContain(acmeItem.id);
    // stella.read maps to evidence:read and promotion:read only: no writes.
    const put = await app.inject({
      method: 'POST',
      url: `/evidence?artifact=${sha256Digest('x')}&kind=sbom`,
      headers: { authorization: `Bearer ${at}` },
      payload: '{}',
    });
    expect(put.statusCode).toBe(403);
    expect((await call('GET', '/evidence?tenant=beta', at)).statusCode).toBe(403);
    // A tenant the issuer may not name, and an access token of an untrusted issuer, authenticate no one.
    expect((await call('GET', '/evidence', await idp.deviceLogin('mallory', { stella_tenant: 'gamma' }))).statusCode).toBe(401);
    expect((await call('GET', '/evidence', await other.deviceLogin('bob', { stella_tenant: 'acme' }))).statusCode).toBe(401);
    // A CI identity token is no access token (typ JWT, audience stella): refused too.
    expect((await call('GET', '/evidence', await idp.ciToken(REPO_A))).statusCode).toBe(401);
  });

  it('stella auth login (real CLI) signs in with the device code and the saved token lists evidence', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'login-'));
    const env = {
      ...process.env,
      STELLA_API_URL: apiUrl,
      STELLA_DATA_DIR: dataDir,
      STELLA_OIDC_ISSUER: idp.issuer,
      STELLA_OIDC_SCOPE: 'openid stella.read',
      STELLA_TOKEN: '',
      STELLA_TENANT: '',
    };
    const login = spawn(process.execPath, [BIN, 'auth', 'login', '--format', 'json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    login.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise<number>((res) => login.on('close', (c) => res(c ?? -1)));
    const userCode = await new Promise<string>((res, rej) => {
      login.stderr.on('data', (d) => {
        stderr += d;
        const m = /enter the code ([A-Z]{4}-[A-Z]{4})/.exec(stderr);
        if (m) res(m[1]!);
      });
      void exited.then(() => rej(new Error(`login exited early: ${stderr}`)));
    });
    expect(stderr).toContain(`${idp.issuer}/device`);
    await idp.approve(userCode, 'carol', { stella_tenant: 'acme' });
    expect(await exited).toBe(0);
    // The CLI polled at the IdP's interval and backed off after slow_down (RFC 8628 §3.5).
    expect(await idp.pollStats()).toMatchObject({ slowDowns: 1, early: 0 });
    const out = JSON.parse(stdout) as { tenant: string; scopes: string[]; tokenType: string; savedTo: string };
    expect(out).toMatchObject({ tenant: 'acme', tokenType: 'DPoP', savedTo: join(dataDir, 'cli.json') });
    expect(out.scopes.sort()).toEqual(['evidence:read', 'promotion:read']);
    const saved = JSON.parse(readFileSync(out.savedTo, 'utf8')) as { token: string; apiUrl: string };
    expect(saved.apiUrl).toBe(apiUrl);
    expect(decodeJwt(saved.token)).toMatchObject({ iss: 'stella', sub: 'carol', tenant: 'acme' });

    const list = await new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
      const p = spawn(process.execPath, [BIN, 'evidence', 'list', '--format', 'json'], {
        env: { ...env, STELLA_API_URL: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let o = '';
      let e = '';
      p.stdout.on('data', (d) => (o += d));
      p.stderr.on('data', (d) => (e += d));
      p.on('close', (code) => res({ code: code ?? -1, stdout: o, stderr: e }));
    });
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(acmeItem.id);
  }, 60_000);

  it('stella doctor checks that every trusted issuer publishes its discovery document and keys', async () => {
    const res = await app.inject({ method: 'GET', url: '/doctor?check=check.identity.issuers', headers: await bearer(h, ['admin']) });
    expect(res.statusCode).toBe(200);
    const r = res.json() as { results: { id: string; status: string; details: { issuers: string[] } }[] };
    expect(r.results[0]).toMatchObject({ id: 'check.identity.issuers', status: 'PASS', details: { issuers: [idp.issuer] } });
  });

  it('stella auth login without an issuer is a usage error', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'login-'));
    const r = await new Promise<{ code: number; stderr: string }>((res) => {
      const p = spawn(process.execPath, [BIN, 'auth', 'login'], {
        env: { ...process.env, STELLA_DATA_DIR: dataDir, STELLA_OIDC_ISSUER: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let e = '';
      p.stderr.on('data', (d) => (e += d));
      p.on('close', (code) => res({ code: code ?? -1, stderr: e }));
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^stella: no identity provider: pass --issuer/);
    expect(existsSync(join(dataDir, 'cli.json'))).toBe(false);
  });
});

describe('identity file validation (at start) and publisher matching', () => {
  const base = { name: 'p', issuer: 'https://token.actions.githubusercontent.com', audience: 'stella', tenant: 'acme', scopes: ['promotion:write'] };

  it('a bad identity file is one line naming the setting, the file and the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'identity-bad-'));
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    expect(() => loadIdentityConfig(join(dir, 'missing.yaml'))).toThrow(/STELLA_IDENTITY_FILE: cannot read .*missing\.yaml \(ENOENT\)/);
    expect(() => loadIdentityConfig(write('a.json', '{nope'))).toThrow(/a\.json is not valid JSON/);
    expect(() => loadIdentityConfig(write('b.yaml', toYaml({ trustedPublishers: [{ ...base, claims: {} }] })))).toThrow(
      /trustedPublishers\.0\.claims: name at least one claim/,
    );
    expect(() => parseIdentityConfig({ trustedPublishers: [{ ...base, claims: { repository: 'a/b' }, scopes: ['admin'] }] })).toThrow(
      /trustedPublishers\.0\.scopes\.0/,
    );
    expect(() => parseIdentityConfig({ trustedPublishers: [{ ...base, claims: { repository: 'a/b' }, tokenTtl: '2h' }] })).toThrow(/at most 1h/);
    expect(() => parseIdentityConfig({ trustedPublishers: [{ ...base, issuer: 'http://ci.example.com', claims: { repository: 'a/b' } }] })).toThrow(/https/);
    expect(() => parseIdentityConfig({ issuers: [{ issuer: 'https://idp.example.com', audience: 'x', scopes: { map: { r: ['evidence:read'] } } }] })).toThrow(
      /exactly one of tenant or tenantClaim/,
    );
    expect(() => parseIdentityConfig({ surprise: true })).toThrow(/surprise|Unrecognized/);
  });

  it('the API does not start with a bad identity file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'identity-bad-'));
    writeFileSync(join(dir, 'i.yaml'), toYaml({ trustedPublishers: [{ ...base, claims: { repository: 'a/b' }, tenant: 'Not A Tenant' }] }));
    const cfg = loadConfig({ STELLA_DATA_DIR: dir, STELLA_IDENTITY_FILE: join(dir, 'i.yaml') });
    const { registerAuthRoutes } = await import('../src/api/routes/auth');
    await expect(registerAuthRoutes({} as never, { ctx: { cfg } } as never)).rejects.toThrow(/STELLA_IDENTITY_FILE: .*trustedPublishers\.0\.tenant/);
  });

  it('exactly one publisher must match; several is a refusal, not a choice', () => {
    const cfg = parseIdentityConfig({
      trustedPublishers: [
        { ...base, name: 'a', claims: { repository: 'acme/api' } },
        { ...base, name: 'b', claims: { repository: ['acme/api', 'acme/web'], ref: 'refs/heads/main' }, tenant: 'beta' },
      ],
    });
    const claims = (c: Record<string, unknown>) => ({ iss: base.issuer, aud: ['stella'], ...c });
    expect(matchPublisher(cfg.trustedPublishers, claims({ repository: 'acme/web', ref: 'refs/heads/main' })).name).toBe('b');
    expect(matchPublisher(cfg.trustedPublishers, claims({ repository: 'acme/api', ref: 'refs/heads/dev' })).name).toBe('a');
    expect(() => matchPublisher(cfg.trustedPublishers, claims({ repository: 'acme/api', ref: 'refs/heads/main' }))).toThrow(/more than one/);
    expect(() => matchPublisher(cfg.trustedPublishers, claims({ repository: ['acme/api'] }))).toThrow(/no trusted publisher/);
    expect(() => matchPublisher(cfg.trustedPublishers, { ...claims({ repository: 'acme/api' }), aud: 'other' })).toThrow(/no trusted publisher/);
  });
});
