// A real OpenID provider (oidc-provider) for the identity tests, run as a child process:
// device-flow logins for test users and CI-style identity tokens signed with the provider's own
// keys, which stella fetches through discovery and the JWKS endpoint like any other issuer.
// Prints one JSON line {"issuer": …} on stdout once it listens.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import Provider from 'oidc-provider';

const AUDIENCE = process.env.IDP_ACCESS_TOKEN_AUDIENCE ?? 'stella-api';
const RESOURCE = 'https://stella.test/api';
const RESOURCE_SCOPES = 'stella.read stella.write';

/** account id → claims put into its access tokens (set when the test approves a login). */
const accounts = new Map();

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await exportJWK(privateKey)), kid: `idp-${randomUUID().slice(0, 8)}`, alg: 'RS256', use: 'sig' };

const server = createServer();
await new Promise((res) => server.listen(0, '127.0.0.1', res));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    ...['stella-cli', 'test-helper'].map((clientId) => ({
      client_id: clientId,
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    })),
  ],
  jwks: { keys: [signingJwk] },
  cookies: { keys: ['test-idp-only'] },
  scopes: ['openid', 'email', ...RESOURCE_SCOPES.split(' ')],
  claims: { openid: ['sub'], email: ['email'] },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: RESOURCE_SCOPES,
        audience: AUDIENCE,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, email: `${id}@example.test` }) }),
  extraTokenClaims: (_ctx, token) => (token.kind === 'AccessToken' ? (accounts.get(token.accountId) ?? {}) : undefined),
});

// Devices are told to poll every second (instead of the default 5). For the stella-cli client, each
// device code's first poll is answered with slow_down, and polls that come before the interval
// (plus 5 s per slow_down, RFC 8628 §3.5) are counted: GET /test/device/polls reports them.
// The body read here is handed on to the provider (it reads ctx.req.body once the stream is consumed).
const INTERVAL_MS = 1000;
const polling = new Map(); // device_code → { interval, next }
const pollStats = { slowDowns: 0, early: 0, polls: 0 };
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/token') {
    let text = '';
    for await (const chunk of ctx.req) text += chunk;
    ctx.req.body = text;
    const form = new URLSearchParams(text);
    const state = form.get('client_id') === 'stella-cli' ? polling.get(form.get('device_code')) : undefined;
    if (state) {
      pollStats.polls++;
      if (Date.now() < state.next - 250) pollStats.early++;
      if (!state.slowed) {
        state.slowed = true;
        state.interval += 5000;
        state.next = Date.now() + state.interval;
        pollStats.slowDowns++;
        ctx.status = 400;
        ctx.body = { error: 'slow_down', error_description: 'polling too fast' };
        return;
      }
      state.next = Date.now() + state.interval;
    }
  }
  await next();
  if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body) {
    ctx.body = { ...ctx.body, interval: INTERVAL_MS / 1000 };
    polling.set(ctx.body.device_code, { interval: INTERVAL_MS, next: Date.now() + INTERVAL_MS, slowed: false });
  }
});

const handleProvider = provider.callback();

async function readJson(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : {};
}

/**
 * The test user's approval of a device login (what the user does in the browser): a grant for
 * the resource scopes the device asked for, recorded on the device code the way the provider's
 * own device flow records it.
 */
async function approveDevice({ user_code: userCode, account, claims = {} }) {
  const code = await provider.DeviceCode.findByUserCode(userCode.toUpperCase().replace(/[^A-Z]/g, ''));
  if (!code) return { status: 404, body: { error: 'unknown user code' } };
  accounts.set(account, claims);
  const requested = (code.params.scope ?? '').split(' ').filter(Boolean);
  const grant = new provider.Grant({ accountId: account, clientId: code.clientId });
  grant.addOIDCScope(requested.filter((s) => !RESOURCE_SCOPES.split(' ').includes(s)).join(' '));
  grant.addResourceScope(RESOURCE, requested.filter((s) => RESOURCE_SCOPES.split(' ').includes(s)).join(' '));
  Object.assign(code, {
    accountId: account,
    grantId: await grant.save(),
    authTime: Math.floor(Date.now() / 1000),
    scope: requested.join(' '),
    resource: RESOURCE,
  });
  await code.save();
  return { status: 200, body: { approved: true } };
}

/** A CI job's identity token (GitHub Actions / GitLab CI shape), signed with the provider's key. */
async function ciToken({ claims = {}, audience, expiresIn = 300, iss = issuer }) {
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid, typ: 'JWT' })
    .setIssuer(iss)
    .setAudience(audience)
    .setIssuedAt(now - (expiresIn < 0 ? 600 : 0))
    .setNotBefore(now - (expiresIn < 0 ? 600 : 0))
    .setExpirationTime(now + expiresIn)
    .setJti(randomUUID())
    .sign(privateKey);
  return { status: 200, body: { token: jwt } };
}

server.on('request', (req, res) => {
  if (req.method === 'GET' && req.url === '/test/device/polls') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(pollStats));
  }
  const test = { '/test/device/approve': approveDevice, '/test/ci-token': ciToken }[req.url];
  if (!test || req.method !== 'POST') return handleProvider(req, res);
  readJson(req)
    .then(test)
    .then(({ status, body }) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    })
    .catch((e) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(e?.stack ?? e) }));
    });
});

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
