/**
 * `stella auth login`: OAuth 2.0 device authorization grant (RFC 8628) against the configured
 * IdP, then the IdP's access token is exchanged at `POST /auth/token` (RFC 8693) for a stella
 * token — DPoP-bound to the CLI's key — which is saved for the CLI where `stella dev up` saves its own.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { OAuthError, TOKEN_EXCHANGE_GRANT, TOKEN_TYPE_ACCESS_TOKEN, TokenResponse } from '../../contracts/auth';
import { formatZodError } from '../../lib/zod';
import { cliStatePath, resolveConnection } from '../client';
import { action, ctxOf, group } from '../common';
import { dpopProof } from '../dpop';
import { CliError, EXIT } from '../exit';
import { print, renderKv } from '../output';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TIMEOUT_MS = 15_000;

const Discovery = z.object({ issuer: z.string(), device_authorization_endpoint: z.url(), token_endpoint: z.url() });
const DeviceAuthorization = z.object({
  device_code: z.string().min(1),
  user_code: z.string().min(1),
  verification_uri: z.url(),
  verification_uri_complete: z.url().optional(),
  expires_in: z.number().positive(),
  interval: z.number().positive().optional(),
});
const IdpTokens = z.object({ access_token: z.string().min(1), token_type: z.string(), expires_in: z.number().optional() });

interface LoginOptions {
  issuer?: string;
  clientId?: string;
  scope?: string;
  resource?: string;
  dpop: boolean;
}

async function post(
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body: new URLSearchParams(form).toString(),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (e) {
    throw new CliError(`cannot reach ${url} (${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message})`, EXIT.UNAVAILABLE);
  }
  return { status: res.status, body: await res.json().catch(() => undefined), headers: res.headers };
}

function parse<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(body);
  if (!r.success) throw new CliError(`unexpected answer from ${what}: ${formatZodError(r.error, 'response')}`, EXIT.FAILURE);
  return r.data;
}

/** OIDC discovery: where to ask for a device code and where to poll. */
async function discover(issuer: string): Promise<z.infer<typeof Discovery>> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (e) {
    throw new CliError(
      `cannot reach the identity provider at ${issuer} (${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message})`,
      EXIT.UNAVAILABLE,
    );
  }
  if (!res.ok) throw new CliError(`OIDC discovery at ${url} answered HTTP ${res.status}`, EXIT.UNAVAILABLE);
  const doc = parse(Discovery, await res.json().catch(() => undefined), url);
  if (doc.issuer !== issuer) throw new CliError(`OIDC discovery at ${url} names issuer ${doc.issuer}, not ${issuer}`, EXIT.FAILURE);
  return doc;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RFC 8628 §3.4–3.5: poll at `interval`, 5 s slower after each slow_down, until approved, denied or expired. */
async function pollForTokens(tokenEndpoint: string, clientId: string, device: z.infer<typeof DeviceAuthorization>): Promise<z.infer<typeof IdpTokens>> {
  let interval = (device.interval ?? 5) * 1000;
  const deadline = Date.now() + device.expires_in * 1000;
  while (Date.now() < deadline) {
    await sleep(interval);
    const r = await post(tokenEndpoint, { grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: clientId });
    if (r.status === 200) return parse(IdpTokens, r.body, tokenEndpoint);
    const err = OAuthError.safeParse(r.body);
    const code = err.success ? err.data.error : `HTTP ${r.status}`;
    if (code === 'authorization_pending') continue;
    if (code === 'slow_down') {
      interval += 5000;
      continue;
    }
    if (code === 'access_denied') throw new CliError('the login was denied at the identity provider', EXIT.UNAUTHORIZED);
    if (code === 'expired_token') break;
    throw new CliError(
      `identity provider refused the device login: ${code}${err.success && err.data.error_description ? ` (${err.data.error_description})` : ''}`,
      EXIT.UNAUTHORIZED,
    );
  }
  throw new CliError('the device code expired before the login was approved; run `stella auth login` again', EXIT.UNAUTHORIZED);
}

