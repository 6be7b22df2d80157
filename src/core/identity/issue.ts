import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { StellaConfig } from '../../config';
import { createPool } from '../../db/pool';
import { migrate } from '../../db/migrate';
import { StellaError } from '../../lib/errors';
import type { AppContext } from '../context';
import { audit } from '../audit';
import { openKeyStore, TOKEN_PURPOSE } from '../keys';
import { MAX_TTL_SECONDS, mintToken, type Scope } from '../../crypto/tokens';
import { revokedSet } from './revocation';

/** How a stella token came to be: recorded in its audit entry. */
export type TokenVia = 'dev' | 'cli' | 'trusted-publishing' | 'oidc-login' | 'admin';

export interface IssueRequest {
  sub: string;
  tenant: string;
  scopes: Scope[];
  /** At most MAX_TTL_SECONDS (24 hours). */
  ttlSeconds: number;
  via: TokenVia;
  /** RFC 9449 `cnf.jkt`: the token is usable only with DPoP proofs by this key. */
  jkt?: string;
  /** Who asked (the verified identity behind a token exchange), for the audit entry. */
  actor?: string;
}

export interface IssuedToken {
  token: string;
  tokenType: 'Bearer' | 'DPoP';
  expiresAt: string;
  /** The token's id: what `stella auth revoke --jti` takes. */
  jti: string;
  /** The key that signed it: what `stella auth revoke --kid` takes. */
  kid: string;
}

/** The one place stella tokens are issued: every issued token has an audit entry (with its jti and key). */
export async function issueStellaToken(ctx: Pick<AppContext, 'db' | 'keys'>, req: IssueRequest): Promise<IssuedToken> {
  if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds <= 0 || req.ttlSeconds > MAX_TTL_SECONDS) {
    throw new StellaError('BAD_INPUT', `token lifetime must be 1..${MAX_TTL_SECONDS} seconds (at most 24 hours), got ${req.ttlSeconds}`);
  }
  const active = await ctx.keys.active(TOKEN_PURPOSE);
  if ((await revokedSet(ctx.db)).kids.has(active.kid)) {
    throw new StellaError('CONFLICT', `the active token key ${active.kid} is revoked; rotate it (stella keys rotate --purpose ${TOKEN_PURPOSE})`);
  }
  const token = await mintToken(
    ctx.keys,
    { sub: req.sub, tenant: req.tenant, scopes: req.scopes, ttlSeconds: req.ttlSeconds, ...(req.jkt ? { jkt: req.jkt } : {}) },
    { purpose: TOKEN_PURPOSE },
  );
  const claims = decodeJwt(token);
  const jti = claims.jti!;
  const kid = decodeProtectedHeader(token).kid!;
  const expiresAt = new Date(claims.exp! * 1000).toISOString();
  await audit(ctx.db, {
    tenant: req.tenant,
    actor: req.actor ?? req.sub,
    action: 'token.issued',
    target: req.sub,
    details: { via: req.via, scopes: req.scopes, expiresAt, dpop: Boolean(req.jkt), jti, kid, ...(req.jkt ? { jkt: req.jkt } : {}) },
  });
  return { token, tokenType: req.jkt ? 'DPoP' : 'Bearer', expiresAt, jti, kid };
}

/**
 * Issues a token on the machine that holds the key folder and the database (`stella dev up`,
 * `stella auth token`): the same audited path, without an API process.
 */
export async function issueLocalToken(cfg: StellaConfig, req: IssueRequest): Promise<IssuedToken> {
  if (!cfg.databaseUrl) {
    throw new StellaError('UNAVAILABLE', 'issuing a token records it in the audit log: DATABASE_URL is not set (stella dev up sets it)');
  }
  const db = createPool(cfg.databaseUrl);
  try {
    await migrate(db);
    return await issueStellaToken({ db, keys: await openKeyStore(cfg.keysDir) }, req);
  } finally {
    await db.end();
  }
}
