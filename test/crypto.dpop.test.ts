/** RFC 9449 proof checks, the replay cache and server nonces, without servers (proofs made with jose). */
import { describe, expect, it } from 'vitest';
import { base64url, calculateJwkThumbprint, SignJWT } from 'jose';
import { accessTokenHash, createDpopProof, DpopError, DpopNonces, normalizeHtu, ReplayCache, verifyDpopProof } from '../src/crypto/dpop';
import { newDpopKey } from './support/api';

const URL_ = 'https://stella.example/replay/runs';
const check = { method: 'GET', url: URL_, iatWindowSeconds: 60 };

describe('DPoP proofs', () => {
  it('a proof verifies to its key thumbprint; htu ignores query, fragment, default port and case of scheme/host', async () => {
    const key = await newDpopKey();
    const proof = await createDpopProof(key, { method: 'get', url: 'HTTPS://Stella.Example:443/replay/runs?limit=5#x' });
    const v = await verifyDpopProof(proof, check);
    expect(v.jkt).toBe(await calculateJwkThumbprint(key.publicJwk, 'sha256'));
    expect(normalizeHtu('http://h:80/a?b')).toBe('http://h/a');
    expect(normalizeHtu('http://h:8080/a')).toBe('http://h:8080/a');
    expect(normalizeHtu('ftp://h/a')).toBeUndefined();
  });

  it('ath is base64url(SHA-256(token)) (RFC 9449 §4.2 example)', () => {
    // The RFC's access token and ath from its §7.1 example.
    expect(accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe('fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo');
  });

  it('refuses a proof that is unsigned, HMAC-signed, carries a private key, or has the wrong typ', async () => {
    const key = await newDpopKey();
    const refuse = async (proof: string, why: RegExp) => {
      const e = await verifyDpopProof(proof, check).catch((x) => x);
      expect(e).toBeInstanceOf(DpopError);
      expect(e.kind).toBe('invalid_dpop_proof');
      expect(e.message).toMatch(why);
    };
    const claims = { htm: 'GET', htu: URL_, jti: 'abcdefgh-1', iat: Math.floor(Date.now() / 1000) };
    const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk }))}.${base64url.encode(JSON.stringify(claims))}.`;
    await refuse(none, /rejected|not allowed/);
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt' }).sign(new Uint8Array(32));
    await refuse(hs, /not allowed|rejected/);
    const { exportJWK } = await import('jose');
    const priv = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.privateKey) }).sign(key.privateKey);
    await refuse(priv, /private key|rejected/);
    const typ = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT', jwk: key.publicJwk }).sign(key.privateKey);
    await refuse(typ, /rejected/);
    await refuse('not-a-jws', /compact JWS/);
  });

  it('the replay cache refuses a jti seen within its window, forgets after it, and stays bounded', () => {
    const c = new ReplayCache(10, 3);
    expect(c.add('a', 0)).toBe(true);
    expect(c.add('a', 5_000)).toBe(false);
    expect(c.add('a', 11_000)).toBe(true); // the first entry expired
    for (const j of ['b', 'c', 'd', 'e']) c.add(j, 12_000);
    expect(c.add('b', 12_500)).toBe(true); // dropped when the cache was full
  });

  it('server nonces: its own fresh nonce is valid; a forged, another server’s, or an expired one is not', async () => {
    const n = new DpopNonces(60);
    const nonce = n.issue(1_000_000);
    expect(n.valid(nonce, 1_030_000)).toBe(true);
    expect(n.valid(nonce, 1_100_000)).toBe(false);
    expect(new DpopNonces(60).valid(nonce, 1_030_000)).toBe(false);
    expect(n.valid(`${nonce.slice(0, -2)}AA`, 1_030_000)).toBe(false);
    expect(n.valid('!!', 1_030_000)).toBe(false);
    const key = await newDpopKey();
    const without = await createDpopProof(key, { method: 'GET', url: URL_ });
    const e = await verifyDpopProof(without, { ...check, nonce: (x) => n.valid(x) }).catch((x) => x);
    expect(e.kind).toBe('use_dpop_nonce');
    const withIt = await createDpopProof(key, { method: 'GET', url: URL_, nonce: n.issue() });
    await expect(verifyDpopProof(withIt, { ...check, nonce: (x) => n.valid(x) })).resolves.toMatchObject({ jti: expect.any(String) });
  });
});
