/** The identity file (STELLA_IDENTITY_FILE): which OIDC issuers stella trusts, and for what. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../../config';
import { SCOPES } from '../../crypto/tokens';
import { parseDuration } from '../../lib/format';

const TENANT = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ -');
const duration = z.string().regex(/^\d+(s|m|h|d)$/, 'expected a duration such as 10m or 1h');
const claimName = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'a claim name');

/** OIDC Discovery needs TLS; plain http is allowed for a loopback issuer (local IdPs, tests) only. */
const issuerUrl = z.url().refine((s) => {
  const u = new URL(s);
  return u.protocol === 'https:' || (u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname));
}, 'an https:// issuer URL (http:// only for a loopback issuer)');

/** Pipelines get at most these: never admin or policy:admin. */
export const PUBLISHER_SCOPES = ['evidence:read', 'evidence:write', 'promotion:read', 'promotion:write'] as const;
/** A trusted-publishing token lives minutes: long enough for one release job. */
const MAX_PUBLISHER_TTL_S = 3600;

/** Access tokens from this issuer are accepted by the API directly and exchanged by `stella auth login`. */
const TrustedIssuer = z
  .object({
    issuer: issuerUrl,
    /** The `aud` the IdP puts into access tokens meant for stella. */
    audience: z.string().min(1),
    /** The claim that names the person or service (becomes the principal's sub). */
    subjectClaim: claimName.default('sub'),
    /** Every token of this issuer acts for this tenant … */
    tenant: TENANT.optional(),
    /** … or for the tenant named by this claim (restricted to `tenants` when given). */
    tenantClaim: claimName.optional(),
    tenants: z.array(TENANT).min(1).optional(),
    /** Values of `claim` (a string, space-separated string or array) → stella scopes. */
    scopes: z
      .object({ claim: claimName.default('scope'), map: z.record(z.string().min(1), z.array(z.enum(SCOPES)).min(1)) })
      .strict()
      .refine((s) => Object.keys(s.map).length > 0, 'scopes.map maps no claim value'),
    /** Lifetime of the stella token `POST /auth/token` issues for such an access token. */
    tokenTtl: duration.default('1h'),
    /** RFC 9068: access tokens carry typ at+jwt (so an ID token cannot pass as one). */
    requireAtJwt: z.boolean().default(true),
  })
  .strict()
  .refine((i) => (i.tenant === undefined) !== (i.tenantClaim === undefined), 'exactly one of tenant or tenantClaim')
  .refine((i) => i.tenants === undefined || i.tenantClaim !== undefined, 'tenants restricts tenantClaim; it needs tenantClaim');

/** A CI job whose identity token may be exchanged for a stella token (like PyPI trusted publishing). */
const TrustedPublisher = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ -'),
    issuer: issuerUrl,
    audience: z.string().min(1),
    /** Every listed claim must equal the value (or one of the values), e.g. repository, ref, workflow. */
    claims: z
      .record(claimName, z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]))
      .refine((c) => Object.keys(c).length > 0, 'name at least one claim (e.g. repository and ref)'),
    tenant: TENANT,
    scopes: z.array(z.enum(PUBLISHER_SCOPES)).min(1),
    tokenTtl: duration.default('10m').refine((d) => parseDuration(d) <= MAX_PUBLISHER_TTL_S * 1000, 'at most 1h'),
  })
  .strict();

const IdentityFile = z
  .object({
    issuers: z.array(TrustedIssuer).default([]),
    trustedPublishers: z.array(TrustedPublisher).default([]),
  })
  .strict()
  .superRefine((f, ctx) => {
    const names = f.trustedPublishers.map((p) => p.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) ctx.addIssue({ code: 'custom', path: ['trustedPublishers'], message: `two trusted publishers are named ${dup}` });
    const iss = f.issuers.map((i) => i.issuer);
    const dupIss = iss.find((n, i) => iss.indexOf(n) !== i);
    if (dupIss) ctx.addIssue({ code: 'custom', path: ['issuers'], message: `issuer ${dupIss} is listed twice` });
  });

export type TrustedIssuerRule = z.infer<typeof TrustedIssuer>;
export type TrustedPublisherRule = z.infer<typeof TrustedPublisher>;
export type IdentityConfig = z.infer<typeof IdentityFile>;

/** Validates an identity document (parsed JSON/YAML); a bad one is a ConfigError naming the field. */
export function parseIdentityConfig(doc: unknown, source = 'identity file'): IdentityConfig {
  const r = IdentityFile.safeParse(doc ?? {});
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new ConfigError('STELLA_IDENTITY_FILE', `${source}: ${i.path.map(String).join('.') || '(top level)'}: ${i.message}`);
  }
  return r.data;
}

/** Reads and validates the identity file (JSON or YAML) at start, so a mistake stops the API with one line. */
export function loadIdentityConfig(file: string): IdentityConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('STELLA_IDENTITY_FILE', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError('STELLA_IDENTITY_FILE', `${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'} (${(e as Error).message.split('\n')[0]})`);
  }
  return parseIdentityConfig(doc, file);
}

export const ttlSeconds = (d: string) => Math.floor(parseDuration(d) / 1000);
