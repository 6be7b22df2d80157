import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/lib/canonical';
import { sha256Digest } from '../src/lib/hash';
import { CryptoError } from '../src/crypto/errors';
import type { StellaCode } from '../src/lib/errors';
import { signEnvelope, verifyEnvelope } from '../src/crypto/dsse';
import { KeyStore } from '../src/crypto/keys';
import {
  exportRootPack,
  importRootPack,
  loadRootPack,
  readRootPackFile,
  rootPackJwks,
  rootPackResolver,
  trustAt,
  writeRootPackFile,
  type RootPack,
} from '../src/crypto/rootpack';

let root: string;
let n = 0;
const freshDir = () => join(root, `ks${n++}`);

/** A settable clock so rotation windows are exact. */
function clock(start: string) {
  let t = new Date(start);
  return { now: () => new Date(t), set: (s: string) => (t = new Date(s)) };
}

async function expectCode(p: Promise<unknown>, category: StellaCode) {
  await expect(p).rejects.toSatisfy((e: unknown) => e instanceof CryptoError && e.category === category);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'stella-keys-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('KeyStore', () => {
  it.each(['ES256', 'EdDSA'] as const)('generates a %s key with an RFC 7638 kid, stored 0600', async (alg) => {
    const dir = freshDir();
    const ks = await KeyStore.open(dir);
    const k = await ks.generate({ alg, purpose: 'attestation' });
    expect(k.kid).toBe(await calculateJwkThumbprint(k.publicJwk, 'sha256'));
    expect(k).toMatchObject({ alg, purpose: 'attestation', status: 'active', notAfter: null });
    expect(k.notBefore).toBe(k.createdAt);
    expect(k.publicJwk).not.toHaveProperty('d');
    const st = await stat(join(dir, 'keys', `${k.kid}.json`));
    expect(st.mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    // No temp files left behind by the atomic write.
    expect(await readdir(join(dir, 'keys'))).toEqual([`${k.kid}.json`]);
    const jwks = await ks.publicJwks();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kid: k.kid, alg, use: 'sig' });
    expect(JSON.stringify(jwks)).not.toMatch(/"d"/);
  });

  it('rotates: new active key, old one retired with notAfter = now and still listed', async () => {
    const c = clock('2024-01-01T00:00:00.000Z');
    const ks = await KeyStore.open(freshDir(), { now: c.now });
    const first = await ks.generate({ alg: 'ES256' });
    c.set('2024-06-01T00:00:00.000Z');
    const { active, retired } = await ks.rotate();
    expect(active.kid).not.toBe(first.kid);
    expect(active).toMatchObject({ alg: 'ES256', status: 'active', notBefore: '2024-06-01T00:00:00.000Z' });
    expect(retired).toEqual([expect.objectContaining({ kid: first.kid, status: 'retired', notAfter: '2024-06-01T00:00:00.000Z' })]);
    expect((await ks.active()).kid).toBe(active.kid);
    expect((await ks.list()).map((k) => [k.kid, k.status])).toEqual([
      [first.kid, 'retired'],
      [active.kid, 'active'],
    ]);
    expect((await ks.signer()).keyid).toBe(active.kid);
    await expectCode(ks.signer(first.kid), 'CONFLICT');
    expect((await ks.publicJwks()).keys.map((k) => k.kid).sort()).toEqual([first.kid, active.kid].sort());
  });

  it('rotation only retires keys of the same purpose and can switch alg', async () => {
    const ks = await KeyStore.open(freshDir());
    const att = await ks.generate({ alg: 'ES256', purpose: 'attestation' });
    const tok = await ks.generate({ alg: 'EdDSA', purpose: 'token' });
    const { active, retired } = await ks.rotate({ purpose: 'token', alg: 'ES256' });
    expect(retired.map((k) => k.kid)).toEqual([tok.kid]);
    expect(active).toMatchObject({ purpose: 'token', alg: 'ES256' });
    expect((await ks.active('attestation')).kid).toBe(att.kid);
    expect((await ks.active('token')).kid).toBe(active.kid);
    await expectCode(ks.active('nope'), 'NOT_FOUND');
  });

  it('serialises concurrent mutations through the lock', async () => {
    const dir = freshDir();
    const ks = await KeyStore.open(dir);
    const keys = await Promise.all([ks.generate({ alg: 'EdDSA' }), ks.generate({ alg: 'EdDSA' }), ks.rotate({ alg: 'EdDSA' })]);
    expect(new Set(keys.map((k) => ('kid' in k ? k.kid : k.active.kid))).size).toBe(3);
    expect(await readdir(dir)).not.toContain('.lock');
  });

  it('breaks a lock left by a dead process', async () => {
    const dir = freshDir();
    const ks = await KeyStore.open(dir, { lockTimeoutMs: 2000 });
    await writeFile(join(dir, '.lock'), '2147483646'); // no such pid
    await expect(ks.generate({ alg: 'EdDSA' })).resolves.toMatchObject({ status: 'active' });
  });

  it('refuses a tampered key file', async () => {
    const dir = freshDir();
    const ks = await KeyStore.open(dir);
    const a = await ks.generate({ alg: 'EdDSA' });
    const b = await ks.generate({ alg: 'EdDSA' });
    // Put b's key material under a's name.
    await writeFile(join(dir, 'keys', `${a.kid}.json`), (await readFile(join(dir, 'keys', `${b.kid}.json`), 'utf8')).replaceAll(b.kid, a.kid));
    await expectCode(ks.list(), 'INTEGRITY');
    await expectCode(ks.signer(a.kid), 'INTEGRITY');
  });

  it('has no active key in an empty store', async () => {
    const ks = await KeyStore.open(freshDir());
    await expectCode(ks.active(), 'NOT_FOUND');
    await expectCode(ks.signer(), 'NOT_FOUND');
    await expectCode(ks.signer('../../etc/passwd'), 'BAD_INPUT');
  });
});

