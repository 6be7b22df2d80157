/** Token revocation (issue 17): revoke an access token by jti or a token-signing key by kid; the API refuses both. */
import type { Db } from '../../db/pool';
import type { AppContext } from '../context';
import { StellaError } from '../../lib/errors';
import { MAX_TTL_SECONDS } from '../../crypto/tokens';
import { audit } from '../audit';
import type { JWK } from 'jose';
import { rotateKey, tokenJwks, TOKEN_PURPOSE } from '../keys';

export interface Revocation {
  kind: 'jti' | 'kid';
  value: string;
  actor: string;
  reason: string | null;
  revokedAt: string;
  /** Set when the key was the active token key: the key that now signs new tokens. */
  rotatedTo?: string;
}

export interface RevokedSet {
  jtis: ReadonlySet<string>;
  kids: ReadonlySet<string>;
}

/** How long an API process trusts its copy of the list; a revocation made elsewhere counts within this. */
const CACHE_MS = 5_000;
const cache = new WeakMap<Db, { at: number; set: RevokedSet }>();

/** The live revocations (cached per pool for a few seconds: the list is read on every request). */
export async function revokedSet(db: Db): Promise<RevokedSet> {
  const hit = cache.get(db);
  if (hit && Date.now() - hit.at < CACHE_MS) return hit.set;
  let r: { rows: { kind: 'jti' | 'kid'; value: string }[] };
  try {
    r = await db.query<{ kind: 'jti' | 'kid'; value: string }>('SELECT kind, value FROM token_revocations WHERE expires_at IS NULL OR expires_at > now()');
  } catch (e) {
    // PostgreSQL unreachable: the last list read still holds (no revocation can be recorded meanwhile); without one, fail closed.
    if (hit) return hit.set;
    throw e;
  }
  const set: RevokedSet = {
    jtis: new Set(r.rows.filter((x) => x.kind === 'jti').map((x) => x.value)),
    kids: new Set(r.rows.filter((x) => x.kind === 'kid').map((x) => x.value)),
  };
  cache.set(db, { at: Date.now(), set });
  return set;
}

type RevokeRequest = { jti: string; kid?: undefined } | { kid: string; jti?: undefined };

/**
 * Revokes a token (jti) or a token-signing key (kid). Revoking the active token key rotates to a
 * new one first, so stella can go on issuing tokens. Audited; revoking twice is not an error.
 */
export async function revoke(
  ctx: Pick<AppContext, 'db' | 'keys'>,
  tenant: string,
  req: RevokeRequest & { actor: string; reason?: string },
): Promise<Revocation> {
  let rotatedTo: string | undefined;
  if (req.kid !== undefined) {
    const key = (await ctx.keys.list()).find((k) => k.kid === req.kid);
    if (!key || key.purpose !== TOKEN_PURPOSE)
      throw new StellaError('NOT_FOUND', `no API token key ${req.kid} (stella keys list shows the ${TOKEN_PURPOSE} keys)`);
    if (key.status === 'active') rotatedTo = (await rotateKey(ctx, tenant, { purpose: TOKEN_PURPOSE, actor: req.actor })).active.kid;
  }
  const kind = req.jti !== undefined ? 'jti' : 'kid';
  const value = (req.jti ?? req.kid)!;
  const expires = kind === 'jti' ? new Date(Date.now() + MAX_TTL_SECONDS * 1000) : null;
  const r = await ctx.db.query<{ actor: string; reason: string | null; revoked_at: Date }>(
    `INSERT INTO token_revocations (kind, value, actor, reason, expires_at) VALUES ($1,$2,$3,$4,$5)
     ON CONFLICT (kind, value) DO UPDATE SET kind = EXCLUDED.kind RETURNING actor, reason, revoked_at`,
    [kind, value, req.actor, req.reason ?? null, expires],
  );
  cache.delete(ctx.db);
  await audit(ctx.db, {
    tenant,
    actor: req.actor,
    action: 'token.revoked',
    target: value,
    reason: req.reason,
    details: { kind, ...(rotatedTo ? { rotatedTo } : {}) },
  });
  const row = r.rows[0]!;
  return { kind, value, actor: row.actor, reason: row.reason, revokedAt: row.revoked_at.toISOString(), ...(rotatedTo ? { rotatedTo } : {}) };
}

/** The token-key JWKS without revoked keys: what any verifier of stella-signed tokens should use. */
export async function liveTokenJwks(ctx: Pick<AppContext, 'db' | 'keys'>): Promise<{ keys: JWK[] }> {
  const revoked = (await revokedSet(ctx.db)).kids;
  return { keys: (await tokenJwks(ctx.keys)).keys.filter((k) => !revoked.has(String(k.kid))) };
}
