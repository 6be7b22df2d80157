/**
 * Promotion action tokens: short-lived JWTs the API mints for one decision (approve, abort,
 * retry) on one promotion, from the caller's verified identity. The promotion workflow accepts
 * an action only with one (checked in an activity), so a signal or update typed into the
 * Temporal UI or CLI cannot act in someone's name. Signed with the API-token key material but
 * with their own audience and `typ`, so an action token is never an API token or vice versa.
 */
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { CryptoError } from './errors';
import type { KeySigner } from './keys';
import { TOKEN_ISSUER, TokenError, mapJoseError } from './tokens';

export const ACTION_AUDIENCE = 'stella-promotion-action';
export const ACTION_TYP = 'stella-action+jwt';
export const ACTIONS = ['approve', 'abort', 'retry'] as const;
export type PromotionAction = (typeof ACTIONS)[number];
/** Long enough for an update to reach a worker that is restarting; short enough that a leaked token is useless soon. */
export const ACTION_TTL_SECONDS = 300;

export interface ActionClaims {
  /** Who decides: the API caller's token subject. */
  sub: string;
  tenant: string;
  /** The promotion (Temporal run id) and its workflow id. */
  promotionId: string;
  workflowId: string;
  action: PromotionAction;
}

export interface VerifiedAction extends ActionClaims {
  jti: string;
  kid: string;
  issuedAt: Date;
  expiresAt: Date;
}

export async function mintActionToken(signer: KeySigner, c: ActionClaims, opts: { now?: Date; ttlSeconds?: number } = {}): Promise<string> {
  for (const k of ['sub', 'tenant', 'promotionId', 'workflowId'] as const)
    if (!c[k]) throw new CryptoError('INVALID_ARGUMENT', `action token ${k} must be non-empty`);
  if (!ACTIONS.includes(c.action)) throw new CryptoError('INVALID_ARGUMENT', `unknown action ${c.action}`);
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  return new SignJWT({ tenant: c.tenant, promotion: c.promotionId, wf: c.workflowId, act: c.action })
    .setProtectedHeader({ alg: signer.alg, kid: signer.keyid, typ: ACTION_TYP })
    .setIssuer(TOKEN_ISSUER)
    .setAudience(ACTION_AUDIENCE)
    .setSubject(c.sub)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + (opts.ttlSeconds ?? ACTION_TTL_SECONDS))
    .setJti(randomUUID())
    .sign(signer.privateKey);
}

/** Signature, issuer, audience, typ, lifetime and claim shapes; the binding to a promotion is the caller's to check. */
export async function verifyActionToken(token: unknown, publicJwks: { keys: JWK[] }, opts: { now?: Date } = {}): Promise<VerifiedAction> {
  if (token === undefined || token === null || token === '') throw new TokenError('missing', 'no action token');
  if (typeof token !== 'string' || token.split('.').length !== 3) throw new TokenError('malformed', 'action token is not a compact JWS');
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    throw new TokenError('malformed', 'action token header is not valid');
  }
  if (!kid) throw new TokenError('malformed', 'action token header has no kid');
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet(publicJwks), {
      algorithms: ['ES256', 'EdDSA'],
      issuer: TOKEN_ISSUER,
      audience: ACTION_AUDIENCE,
      typ: ACTION_TYP,
      requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      currentDate: opts.now,
    }));
  } catch (err) {
    throw mapJoseError(err);
  }
  const p = payload as JWTPayload & { tenant?: unknown; promotion?: unknown; wf?: unknown; act?: unknown };
  const str = (v: unknown, what: string) => {
    if (typeof v !== 'string' || v === '') throw new TokenError('invalid_claims', `action token ${what} missing`);
    return v;
  };
  const action = str(p.act, 'action');
  if (!(ACTIONS as readonly string[]).includes(action)) throw new TokenError('invalid_claims', `action token action ${action} unknown`);
  return {
    sub: str(p.sub, 'sub'),
    tenant: str(p.tenant, 'tenant'),
    promotionId: str(p.promotion, 'promotion'),
    workflowId: str(p.wf, 'workflow id'),
    action: action as PromotionAction,
    jti: str(p.jti, 'jti'),
    kid,
    issuedAt: new Date((p.iat as number) * 1000),
    expiresAt: new Date((p.exp as number) * 1000),
  };
}