describe('RootPack and trust over rotation', () => {
  const T0 = '2024-01-01T00:00:00.000Z';
  const T_SIGN = new Date('2024-03-01T00:00:00.000Z');
  const T_ROTATE = '2024-06-01T00:00:00.000Z';
  const T_LATER = new Date('2024-09-01T00:00:00.000Z');
  let ks: KeyStore;
  let oldKid: string;
  let newKid: string;
  let pack: RootPack;
  let envOld: Awaited<ReturnType<typeof signEnvelope>>;

  beforeAll(async () => {
    const c = clock(T0);
    ks = await KeyStore.open(freshDir(), { now: c.now });
    oldKid = (await ks.generate({ alg: 'ES256', purpose: 'attestation' })).kid;
    envOld = await signEnvelope('text/plain', new TextEncoder().encode('signed before rotation'), [await ks.signer()]);
    c.set(T_ROTATE);
    newKid = (await ks.rotate()).active.kid;
    pack = await exportRootPack(ks, { now: new Date(T_ROTATE) });
  });

  it('exports public keys with windows and a digest over canonical content', async () => {
    expect(pack.version).toBe(1);
    expect(pack.keys.map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());
    const old = pack.keys.find((k) => k.kid === oldKid)!;
    expect(old).toMatchObject({ alg: 'ES256', notBefore: T0, notAfter: T_ROTATE, status: 'retired', purposes: ['attestation'] });
    expect(JSON.stringify(pack)).not.toMatch(/"d":/);
    expect(pack.digest).toBe(sha256Digest(canonicalJson({ version: 1, createdAt: pack.createdAt, keys: pack.keys })));
    expect(await loadRootPack(JSON.stringify(pack))).toEqual(pack);
  });

  it('a signature made before rotation verifies for its signing time', () => {
    const res = verifyEnvelope(envOld, rootPackResolver(pack), T_SIGN);
    expect(res.ok).toBe(true);
    expect(trustAt(pack, oldKid, T_SIGN)).toMatchObject({ trusted: true });
    // Exactly at the rotation instant the old key is still inside its window.
    expect(trustAt(pack, oldKid, new Date(T_ROTATE)).trusted).toBe(true);
  });

  it('the retired key is not trusted for times after its notAfter', () => {
    const res = verifyEnvelope(envOld, rootPackResolver(pack), T_LATER);
    expect(res.ok).toBe(false);
    expect(res.signatures[0]).toMatchObject({ keyid: oldKid, valid: true, trusted: false });
    expect(trustAt(pack, oldKid, T_LATER)).toMatchObject({ trusted: false });
    expect(trustAt(pack, oldKid, new Date('2023-12-31T23:59:59.999Z')).reason).toMatch(/before key notBefore/);
  });

  it('the new key is trusted from its notBefore onwards only', () => {
    expect(trustAt(pack, newKid, T_LATER).trusted).toBe(true);
    expect(trustAt(pack, newKid, T_SIGN).trusted).toBe(false);
  });

  it('an unknown key is never trusted', async () => {
    const stranger = await KeyStore.open(freshDir());
    const s = await stranger.signer((await stranger.generate({ alg: 'ES256' })).kid);
    const env = await signEnvelope('text/plain', new Uint8Array([1]), [s]);
    for (const at of [new Date(0), T_SIGN, T_LATER, new Date('2100-01-01T00:00:00Z')]) {
      expect(trustAt(pack, s.keyid, at)).toEqual({ trusted: false, reason: 'unknown key' });
      expect(verifyEnvelope(env, rootPackResolver(pack), at).ok).toBe(false);
    }
  });

  it('filters by purpose when asked', () => {
    expect(trustAt(pack, oldKid, T_SIGN, 'attestation').trusted).toBe(true);
    expect(trustAt(pack, oldKid, T_SIGN, 'token').trusted).toBe(false);
    expect(verifyEnvelope(envOld, rootPackResolver(pack, { purpose: 'token' }), T_SIGN).ok).toBe(false);
  });

  it('refuses a pack whose digest does not match its content', async () => {
    // Attempt to extend the retired key's window without re-sealing.
    const tampered = JSON.parse(JSON.stringify(pack)) as RootPack;
    tampered.keys.find((k) => k.kid === oldKid)!.notAfter = null;
    tampered.keys.find((k) => k.kid === oldKid)!.status = 'active';
    await expectCode(loadRootPack(JSON.stringify(tampered)), 'INTEGRITY');
    await expectCode(loadRootPack({ ...pack, digest: sha256Digest('x') }), 'INTEGRITY');
  });

  it('refuses structurally bad packs even when re-sealed', async () => {
    const reseal = (p: RootPack) => ({ ...p, digest: sha256Digest(canonicalJson({ version: p.version, createdAt: p.createdAt, keys: p.keys })) });
    const withPrivate = JSON.parse(JSON.stringify(pack)) as RootPack;
    (withPrivate.keys[0]!.publicJwk as Record<string, unknown>).d = 'AAAA';
    await expectCode(loadRootPack(reseal(withPrivate)), 'BAD_INPUT');

    const relabelled = JSON.parse(JSON.stringify(pack)) as RootPack;
    relabelled.keys[0]!.publicJwk = relabelled.keys[1]!.publicJwk;
    await expectCode(loadRootPack(reseal(relabelled)), 'BAD_INPUT');

    const dup = JSON.parse(JSON.stringify(pack)) as RootPack;
    dup.keys.push(dup.keys[0]!);
    await expectCode(loadRootPack(reseal(dup)), 'BAD_INPUT');

    await expectCode(loadRootPack('{nope'), 'BAD_INPUT');
    await expectCode(loadRootPack({ ...pack, extra: 1 }), 'BAD_INPUT');
  });

  it('merges packs: adds new keys, and only ever narrows trust in known ones', async () => {
    // An older export, taken before rotation, where the old key was still active.
    const c = clock(T0);
    const ks2 = await KeyStore.open(freshDir(), { now: c.now });
    const k1 = (await ks2.generate({ alg: 'EdDSA', purpose: 'attestation' })).kid;
    const before = await exportRootPack(ks2, { now: new Date(T0) });
    c.set(T_ROTATE);
    const k2 = (await ks2.rotate()).active.kid;
    const after = await exportRootPack(ks2, { now: new Date(T_ROTATE) });

    const first = await importRootPack(undefined, before);
    expect(first.added).toEqual([k1]);
    const second = await importRootPack(first.pack, JSON.stringify(after));
    expect(second.added).toEqual([k2]);
    expect(second.updated).toEqual([k1]);
    expect(trustAt(second.pack, k1, T_LATER).trusted).toBe(false);

    // Replaying the stale pack must not un-retire k1.
    const replay = await importRootPack(second.pack, before);
    expect(replay.added).toEqual([]);
    expect(replay.updated).toEqual([]);
    expect(replay.pack.keys.find((k) => k.kid === k1)).toMatchObject({ status: 'retired', notAfter: T_ROTATE });
    // The merged pack is itself a valid, sealed pack.
    expect(await loadRootPack(JSON.stringify(replay.pack))).toEqual(replay.pack);

    // Unrelated keys are unioned.
    const merged = await importRootPack(second.pack, pack);
    expect(merged.pack.keys.map((k) => k.kid).sort()).toEqual([k1, k2, oldKid, newKid].sort());
  });

  it('never trusts a revoked key, and drops it from the token JWKS', async () => {
    const revoked = JSON.parse(JSON.stringify(pack)) as RootPack;
    revoked.keys.find((k) => k.kid === newKid)!.status = 'revoked';
    const body = { version: 1 as const, createdAt: revoked.createdAt, keys: revoked.keys };
    const sealed = await loadRootPack({ ...body, digest: sha256Digest(canonicalJson(body)) });
    expect(trustAt(sealed, newKid, T_LATER)).toMatchObject({ trusted: false, reason: 'key revoked' });
    expect(rootPackJwks(sealed).keys.map((k) => k.kid)).toEqual([oldKid]);
    const merged = await importRootPack(pack, sealed);
    expect(merged.updated).toEqual([newKid]);
    expect(trustAt(merged.pack, newKid, T_LATER).trusted).toBe(false);
  });

  it('round-trips through a file', async () => {
    const p = join(root, 'rootpack.json');
    await writeRootPackFile(p, pack);
    expect(await readRootPackFile(p)).toEqual(pack);
  });
});
