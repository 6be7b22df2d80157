import { CompactSign, exportJWK, generateKeyPair, type JWK, type KeyInput } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { canonicalJson } from '../src/lib/canonical';
import {
  ANCHOR_TYP,
  AnchorError,
  anchorHash,
  decodeAnchorUnverified,
  exportAnchor,
  signAnchor,
  verifyAnchor,
  verifyAnchorChain,
  verifyExportedAnchor,
  type AnchorPayload,
  type AnchorSigner,
  type ChainVerifyOptions,
  type ExportedAnchor,
} from '../src/merkle/anchor';
import { leafHash } from '../src/merkle/hash';
import { encodeLeaf } from '../src/merkle/leaf';
import { MemorySubtreeSource, consistencyProofFromSource, inclusionProofFromSource, rootFromSource } from '../src/merkle/source';

const CHAIN = 'tenant-acme/evidence';
const SIZES = [3, 10, 10, 17, 40];

interface Keys {
  signer: AnchorSigner;
  publicKey: KeyInput;
  jwk: JWK;
}

async function makeKey(alg: 'ES256' | 'EdDSA', kid: string): Promise<Keys> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { signer: { key: privateKey, kid }, publicKey, jwk: { ...(await exportJWK(publicKey)), kid } };
}

function leafBytes(i: number): Buffer {
  return encodeLeaf({
    id: `sha256:${i.toString(16).padStart(64, '0')}`,
    kind: 'sbom',
    subjects: [`img-${i % 7}`],
    tenant: 'acme',
    time: new Date(Date.UTC(2024, 0, 1, 0, 0, i)),
  });
}

let es: Keys;
let ed: Keys;
let log: MemorySubtreeSource;
let chain: string[]; // ES256 for seq 0..2, EdDSA for 3..4 (a key rotation)

const resolver = (kid: string): KeyInput | undefined => (kid === es.signer.kid ? es.publicKey : kid === ed.signer.kid ? ed.publicKey : undefined);

function opts(extra: Partial<ChainVerifyOptions> = {}): ChainVerifyOptions {
  return {
    keyResolver: resolver,
    recomputeRoot: (n) => rootFromSource(log, n),
    consistency: (m, n) => consistencyProofFromSource(log, m, n),
    ...extra,
  };
}

function signerFor(seq: number): AnchorSigner {
  return seq < 3 ? es.signer : ed.signer;
}

/** Re-sign an anchor with some fields changed: what an attacker holding the key could do. */
async function resign(jws: string, change: Partial<AnchorPayload>, signer?: AnchorSigner): Promise<string> {
  const p = { ...(decodeAnchorUnverified(jws) as AnchorPayload), ...change };
  return signAnchor({ ...p, createdAt: p.createdAt }, signer ?? signerFor(p.seq)).catch(async (e) => {
    if (!(e instanceof AnchorError)) throw e;
    // signAnchor refuses to build some broken anchors (e.g. genesis with a link); sign raw.
    const s = signer ?? signerFor(p.seq);
    return new CompactSign(Buffer.from(canonicalJson(p)))
      .setProtectedHeader({ alg: s === es.signer ? 'ES256' : 'EdDSA', kid: s.kid, typ: ANCHOR_TYP })
      .sign(s.key);
  });
}

/** Re-link anchors[from..] after a replacement, so only the intended break remains. */
async function relink(anchors: string[], from: number): Promise<string[]> {
  const out = [...anchors];
  for (let i = from; i < out.length; i++) out[i] = await resign(out[i]!, { prevAnchorHash: anchorHash(out[i - 1]!) });
  return out;
}

beforeAll(async () => {
  es = await makeKey('ES256', 'anchor-es256-1');
  ed = await makeKey('EdDSA', 'anchor-ed25519-2');
  log = new MemorySubtreeSource();
  for (let i = 0; i < 40; i++) log.append(leafHash(leafBytes(i)));
  chain = [];
  for (let seq = 0; seq < SIZES.length; seq++) {
    chain.push(
      await signAnchor(
        {
          chainId: CHAIN,
          seq,
          logSize: SIZES[seq]!,
          rootHash: await rootFromSource(log, SIZES[seq]!),
          prevAnchorHash: seq === 0 ? null : anchorHash(chain[seq - 1]!),
          createdAt: new Date(Date.UTC(2024, 0, 1, seq)),
        },
        signerFor(seq),
      ),
    );
  }
});

