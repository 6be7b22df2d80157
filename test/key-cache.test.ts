import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../src/crypto/keys';
import { TokenError, mintToken, verifyToken } from '../src/crypto/tokens';

// Keys are cached (parsed key files per key-directory change, imported keys per key set): the
// caches must never hide a rotation or a revocation, also one made by another process.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stella-keycache-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const req = { sub: 'user:alice', tenant: 'acme', scopes: ['evidence:read' as const], ttlSeconds: 300 };

describe('key caches', () => {
  it('a rotation by another KeyStore on the same directory is seen at once; the retired key no longer signs', async () => {
    const api = await KeyStore.open(join(dir, 'a'));
    const other = await KeyStore.open(join(dir, 'a'));
    const first = await api.generate({ alg: 'ES256' });
    expect(await api.signer()).toBe(await api.signer()); // imported once
    expect((await api.signer()).keyid).toBe(first.kid);

    const r = await other.rotate({});
    expect((await api.active()).kid).toBe(r.active.kid);
    expect((await api.signer()).keyid).toBe(r.active.kid);
    await expect(api.signer(first.kid)).rejects.toMatchObject({ code: 'KEY_NOT_ACTIVE' });
    expect((await api.list()).map((k) => [k.kid, k.status])).toEqual([
      [first.kid, 'retired'],
      [r.active.kid, 'active'],
    ]);
  });

  it('token verification follows the key set: a key dropped from it (revoked) stops verifying', async () => {
    const ks = await KeyStore.open(join(dir, 'b'));
    const k1 = await ks.generate({ alg: 'ES256' });
    const k2 = await ks.generate({ alg: 'EdDSA' });
    const t1 = await mintToken(await ks.signer(k1.kid), req);
    const all = await ks.publicJwks();
    expect((await verifyToken(t1, all)).kid).toBe(k1.kid);
    expect((await verifyToken(t1, await ks.publicJwks())).kid).toBe(k1.kid); // same keys, new object
    const withoutK1 = { keys: all.keys.filter((k) => k.kid !== k1.kid) };
    await expect(verifyToken(t1, withoutK1)).rejects.toSatisfy((e: unknown) => e instanceof TokenError && e.kind === 'invalid_signature');
    const t2 = await mintToken(await ks.signer(k2.kid), req);
    expect((await verifyToken(t2, withoutK1)).kid).toBe(k2.kid);
    expect((await verifyToken(t1, all)).kid).toBe(k1.kid);
  });
});
