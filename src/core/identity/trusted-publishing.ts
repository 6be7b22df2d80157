/**
 * Trusted publishing (as PyPI does it): a CI job's OIDC identity token is matched against the
 * configured publishers by issuer, audience and claims (repository, ref, workflow, project_path …);
 * exactly one publisher must match, and it alone decides the tenant and scopes.
 */
import type { TrustedPublisherRule } from './config';
import { IdentityError, issuerOf, type IssuerKeys, verifyIssuerJwt } from './oidc';

/** Every claim the rule names equals its value (or one of its values). Pure. */
export function claimsMatch(rule: TrustedPublisherRule, claims: Record<string, unknown>): boolean {
  return Object.entries(rule.claims).every(([name, want]) => {
    const got = claims[name];
    return typeof got === 'string' && (Array.isArray(want) ? want.includes(got) : want === got);
  });
}

function audiences(claims: Record<string, unknown>): string[] {
  const aud = claims.aud;
  return typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

/** Pure: the one publisher a verified identity token's claims match; none or several is a refusal. */
export function matchPublisher(rules: readonly TrustedPublisherRule[], claims: Record<string, unknown>): TrustedPublisherRule {
  const aud = audiences(claims);
  const hits = rules.filter((r) => r.issuer === claims.iss && aud.includes(r.audience) && claimsMatch(r, claims));
  // The message names nothing configured: a caller learns no repository, tenant or rule.
  if (hits.length === 0) throw new IdentityError('no_match', 'no trusted publisher matches this identity token');
  if (hits.length > 1) throw new IdentityError('no_match', 'the identity token matches more than one trusted publisher; make the rules’ claims exclusive');
  return hits[0]!;
}

/** A CI identity token → the publisher it proves to be, after checking signature, expiry and claims. */
export async function verifyPublisherToken(
  keys: IssuerKeys,
  rules: readonly TrustedPublisherRule[],
  token: string,
): Promise<{ rule: TrustedPublisherRule; claims: Record<string, unknown> }> {
  const iss = issuerOf(token);
  if (iss === undefined || !rules.some((r) => r.issuer === iss)) throw new IdentityError('unknown_issuer', 'no trusted publisher matches this identity token');
  const claims = await verifyIssuerJwt(keys, token, iss);
  return { rule: matchPublisher(rules, claims), claims };
}