/** The IdP access token → a stella token at POST /auth/token (retrying once with the API's DPoP nonce if it asks for one). */
async function exchange(apiUrl: string, dataDir: string, accessToken: string, dpop: boolean): Promise<TokenResponse> {
  const url = `${apiUrl}/auth/token`;
  const form = { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: accessToken, subject_token_type: TOKEN_TYPE_ACCESS_TOKEN };
  const proofHeader = async (nonce?: string): Promise<Record<string, string>> =>
    dpop ? { dpop: await dpopProof(dataDir, 'POST', url, undefined, nonce) } : {};
  let r = await post(url, form, await proofHeader());
  const nonce = r.headers.get('dpop-nonce');
  if (r.status === 400 && nonce && OAuthError.safeParse(r.body).data?.error === 'use_dpop_nonce') r = await post(url, form, await proofHeader(nonce));
  if (r.status === 200) return parse(TokenResponse, r.body, url);
  const err = OAuthError.safeParse(r.body);
  const why = err.success ? `${err.data.error}${err.data.error_description ? `: ${err.data.error_description}` : ''}` : `HTTP ${r.status}`;
  throw new CliError(`stella refused the login (${why})`, r.status === 401 ? EXIT.UNAUTHORIZED : r.status >= 500 ? EXIT.UNAVAILABLE : EXIT.FAILURE);
}

/** Saves the token for later commands, keeping what else the file holds (written atomically, mode 0600). */
function saveForCli(dataDir: string, entry: Record<string, unknown>): string {
  const file = cliStatePath(dataDir);
  let current: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      current = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch {
      current = {};
    }
  }
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ ...current, ...entry }, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}

export function registerAuthLoginCommand(program: Command): void {
  group(program, 'auth', 'API tokens')
    .command('login')
    .description('sign in at your identity provider (device code) and save a stella token for the CLI')
    .option('--issuer <url>', 'OIDC issuer (env STELLA_OIDC_ISSUER, config Auth:Issuer)')
    .option('--client-id <id>', 'OAuth client id registered at the IdP (env STELLA_OIDC_CLIENT_ID; default stella-cli)')
    .option('--scope <scopes>', 'scopes to ask the IdP for (env STELLA_OIDC_SCOPE; default openid)')
    .option('--resource <uri>', 'RFC 8707 resource indicator to send, for IdPs that need one')
    .option('--no-dpop', 'ask for a bearer token instead of one bound to the CLI’s DPoP key')
    .action(
      action(async (o: LoginOptions, cmd: Command) => {
        const c = ctxOf(cmd);
        const cfg = c.config();
        const issuer = o.issuer ?? cfg.identity.login.issuer;
        if (!issuer) throw new CliError('no identity provider: pass --issuer or set STELLA_OIDC_ISSUER (stella config set Auth:Issuer <url>)', EXIT.USAGE);
        const clientId = o.clientId ?? cfg.identity.login.clientId;
        const scope = o.scope ?? cfg.identity.login.scope;
        const { apiUrl } = resolveConnection({ apiUrl: (cmd.optsWithGlobals() as { apiUrl?: string }).apiUrl });

        const idp = await discover(issuer);
        const d = await post(idp.device_authorization_endpoint, { client_id: clientId, scope, ...(o.resource ? { resource: o.resource } : {}) });
        if (d.status !== 200) {
          const err = OAuthError.safeParse(d.body);
          throw new CliError(`identity provider refused the device login: ${err.success ? err.data.error : `HTTP ${d.status}`}`, EXIT.UNAUTHORIZED);
        }
        const device = parse(DeviceAuthorization, d.body, idp.device_authorization_endpoint);
        // Instructions go to stderr so --format json keeps stdout for the result.
        process.stderr.write(
          `To sign in, open ${device.verification_uri} and enter the code ${device.user_code}\n` +
            (device.verification_uri_complete ? `(or open ${device.verification_uri_complete})\n` : '') +
            'Waiting for approval…\n',
        );
        const idpTokens = await pollForTokens(idp.token_endpoint, clientId, device);
        const t = await exchange(apiUrl, cfg.dataDir, idpTokens.access_token, o.dpop);
        const expiresAt = new Date(Date.now() + t.expires_in * 1000).toISOString();
        const savedTo = saveForCli(cfg.dataDir, { apiUrl, token: t.access_token, tokenType: t.token_type, expiresAt, issuer });
        const out = { issuer, tenant: t.tenant, scopes: t.scope.split(' ').filter(Boolean), tokenType: t.token_type, expiresAt, savedTo };
        print(c.format, out, () =>
          [renderKv({ Issuer: issuer, Tenant: out.tenant, Scopes: out.scopes.join(' '), Token: t.token_type, Expires: expiresAt, 'Saved to': savedTo })].join(
            '\n',
          ),
        );
      }),
    );
}
