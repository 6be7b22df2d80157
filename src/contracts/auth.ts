/** HTTP contract of the token endpoint (src/api/routes/auth.ts): RFC 8693 token exchange, RFC 6749 answers. */
import { z } from 'zod';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * `POST /auth/token` (application/x-www-form-urlencoded, or JSON). subject_token_type id_token (or
 * jwt): a CI job's identity token, matched against the trusted publishers; access_token: an access
 * token of a trusted issuer (what `stella auth login` exchanges).
 */
export const TokenExchangeRequest = z.object({
  grant_type: z.string(),
  subject_token: z.string().min(1).max(16384),
  subject_token_type: z.enum([TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT, TOKEN_TYPE_ACCESS_TOKEN]),
  /** Optional narrowing to a subset of the granted scopes, space-separated. */
  scope: z.string().max(1024).optional(),
  requested_token_type: z.literal(TOKEN_TYPE_ACCESS_TOKEN).optional(),
});
export type TokenExchangeRequest = z.infer<typeof TokenExchangeRequest>;

/** RFC 8693 §2.2.1 (plus the tenant the token acts for). */
export const TokenResponse = z.object({
  access_token: z.string(),
  issued_token_type: z.literal(TOKEN_TYPE_ACCESS_TOKEN),
  /** DPoP when the request carried a DPoP proof: use the token only with proofs by that key. */
  token_type: z.enum(['Bearer', 'DPoP']),
  expires_in: z.number().int().positive(),
  scope: z.string(),
  tenant: z.string(),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

/** RFC 6749 §5.2 error answer. */
export const OAuthError = z.object({ error: z.string(), error_description: z.string().optional() });
export type OAuthError = z.infer<typeof OAuthError>;
