import { StellaError } from '../lib/errors';
import { bearerToken, verifyToken, TokenError } from '../crypto/tokens';
import type { ApiDeps, Principal } from './deps';

/** Bearer JWT → principal. Missing, malformed, expired or forged tokens are 401. */
export async function authenticate(header: string | undefined, deps: ApiDeps): Promise<Principal> {
  try {
    const claims = await verifyToken(bearerToken(header), (await deps.tokenKeys()) as never);
    return { sub: claims.sub, tenant: claims.tenant, scopes: claims.scopes };
  } catch (e) {
    const kind = e instanceof TokenError ? e.kind : 'invalid';
    const hint = kind === 'missing' ? ' (set STELLA_TOKEN or run `stella auth token`)' : '';
    throw new StellaError('FORBIDDEN', `${(e as Error).message}${hint}`, { unauthenticated: true, reason: kind });
  }
}
