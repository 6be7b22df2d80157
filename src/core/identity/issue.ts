import type { AppContext } from '../context';
import { audit } from '../audit';
import { TOKEN_PURPOSE } from '../keys';
import { mintToken, type Scope } from '../../crypto/tokens';

/** How a stella token came to be: recorded in its audit entry. */
export type TokenVia = 'dev' | 'cli' | 'trusted-publishing' | 'oidc-login' | 'admin';

export interface IssueRequest {
  sub: string;
  tenant: string;
  scopes: Scope[];
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
}

/** The one place stella tokens are issued: every issued token has an audit entry. */
export async function issueStellaToken(ctx: AppContext, req: IssueRequest): Promise<IssuedToken> {
  const token = await mintToken(ctx.keys, { sub: req.sub, tenant: req.tenant, scopes: req.scopes, ttlSeconds: req.ttlSeconds }, { purpose: TOKEN_PURPOSE });
  const expiresAt = new Date(Date.now() + req.ttlSeconds * 1000).toISOString();
  await audit(ctx.db, {
    tenant: req.tenant,
    actor: req.actor ?? req.sub,
    action: 'token.issued',
    target: req.sub,
    details: { via: req.via, scopes: req.scopes, expiresAt, dpop: Boolean(req.jkt) },
  });
  return { token, tokenType: req.jkt ? 'DPoP' : 'Bearer', expiresAt };
}
