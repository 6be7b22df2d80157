import { KeyStore } from '../crypto/keys';

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

/** Public keys API tokens verify against: every api-token key, retired ones included until their tokens expire. */
export async function tokenJwks(ks: KeyStore) {
  return { keys: (await ks.list()).filter((k) => k.purpose === TOKEN_PURPOSE).map((k) => k.publicJwk) };
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
