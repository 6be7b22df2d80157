import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore, type KeySigner } from '../src/crypto/keys';
import { exportRootPack, rootPackJwks } from '../src/crypto/rootpack';
import { TokenError, bearerToken, mintToken, verifyToken, type TokenErrorKind } from '../src/crypto/tokens';

let dir: string;
let ks: KeyStore;
let jwks: { keys: import('jose').JWK[] };
let attacker: KeySigner;

async function expectKind(p: Promise<unknown>, kind: TokenErrorKind) {
  await expect(p).rejects.toSatisfy((e: unknown) => e instanceof TokenError && e.kind === kind);
}

const req = { sub: 'user:alice', tenant: 'acme', scopes: ['evidence:read', 'promotion:write'] as const, ttlSeconds: 300 };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stella-tokens-'));
  ks = await KeyStore.open(join(dir, 'ks'));
  await ks.generate({ alg: 'ES256' });
  jwks = await ks.publicJwks();
  const evil = await KeyStore.open(join(dir, 'evil'));
  attacker = await evil.signer((await evil.generate({ alg: 'ES256' })).kid);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('API tokens', () => {
  it('mints a token with stella claims and verifies it', async () => {
    const token = await mintToken(ks, { ...req, scopes: [...req.scopes] });
    const header = decodeProtectedHeader(token);
    expect(header).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: (await ks.active()).kid });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: 'stella', aud: 'stella-api', sub: 'user:alice', tenant: 'acme', scope: 'evidence:read promotion:write' });
    expect(claims.exp! - claims.iat!).toBe(300);
    const v = await verifyToken(token, jwks);
    expect(v).toMatchObject({ sub: 'user:alice', tenant: 'acme', scopes: ['evidence:read', 'promotion:write'], kid: header.kid });
  });

  it('works with an EdDSA key passed directly, and after rotation (retired key still listed)', async () => {
    const ks2 = await KeyStore.open(join(dir, 'ks2'));
    await ks2.generate({ alg: 'EdDSA' });
    const token = await mintToken(await ks2.signer(), { ...req, scopes: ['admin'] });
    await ks2.rotate();
    const v = await verifyToken(token, await ks2.publicJwks());
    expect(v.scopes).toEqual(['admin']);
    // The same check through a RootPack.
    expect((await verifyToken(token, rootPackJwks(await exportRootPack(ks2)))).sub).toBe('user:alice');
  });

  it('rejects an expired token as "expired"', async () => {
    const token = await mintToken(ks, { ...req, scopes: ['replay:read'], ttlSeconds: 60 }, { now: new Date(Date.now() - 3600_000) });
    await expectKind(verifyToken(token, jwks), 'expired');
    // Still fine at a time inside its life.
    await expect(verifyToken(token, jwks, { now: new Date(Date.now() - 3590_000) })).resolves.toMatchObject({ scopes: ['replay:read'] });
  });

  it('rejects a token signed by another key as "invalid_signature", even when it claims our kid', async () => {
    const forged = await mintToken(attacker, { ...req, scopes: ['admin'] });
    await expectKind(verifyToken(forged, jwks), 'invalid_signature');
    const ourKid = (await ks.active()).kid;
    const spoofed = await new SignJWT({ tenant: 'acme', scope: 'admin' })
      .setProtectedHeader({ alg: 'ES256', kid: ourKid, typ: 'at+jwt' })
      .setIssuer('stella')
      .setAudience('stella-api')
      .setSubject('user:mallory')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(attacker.privateKey);
    await expectKind(verifyToken(spoofed, jwks), 'invalid_signature');
  });

  it('rejects a wrong audience, issuer or typ as "invalid_claims"', async () => {
    const signer = await ks.signer();
    const build = (aud: string, iss: string, typ: string) =>
      new SignJWT({ tenant: 'acme', scope: 'admin' })
        .setProtectedHeader({ alg: signer.alg, kid: signer.keyid, typ })
        .setIssuer(iss)
        .setAudience(aud)
        .setSubject('user:alice')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(signer.privateKey);
    await expectKind(verifyToken(await build('other-api', 'stella', 'at+jwt'), jwks), 'invalid_claims');
    await expectKind(verifyToken(await build('stella-api', 'someone-else', 'at+jwt'), jwks), 'invalid_claims');
    await expectKind(verifyToken(await build('stella-api', 'stella', 'JWT'), jwks), 'invalid_claims');
    await expect(verifyToken(await build('stella-api', 'stella', 'at+jwt'), jwks)).resolves.toMatchObject({ scopes: ['admin'] });
  });

  it('distinguishes missing and malformed tokens', async () => {
    await expectKind(verifyToken(undefined, jwks), 'missing');
    await expectKind(verifyToken('', jwks), 'missing');
    await expectKind(verifyToken('abc', jwks), 'malformed');
    await expectKind(verifyToken('a.b.c', jwks), 'malformed');
    expect(() => bearerToken(undefined)).toThrow(expect.objectContaining({ kind: 'missing' }));
    expect(() => bearerToken('Basic dXNlcjpwYXNz')).toThrow(expect.objectContaining({ kind: 'malformed' }));
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
  });

  it('rejects alg=none and algorithms outside ES256/EdDSA', async () => {
    const none = new UnsecuredJWT({ tenant: 'acme', scope: 'admin' })
      .setIssuer('stella')
      .setAudience('stella-api')
      .setSubject('x')
      .setIssuedAt()
      .setExpirationTime('5m')
      .encode();
    await expectKind(verifyToken(none, jwks), 'malformed'); // no kid
    const [, body] = none.split('.');
    for (const [alg, sig] of [
      ['none', ''],
      ['HS256', 'AAAA'],
      ['ES384', 'AAAA'],
    ]) {
      const header = Buffer.from(JSON.stringify({ alg, kid: jwks.keys[0]!.kid, typ: 'at+jwt' })).toString('base64url');
      await expectKind(verifyToken(`${header}.${body}.${sig}`, jwks), 'invalid_signature');
    }
  });

  it('drops unknown scopes on verify and refuses them on mint', async () => {
    const signer = await ks.signer();
    const t = await new SignJWT({ tenant: 'acme', scope: 'evidence:read superuser' })
      .setProtectedHeader({ alg: signer.alg, kid: signer.keyid, typ: 'at+jwt' })
      .setIssuer('stella')
      .setAudience('stella-api')
      .setSubject('svc')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(signer.privateKey);
    expect((await verifyToken(t, jwks)).scopes).toEqual(['evidence:read']);
    await expect(mintToken(ks, { ...req, scopes: ['superuser' as never] })).rejects.toThrow(/unknown scopes/);
    await expect(mintToken(ks, { ...req, scopes: ['admin'], ttlSeconds: 0 })).rejects.toThrow(/ttlSeconds/);
  });
});
