/** The locker's key store: opening it with the keys stella needs, token JWKs, and audited key changes. */
import { KeyStore, type KeyRecord } from '../crypto/keys';
import type { SigAlg } from '../crypto/dsse';
import { MAX_TTL_SECONDS } from '../crypto/tokens';
import type { AppContext } from './context';
import { audit } from './audit';
import { badInput } from '../lib/errors';

/** Checkpoints are signed notes, whose signature type is Ed25519: a checkpoint key of another algorithm is refused. */
function checkCheckpointAlg(req: { alg?: SigAlg; purpose?: KeyPurpose }): void {
  if (req.purpose === 'checkpoint' && req.alg && req.alg !== 'EdDSA') throw badInput('checkpoint keys are Ed25519: use --alg EdDSA');
}

export const SIGNING_PURPOSE = 'signing';
export const TOKEN_PURPOSE = 'api-token';

/** Opens the key store and makes sure a signing key and an API-token key exist. */
export async function openKeyStore(dir: string): Promise<KeyStore> {
  const ks = await KeyStore.open(dir);
  const have = await ks.list();
  const active = (p: string) => have.some((k) => k.purpose === p && k.status === 'active');
  if (!active(SIGNING_PURPOSE)) await ks.generate({ alg: 'ES256', purpose: SIGNING_PURPOSE });
  if (!active(TOKEN_PURPOSE)) await ks.generate({ alg: 'ES256', purpose: TOKEN_PURPOSE });
  return ks;
}

/**
 * Public keys API tokens verify against: the active api-token keys, and retired ones only until the
 * last token they signed has expired (MAX_TTL_SECONDS after retirement). Revoked keys are left out
 * by the API (src/api/auth.ts, from src/core/identity/revocation.ts).
 */
export async function tokenJwks(ks: KeyStore, now = Date.now()) {
  const live = (k: KeyRecord) => k.status === 'active' || (k.notAfter !== null && Date.parse(k.notAfter) + MAX_TTL_SECONDS * 1000 > now);
  return { keys: (await ks.list()).filter((k) => k.purpose === TOKEN_PURPOSE && live(k)).map((k) => k.publicJwk) };
}

/**
 * Token verification keys, re-read from the key store at most every `ttlMs`: reading and
 * parsing the key directory on every request dominated API latency.
 */
export function cachedTokenJwks(ks: KeyStore, ttlMs = 30_000) {
  let cached: { at: number; jwks: Awaited<ReturnType<typeof tokenJwks>> } | null = null;
  return async () => {
    if (!cached || Date.now() - cached.at > ttlMs) cached = { at: Date.now(), jwks: await tokenJwks(ks) };
    return cached.jwks;
  };
}

/** `checkpoint`: the Ed25519 keys C2SP checkpoints are signed with (src/core/anchoring/checkpoint.ts). */
export type KeyPurpose = typeof SIGNING_PURPOSE | typeof TOKEN_PURPOSE | 'checkpoint';

/** `stella keys generate`: a new active key (others of the purpose stay active). Audited. */
export async function generateKey(
  ctx: Pick<AppContext, 'db' | 'keys'>,
  tenant: string,
  req: { alg?: SigAlg; purpose?: KeyPurpose; actor: string },
): Promise<KeyRecord> {
  checkCheckpointAlg(req);
  const k = await ctx.keys.generate({ alg: req.alg ?? 'ES256', purpose: req.purpose ?? SIGNING_PURPOSE });
  await audit(ctx.db, { tenant, actor: req.actor, action: 'keys.generate', target: k.kid, details: { alg: k.alg, purpose: k.purpose } });
  return k;
}

/** `stella keys rotate`: a new active key; the previous active one of the purpose is retired. Audited. */
export async function rotateKey(
  ctx: Pick<AppContext, 'db' | 'keys'>,
  tenant: string,
  req: { alg?: SigAlg; purpose?: KeyPurpose; actor: string },
): Promise<{ active: KeyRecord; retired: KeyRecord[] }> {
  checkCheckpointAlg(req);
  const r = await ctx.keys.rotate({ purpose: req.purpose ?? SIGNING_PURPOSE, ...(req.alg ? { alg: req.alg } : {}) });
  await audit(ctx.db, {
    tenant,
    actor: req.actor,
    action: 'keys.rotate',
    target: r.active.kid,
    details: { purpose: r.active.purpose, alg: r.active.alg, retired: r.retired.map((k) => k.kid) },
  });
  return r;
}