describe('signAnchor / verifyAnchor', () => {
  it('produces a compact JWS over the canonical payload with alg from the key', async () => {
    const a = await verifyAnchor(chain[0]!, resolver);
    expect(a.alg).toBe('ES256');
    expect(a.payload).toEqual({
      v: 1,
      chainId: CHAIN,
      seq: 0,
      logSize: 3,
      rootHash: (await rootFromSource(log, 3)).toString('hex'),
      prevAnchorHash: null,
      createdAt: '2024-01-01T00:00:00.000Z',
      kid: 'anchor-es256-1',
    });
    expect(a.hash).toBe(anchorHash(chain[0]!));
    expect(anchorHash(chain[0]!)).toMatch(/^[0-9a-f]{64}$/);
    expect((await verifyAnchor(chain[3]!, resolver)).alg).toBe('EdDSA');
  });

  it('works with JWK and KeyObject keys too', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const kp = generateKeyPairSync('ed25519');
    const jws = await signAnchor(
      { chainId: 'c', seq: 0, logSize: 0, rootHash: await rootFromSource(log, 0), prevAnchorHash: null },
      { key: kp.privateKey, kid: 'ko' },
    );
    const pubJwk = kp.publicKey.export({ format: 'jwk' }) as JWK;
    expect((await verifyAnchor(jws, () => pubJwk)).payload.logSize).toBe(0);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jws2 = await signAnchor(
      { chainId: 'c', seq: 0, logSize: 0, rootHash: await rootFromSource(log, 0), prevAnchorHash: null },
      { key: ec.privateKey.export({ format: 'jwk' }) as JWK, kid: 'jwk' },
    );
    expect((await verifyAnchor(jws2, () => ec.publicKey)).alg).toBe('ES256');
    expect((await verifyAnchor(jws, () => kp.publicKey)).alg).toBe('EdDSA');
  });

  it('rejects bad inputs when signing', async () => {
    const base = { chainId: CHAIN, seq: 0, logSize: 1, rootHash: Buffer.alloc(32), prevAnchorHash: null };
    await expect(signAnchor({ ...base, prevAnchorHash: 'a'.repeat(64) }, es.signer)).rejects.toThrow(/seq is 0/);
    await expect(signAnchor({ ...base, seq: 1 }, es.signer)).rejects.toThrow(/seq is 0/);
    await expect(signAnchor({ ...base, rootHash: Buffer.alloc(31) }, es.signer)).rejects.toThrow(/32 bytes/);
    await expect(signAnchor({ ...base, rootHash: 'XYZ' }, es.signer)).rejects.toThrow(/rootHash/);
    await expect(signAnchor({ ...base, logSize: -1 }, es.signer)).rejects.toThrow(/logSize/);
    await expect(signAnchor({ ...base, createdAt: 'soon' }, es.signer)).rejects.toThrow(/createdAt/);
    await expect(signAnchor(base, { key: new Uint8Array(32), kid: 'hmac' })).rejects.toThrow(/symmetric/);
    const rsa = await generateKeyPair('RS256');
    await expect(signAnchor(base, { key: rsa.privateKey, kid: 'rsa' })).rejects.toThrow(/P-256|Ed25519/);
  });

  it('rejects unknown keys, wrong keys, bad typ, and non-canonical payloads', async () => {
    await expect(verifyAnchor(chain[0]!, () => undefined)).rejects.toMatchObject({ reason: 'key' });
    await expect(verifyAnchor(chain[0]!, () => ed.publicKey)).rejects.toMatchObject({ reason: 'key' });
    const other = await makeKey('ES256', es.signer.kid);
    await expect(verifyAnchor(chain[0]!, () => other.publicKey)).rejects.toMatchObject({ reason: 'signature' });
    await expect(verifyAnchor('a.b', resolver)).rejects.toMatchObject({ reason: 'format' });

    const p = decodeAnchorUnverified(chain[0]!) as AnchorPayload;
    const sign = (payload: string, header: Record<string, unknown>) =>
      new CompactSign(Buffer.from(payload)).setProtectedHeader({ alg: 'ES256', kid: es.signer.kid, typ: ANCHOR_TYP, ...header }).sign(es.signer.key);
    await expect(verifyAnchor(await sign(JSON.stringify(p, null, 1), {}), resolver)).rejects.toThrow(/canonical/);
    await expect(verifyAnchor(await sign(canonicalJson(p), { typ: 'JWT' }), resolver)).rejects.toThrow(/typ/);
    await expect(verifyAnchor(await sign(canonicalJson({ ...p, extra: 1 }), {}), resolver)).rejects.toThrow(/fields/);
    await expect(verifyAnchor(await sign(canonicalJson({ ...p, kid: 'someone-else' }), {}), resolver)).rejects.toThrow(/kid/);
    expect((await verifyAnchor(await sign(canonicalJson(p), {}), resolver)).payload).toEqual(p);
  });
});

