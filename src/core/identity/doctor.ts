/** `stella doctor --check check.identity.issuers`: can stella read each trusted issuer's discovery document and keys? */
import type { DoctorCheck } from '../doctor';
import { loadIdentityConfig } from './config';

const TIMEOUT_MS = 5000;

/** Discovery → jwks_uri → at least one key; the problem in one line otherwise. */
async function probeIssuer(issuer: string): Promise<string | null> {
  try {
    const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (!res.ok) return `discovery answered HTTP ${res.status}`;
    const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    if (doc.issuer !== issuer) return `discovery names issuer ${String(doc.issuer)}`;
    if (typeof doc.jwks_uri !== 'string') return 'discovery has no jwks_uri';
    const jwks = await fetch(doc.jwks_uri, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    const keys = jwks.ok ? ((await jwks.json()) as { keys?: unknown[] }).keys : undefined;
    return Array.isArray(keys) && keys.length > 0 ? null : `JWKS at ${doc.jwks_uri} has no keys`;
  } catch (e) {
    return `unreachable (${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message})`;
  }
}

export const identityDoctorChecks: DoctorCheck[] = [
  {
    id: 'check.identity.issuers',
    categories: ['identity'],
    description: 'Trusted OIDC issuers (STELLA_IDENTITY_FILE): discovery document and signing keys reachable',
    scope: 'admin',
    async run({ ctx }) {
      if (!ctx.cfg.identity.file) return { status: 'SKIP', message: 'no identity file (STELLA_IDENTITY_FILE): stella trusts no OIDC issuer' };
      const cfg = loadIdentityConfig(ctx.cfg.identity.file);
      const issuers = [...new Set([...cfg.issuers.map((i) => i.issuer), ...cfg.trustedPublishers.map((p) => p.issuer)])];
      const problems = (await Promise.all(issuers.map(async (i) => [i, await probeIssuer(i)] as const))).filter(([, p]) => p !== null);
      if (!problems.length) return { status: 'PASS', message: `${issuers.length} issuer(s) reachable, keys published`, details: { issuers } };
      return {
        status: 'FAIL',
        message: problems.map(([i, p]) => `${i}: ${p}`).join('; '),
        remedy: 'check the issuer URLs in the identity file and that the API host can reach them (HTTPS egress)',
        details: { issuers },
      };
    },
  },
];
