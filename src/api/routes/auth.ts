/** The token endpoint (`POST /auth/token`, RFC 8693) and the OIDC access-token hook: parse → core/identity → reply. */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { OAuthError, TOKEN_EXCHANGE_GRANT, TOKEN_TYPE_ACCESS_TOKEN, TokenExchangeRequest, TokenResponse } from '../../contracts/auth';
import { type Identity, loadIdentity } from '../../core/identity/exchange';
import { IdentityError } from '../../core/identity/oidc';
import { TokenError } from '../../crypto/tokens';
import { StellaError } from '../../lib/errors';
import { formatZodError } from '../../lib/zod';
import { dpopKeyThumbprint } from '../auth';
import type { ApiDeps, Principal } from '../deps';

/** A form body with the names that were repeated (RFC 6749 §3.2: parameters must not repeat). */
class FormBody {
  constructor(
    readonly params: Record<string, string>,
    readonly repeated: string[],
  ) {}
}

function parseForm(text: string): FormBody {
  const params: Record<string, string> = {};
  const repeated: string[] = [];
  for (const [k, v] of new URLSearchParams(text)) {
    if (k in params) repeated.push(k);
    params[k] = v;
  }
  return new FormBody(params, repeated);
}

/** The external-token hook of authenticate(): refusals are 401s (TokenError), an unreachable IdP a 503. */
function externalTokens(identity: Identity) {
  return async (token: string): Promise<Principal | null> => {
    try {
      return await identity.verifyAccessToken(token);
    } catch (e) {
      if (!(e instanceof IdentityError)) throw e;
      if (e.kind === 'unavailable') throw new StellaError('UNAVAILABLE', e.message);
      throw new TokenError(e.kind === 'expired' ? 'expired' : e.kind === 'invalid_signature' ? 'invalid_signature' : 'invalid_claims', e.message);
    }
  };
}

function oauthError(reply: FastifyReply, status: 400 | 401 | 503, error: string, description: string) {
  return reply.status(status).header('cache-control', 'no-store').send({ error, error_description: description });
}

export async function registerAuthRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  // Read and validated now: a bad identity file stops the API at start with one line.
  const identity = loadIdentity(deps.ctx);
  if (identity) deps.externalTokens = externalTokens(identity);

  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) =>
      done(null, parseForm(String(body))),
    );
    // Unreadable bodies (bad JSON, a JSON prototype key, too large) answer in RFC 6749's shape, not ours.
    scope.setErrorHandler((err, _req, reply) => {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === undefined || status < 400 || status >= 500) throw err;
      return reply
        .status(status)
        .header('cache-control', 'no-store')
        .send({ error: 'invalid_request', error_description: (err as Error).message });
    });
    scope
      .withTypeProvider<ZodTypeProvider>()
      .post(
        '/auth/token',
        { config: { public: true }, schema: { response: { 200: TokenResponse, 400: OAuthError, 401: OAuthError, 503: OAuthError } } },
        async (req, reply) => {
          const body = req.body ?? {};
          if (!(body instanceof FormBody) && (typeof body !== 'object' || Array.isArray(body))) {
            return oauthError(reply, 400, 'invalid_request', `the body must be a form or a JSON object, not ${Array.isArray(body) ? 'an array' : typeof body}`);
          }
          const form = body instanceof FormBody ? body : new FormBody(body as Record<string, string>, []);
          if (form.repeated.length) return oauthError(reply, 400, 'invalid_request', `parameter repeated: ${form.repeated.join(', ')}`);
          if (form.params.grant_type !== TOKEN_EXCHANGE_GRANT) {
            return oauthError(reply, 400, 'unsupported_grant_type', `grant_type must be ${TOKEN_EXCHANGE_GRANT}`);
          }
          const parsed = TokenExchangeRequest.safeParse(form.params);
          if (!parsed.success) return oauthError(reply, 400, 'invalid_request', formatZodError(parsed.error, 'body'));
          if (!identity) return oauthError(reply, 401, 'invalid_grant', 'this stella trusts no identity provider (STELLA_IDENTITY_FILE is not set)');
          const p = parsed.data;
          let jkt: string | undefined;
          try {
            jkt = await dpopKeyThumbprint(req);
          } catch (e) {
            if (!(e instanceof StellaError)) throw e;
            const reason = (e.details as { reason?: string } | undefined)?.reason;
            return oauthError(reply, 400, reason === 'use_dpop_nonce' ? 'use_dpop_nonce' : 'invalid_dpop_proof', e.message);
          }
          try {
            const kind = p.subject_token_type === TOKEN_TYPE_ACCESS_TOKEN ? 'access' : 'identity';
            const t = await identity.exchange({
              kind,
              subjectToken: p.subject_token,
              ...(p.scope !== undefined ? { scope: p.scope } : {}),
              ...(jkt ? { jkt } : {}),
            });
            return reply.header('cache-control', 'no-store').send({
              access_token: t.token,
              issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
              token_type: t.tokenType,
              expires_in: t.ttlSeconds,
              scope: t.scopes.join(' '),
              tenant: t.tenant,
            });
          } catch (e) {
            if (!(e instanceof IdentityError)) throw e;
            deps.ctx.log.info({ reason: e.kind, subjectTokenType: p.subject_token_type }, 'token exchange refused');
            if (e.kind === 'invalid_scope') return oauthError(reply, 400, 'invalid_scope', e.message);
            if (e.kind === 'unavailable') return oauthError(reply, 503, 'temporarily_unavailable', e.message);
            return oauthError(reply, 401, 'invalid_grant', e.message);
          }
        },
      );
  });
}