describe('verifyAnchorChain', () => {
  it('accepts the intact chain (with a key rotation) and checks every anchor', async () => {
    const r = await verifyAnchorChain(chain, opts());
    expect(r).toMatchObject({ ok: true, checked: 5 });
    expect(r.firstBreak).toBeUndefined();
    expect(r.head?.payload.seq).toBe(4);
    // Without the log, signatures, links, sequence and size monotonicity are still checked.
    expect((await verifyAnchorChain(chain, { keyResolver: resolver })).ok).toBe(true);
    expect(await verifyAnchorChain([], opts())).toEqual({ ok: true, checked: 0, head: undefined });
  });

  it('names a forged signature (payload edited without re-signing)', async () => {
    const [h, , s] = chain[2]!.split('.');
    const p = decodeAnchorUnverified(chain[2]!) as AnchorPayload;
    const forged = `${h}.${Buffer.from(canonicalJson({ ...p, logSize: 11 })).toString('base64url')}.${s}`;
    const r = await verifyAnchorChain([...chain.slice(0, 2), forged, ...chain.slice(3)], opts());
    expect(r).toMatchObject({ ok: false, checked: 2, firstBreak: { index: 2, seq: 2, reason: 'signature', anchorId: anchorHash(forged) } });
    expect(r.head?.payload.seq).toBe(1);

    const sig = chain[1]!.slice(0, -4) + (chain[1]!.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await verifyAnchorChain([chain[0]!, sig, ...chain.slice(2)], opts())).firstBreak).toMatchObject({ index: 1, reason: 'signature' });

    const unknown = await makeKey('ES256', 'rogue');
    const rogue = await resign(chain[1]!, {}, unknown.signer);
    expect((await verifyAnchorChain([chain[0]!, rogue], opts())).firstBreak).toMatchObject({
      index: 1,
      reason: 'signature',
      detail: expect.stringMatching(/unknown kid/),
    });
    expect((await verifyAnchorChain(['garbage'], opts())).firstBreak).toMatchObject({ index: 0, seq: null, reason: 'signature' });
  });

  it('names a tampered root (validly signed, correctly linked, wrong tree)', async () => {
    const wrongRoot = (await rootFromSource(log, 16)).toString('hex');
    const tampered = await relink([...chain.slice(0, 3), await resign(chain[3]!, { rootHash: wrongRoot }), chain[4]!], 4);
    const r = await verifyAnchorChain(tampered, opts());
    expect(r).toMatchObject({ ok: false, checked: 3, firstBreak: { index: 3, seq: 3, reason: 'root-mismatch' } });
    // Without access to the log, the consistency proof from the previous anchor exposes it.
    const r2 = await verifyAnchorChain(tampered, opts({ recomputeRoot: undefined }));
    expect(r2.firstBreak).toMatchObject({ index: 3, reason: 'consistency' });
  });

  it('names a broken link', async () => {
    const bad = await resign(chain[2]!, { prevAnchorHash: anchorHash(chain[0]!) });
    const r = await verifyAnchorChain(await relink([...chain.slice(0, 2), bad, ...chain.slice(3)], 3), opts());
    expect(r).toMatchObject({ ok: false, checked: 2, firstBreak: { index: 2, seq: 2, reason: 'link' } });
    const genesisWithLink = await resign(chain[0]!, { prevAnchorHash: 'f'.repeat(64) });
    expect((await verifyAnchorChain([genesisWithLink], opts())).firstBreak).toMatchObject({ index: 0, reason: 'link' });
    const otherChain = await resign(chain[1]!, { chainId: 'someone/else' });
    expect((await verifyAnchorChain([chain[0]!, otherChain], opts())).firstBreak).toMatchObject({ index: 1, reason: 'link' });
  });

  it('names sequence breaks: edited seq, deletion, reordering, missing genesis', async () => {
    const skipped = await resign(chain[2]!, { seq: 3 });
    expect((await verifyAnchorChain([...chain.slice(0, 2), skipped], opts())).firstBreak).toMatchObject({ index: 2, seq: 3, reason: 'sequence' });
    expect((await verifyAnchorChain([chain[0]!, chain[1]!, chain[3]!, chain[4]!], opts())).firstBreak).toMatchObject({ index: 2, seq: 3, reason: 'sequence' });
    expect((await verifyAnchorChain([chain[0]!, chain[2]!, chain[1]!], opts())).firstBreak).toMatchObject({ index: 1, seq: 2, reason: 'sequence' });
    expect((await verifyAnchorChain(chain.slice(1), opts())).firstBreak).toMatchObject({ index: 0, seq: 1, reason: 'sequence' });
    expect((await verifyAnchorChain([chain[0]!, chain[0]!], opts())).firstBreak).toMatchObject({ index: 1, reason: 'sequence' });
  });

  it('reports only the FIRST of several breaks', async () => {
    const bad3 = await resign(chain[3]!, { seq: 7 });
    const [h, , s] = chain[1]!.split('.');
    const forged1 = `${h}.${Buffer.from(canonicalJson({ ...(decodeAnchorUnverified(chain[1]!) as AnchorPayload), logSize: 9 })).toString('base64url')}.${s}`;
    const r = await verifyAnchorChain([chain[0]!, forged1, chain[2]!, bad3], opts());
    expect(r.firstBreak).toMatchObject({ index: 1, reason: 'signature' });
    expect(r.checked).toBe(1);
  });

  it('detects a rewritten log and a shrinking log', async () => {
    const rewritten = new MemorySubtreeSource();
    for (let i = 0; i < 40; i++) rewritten.append(leafHash(i === 12 ? leafBytes(999) : leafBytes(i)));
    const r = await verifyAnchorChain(
      chain,
      opts({ recomputeRoot: (n) => rootFromSource(rewritten, n), consistency: (m, n) => consistencyProofFromSource(rewritten, m, n) }),
    );
    // Leaf 12 is first covered by the anchor of size 17 (seq 3).
    expect(r.firstBreak).toMatchObject({ index: 3, seq: 3, reason: 'root-mismatch' });

    const truncated = new MemorySubtreeSource();
    for (let i = 0; i < 20; i++) truncated.append(leafHash(leafBytes(i)));
    const r2 = await verifyAnchorChain(chain, opts({ recomputeRoot: (n) => rootFromSource(truncated, n) }));
    expect(r2.firstBreak).toMatchObject({ index: 4, reason: 'root-mismatch', detail: expect.stringMatching(/could not recompute/) });

    const shrink = await relink([...chain.slice(0, 4), await resign(chain[4]!, { logSize: 9, rootHash: (await rootFromSource(log, 9)).toString('hex') })], 4);
    expect((await verifyAnchorChain(shrink, opts())).firstBreak).toMatchObject({ index: 4, reason: 'consistency', detail: expect.stringMatching(/shrank/) });
    const sameSizeNewRoot = await relink([...chain.slice(0, 2), await resign(chain[2]!, { rootHash: (await rootFromSource(log, 11)).toString('hex') })], 3);
    expect((await verifyAnchorChain(sameSizeNewRoot, { keyResolver: resolver })).firstBreak).toMatchObject({ index: 2, reason: 'consistency' });
  });

  it('verifies a suffix of a chain from a trusted previous anchor', async () => {
    const previous = await verifyAnchor(chain[1]!, resolver);
    expect((await verifyAnchorChain(chain.slice(2), opts({ previous }))).ok).toBe(true);
    expect((await verifyAnchorChain(chain.slice(3), opts({ previous }))).firstBreak).toMatchObject({ index: 0, reason: 'sequence' });
  });
});

describe('offline export', () => {
  let exported: ExportedAnchor;
  const LEAF = 13;

  afterEach(() => {
    vi.unstubAllGlobals();
  });

  beforeAll(async () => {
    exported = await exportAnchor({
      anchor: chain[3]!,
      publicJwk: ed.jwk,
      inclusion: { leafIndex: LEAF, leafHash: leafHash(leafBytes(LEAF)), proof: await inclusionProofFromSource(log, LEAF, 17) },
    });
  });

  it('round-trips through JSON and verifies with no network or database', async () => {
    vi.stubGlobal('fetch', () => {
      throw new Error('network used');
    });
    const json = JSON.stringify(exported);
    const r = await verifyExportedAnchor(json, { leaf: leafBytes(LEAF) });
    expect(r).toMatchObject({ ok: true, keySource: 'embedded', inclusion: 'verified', leafIndex: LEAF, anchorHash: anchorHash(chain[3]!) });
    expect(r.ok && r.payload.logSize).toBe(17);
    expect(await verifyExportedAnchor(json)).toMatchObject({ ok: true, inclusion: 'verified' });
    expect(await verifyExportedAnchor(json, { leafHash: leafHash(leafBytes(LEAF)) })).toMatchObject({ ok: true });
  });

  it('supports pinning the key by JWK or thumbprint', async () => {
    expect(await verifyExportedAnchor(exported, { pinnedJwk: ed.jwk })).toMatchObject({ ok: true, keySource: 'pinned' });
    expect(await verifyExportedAnchor(exported, { pinnedThumbprint: exported.keyThumbprint })).toMatchObject({ ok: true, keySource: 'pinned' });
    expect(await verifyExportedAnchor(exported, { pinnedJwk: es.jwk })).toMatchObject({ ok: false, reason: 'key' });
    expect(await verifyExportedAnchor(exported, { pinnedThumbprint: 'x' })).toMatchObject({ ok: false, reason: 'key' });
    // Swapping in an attacker's key and re-signing is caught by the pin, not by the bundle.
    const rogue = await makeKey('EdDSA', ed.signer.kid);
    const forged = await exportAnchor({ anchor: await resign(chain[3]!, {}, rogue.signer), publicJwk: rogue.jwk });
    expect(await verifyExportedAnchor(forged)).toMatchObject({ ok: true, keySource: 'embedded' });
    expect(await verifyExportedAnchor(forged, { pinnedJwk: ed.jwk })).toMatchObject({ ok: false, reason: 'key' });
  });

  it('never embeds private key material', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const privJwk = await exportJWK(privateKey);
    const signer = { key: privateKey, kid: 'k' };
    const jws = await signAnchor({ chainId: 'c', seq: 0, logSize: 0, rootHash: await rootFromSource(log, 0), prevAnchorHash: null }, signer);
    const e = await exportAnchor({ anchor: jws, publicJwk: privJwk });
    expect(e.publicJwk).not.toHaveProperty('d');
    expect((await verifyExportedAnchor(e)).ok).toBe(true);
    expect(await verifyExportedAnchor({ ...e, publicJwk: privJwk })).toMatchObject({ ok: false, reason: 'key' });
  });

  it('detects tampering with every part of the bundle', async () => {
    const p = exported.payload;
    const flipHex = (h: string) => (h[0] === '0' ? '1' : '0') + h.slice(1);
    const cases: [string, unknown, Record<string, unknown>, string][] = [
      ['payload copy', { ...exported, payload: { ...p, logSize: 18 } }, {}, 'format'],
      ['anchorHash', { ...exported, anchorHash: flipHex(exported.anchorHash) }, {}, 'format'],
      ['thumbprint', { ...exported, keyThumbprint: 'abc' }, {}, 'format'],
      ['format', { ...exported, format: 'v0' }, {}, 'format'],
      ['signature', { ...exported, anchor: exported.anchor.slice(0, -3) + (exported.anchor.endsWith('AAA') ? 'BBB' : 'AAA') }, {}, 'signature'],
      ['embedded key', { ...exported, publicJwk: es.jwk }, {}, 'format'],
      [
        'proof',
        { ...exported, inclusion: { ...exported.inclusion!, proof: [flipHex(exported.inclusion!.proof[0]!), ...exported.inclusion!.proof.slice(1)] } },
        {},
        'inclusion',
      ],
      ['leaf index', { ...exported, inclusion: { ...exported.inclusion!, leafIndex: LEAF + 1 } }, {}, 'inclusion'],
      ['tree size', { ...exported, inclusion: { ...exported.inclusion!, treeSize: 40 } }, {}, 'inclusion'],
      ['wrong leaf', exported, { leaf: leafBytes(LEAF + 1) }, 'inclusion'],
      ['no proof', { ...exported, inclusion: undefined }, { leaf: leafBytes(LEAF) }, 'inclusion'],
      ['not json', '{', {}, 'format'],
    ];
    for (const [what, doc, o, reason] of cases) {
      const r = await verifyExportedAnchor(typeof doc === 'string' ? doc : JSON.stringify(doc), o);
      expect([what, r.ok, !r.ok && r.reason]).toEqual([what, false, reason]);
    }
  });

  it('refuses to export a bundle that would not verify', async () => {
    await expect(exportAnchor({ anchor: chain[3]!, publicJwk: es.jwk })).rejects.toBeInstanceOf(AnchorError);
    const proof = await inclusionProofFromSource(log, LEAF, 17);
    const byLeaf = await exportAnchor({ anchor: chain[3]!, publicJwk: ed.jwk, inclusion: { leafIndex: LEAF, leaf: leafBytes(LEAF), proof } });
    expect(byLeaf.inclusion).toEqual(exported.inclusion);
    await expect(exportAnchor({ anchor: chain[3]!, publicJwk: ed.jwk, inclusion: { leafIndex: LEAF, proof } })).rejects.toThrow(/leafHash or leaf/);
    await expect(
      exportAnchor({ anchor: chain[3]!, publicJwk: ed.jwk, inclusion: { leafIndex: 2, leafHash: leafHash(leafBytes(LEAF)), proof: [] } }),
    ).rejects.toThrow(/does not verify/);
  });
});
