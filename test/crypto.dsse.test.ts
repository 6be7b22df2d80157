import { createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CryptoError } from '../src/crypto/errors';
import { pae, signEnvelope, verifyEnvelope, type Envelope, type KeyInfo, type TrustResolver } from '../src/crypto/dsse';
import { KeyStore, type KeySigner } from '../src/crypto/keys';

// PAE rebuilt by hand from the DSSE spec, independent of src/crypto/dsse.ts.
function handPae(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type, 'utf8')} ${type} ${body.length} `, 'utf8'), body]);
}

// Verify a DSSE signature with plain node:crypto and a PEM exported from the JWK.
function independentVerify(alg: 'ES256' | 'EdDSA', publicJwk: Record<string, unknown>, env: Envelope, sigIndex = 0): boolean {
  const pem = createPublicKey({ key: publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  const key = createPublicKey(pem);
  const message = handPae(env.payloadType, Buffer.from(env.payload, 'base64'));
  const sig = Buffer.from(env.signatures[sigIndex]!.sig, 'base64');
  return alg === 'ES256' ? nodeVerify('sha256', message, key, sig) /* DER is node's default */ : nodeVerify(null, message, key, sig);
}

function trustOnly(...signers: KeySigner[]): TrustResolver {
  const m = new Map<string, KeyInfo>(signers.map((s) => [s.keyid, { alg: s.alg, publicJwk: s.publicJwk }]));
  return (kid) => m.get(kid);
}

let dir: string;
const signers: Record<'ES256' | 'EdDSA', KeySigner> = {} as never;
let other: KeySigner;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stella-dsse-'));
  const ks = await KeyStore.open(join(dir, 'a'));
  const es = await ks.generate({ alg: 'ES256' });
  const ed = await ks.generate({ alg: 'EdDSA' });
  signers.ES256 = await ks.signer(es.kid);
  signers.EdDSA = await ks.signer(ed.kid);
  const ks2 = await KeyStore.open(join(dir, 'b'));
  other = await ks2.signer((await ks2.generate({ alg: 'ES256' })).kid);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('PAE', () => {
  it('matches the DSSE spec example', () => {
    const out = pae('http://example.com/HelloWorld', new TextEncoder().encode('hello world'));
    expect(Buffer.from(out).toString('utf8')).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  });

  it('uses byte lengths, not character lengths', () => {
    const body = Buffer.from('héllo ✓', 'utf8');
    expect(Buffer.from(pae('t/é', body)).equals(handPae('t/é', body))).toBe(true);
    expect(Buffer.from(pae('t/é', body)).toString('utf8')).toBe(`DSSEv1 4 t/é ${body.length} héllo ✓`);
  });
});

describe.each(['ES256', 'EdDSA'] as const)('DSSE with %s', (alg) => {
  const payloadType = 'application/vnd.in-toto+json';
  const payload = new TextEncoder().encode('{"hello":"wörld"}');

  it('produces a signature that verifies independently with node:crypto', async () => {
    const s = signers[alg];
    const env = await signEnvelope(payloadType, payload, [s]);
    expect(env.payloadType).toBe(payloadType);
    expect(Buffer.from(env.payload, 'base64').equals(Buffer.from(payload))).toBe(true);
    expect(env.signatures).toHaveLength(1);
    expect(env.signatures[0]!.keyid).toBe(s.keyid);
    const sig = Buffer.from(env.signatures[0]!.sig, 'base64');
    if (alg === 'ES256') {
      // ASN.1 DER SEQUENCE of two INTEGERs, not JOSE's fixed 64-byte r||s.
      expect(sig[0]).toBe(0x30);
      expect(sig[1]).toBe(sig.length - 2);
    } else {
      expect(sig.length).toBe(64);
    }
    expect(independentVerify(alg, s.publicJwk as Record<string, unknown>, env)).toBe(true);

    const res = verifyEnvelope(env, trustOnly(s));
    expect(res.ok).toBe(true);
    expect(res.payloadType).toBe(payloadType);
    expect(Buffer.from(res.payload).equals(Buffer.from(payload))).toBe(true);
    expect(res.signatures).toEqual([{ keyid: s.keyid, valid: true, trusted: true, reason: 'key within validity window' }]);
  });

  it('accepts an envelope signed by hand with node:crypto (interop direction)', () => {
    const s = signers[alg];
    const message = handPae('text/plain', Buffer.from('hand made'));
    const sig = alg === 'ES256' ? nodeSign('sha256', message, s.privateKey) : nodeSign(null, message, s.privateKey);
    const env: Envelope = {
      payloadType: 'text/plain',
      payload: Buffer.from('hand made').toString('base64'),
      signatures: [{ keyid: s.keyid, sig: sig.toString('base64') }],
    };
    expect(verifyEnvelope(env, trustOnly(s)).ok).toBe(true);
  });

  it('rejects a tampered payload', async () => {
    const s = signers[alg];
    const env = await signEnvelope(payloadType, payload, [s]);
    const bad = { ...env, payload: Buffer.from('{"hello":"world"}').toString('base64') };
    const res = verifyEnvelope(bad, trustOnly(s));
    expect(res.ok).toBe(false);
    expect(res.signatures[0]).toMatchObject({ valid: false, reason: 'signature does not verify' });
    expect(independentVerify(alg, s.publicJwk as Record<string, unknown>, bad)).toBe(false);
  });

  it('rejects a tampered payloadType (PAE binds it)', async () => {
    const s = signers[alg];
    const env = await signEnvelope(payloadType, payload, [s]);
    const res = verifyEnvelope({ ...env, payloadType: 'application/json' }, trustOnly(s));
    expect(res.ok).toBe(false);
    expect(res.signatures[0]!.valid).toBe(false);
  });

  it('rejects a tampered signature', async () => {
    const s = signers[alg];
    const env = await signEnvelope(payloadType, payload, [s]);
    const sig = Buffer.from(env.signatures[0]!.sig, 'base64');
    sig[sig.length - 1]! ^= 0x01;
    const res = verifyEnvelope({ ...env, signatures: [{ keyid: s.keyid, sig: sig.toString('base64') }] }, trustOnly(s));
    expect(res.ok).toBe(false);
    expect(res.signatures[0]!.valid).toBe(false);
  });

  it('reports a signature by an unknown key as untrusted', async () => {
    const env = await signEnvelope(payloadType, payload, [other]);
    const res = verifyEnvelope(env, trustOnly(signers[alg]));
    expect(res.ok).toBe(false);
    expect(res.signatures).toEqual([{ keyid: other.keyid, valid: false, trusted: false, reason: 'unknown key' }]);
  });
});

describe('DSSE envelope handling', () => {
  it('is ok when one of several signatures is valid and trusted, and reports each', async () => {
    const env = await signEnvelope('text/plain', new Uint8Array([1, 2, 3]), [signers.ES256, other, signers.EdDSA]);
    const res = verifyEnvelope(env, trustOnly(signers.EdDSA));
    expect(res.ok).toBe(true);
    expect(res.signatures.map((s) => [s.valid, s.trusted])).toEqual([
      [false, false],
      [false, false],
      [true, true],
    ]);
    expect(independentVerify('ES256', signers.ES256.publicJwk as Record<string, unknown>, env, 0)).toBe(true);
    expect(independentVerify('EdDSA', signers.EdDSA.publicJwk as Record<string, unknown>, env, 2)).toBe(true);
  });

  it('refuses a key whose type does not match the declared alg', async () => {
    const env = await signEnvelope('text/plain', new Uint8Array([1]), [signers.ES256]);
    const lie: TrustResolver = () => ({ alg: 'EdDSA', publicJwk: signers.ES256.publicJwk });
    const res = verifyEnvelope(env, lie);
    expect(res.ok).toBe(false);
    expect(res.signatures[0]!.reason).toMatch(/unusable key/);
  });

  it('marks a valid signature untrusted outside the key window', async () => {
    const env = await signEnvelope('text/plain', new Uint8Array([1]), [signers.EdDSA]);
    const windowed: TrustResolver = () => ({
      alg: 'EdDSA',
      publicJwk: signers.EdDSA.publicJwk,
      notBefore: '2020-01-01T00:00:00.000Z',
      notAfter: '2021-01-01T00:00:00.000Z',
      status: 'retired',
    });
    expect(verifyEnvelope(env, windowed, new Date('2020-06-01T00:00:00Z')).ok).toBe(true);
    const late = verifyEnvelope(env, windowed, new Date('2021-06-01T00:00:00Z'));
    expect(late.ok).toBe(false);
    expect(late.signatures[0]).toMatchObject({ valid: true, trusted: false });
    expect(late.signatures[0]!.reason).toMatch(/after key notAfter/);
  });

  it('accepts URL-safe base64 as DSSE allows', async () => {
    const payload = new Uint8Array([0xfb, 0xff, 0xfe, 0x3e]);
    const env = await signEnvelope('bin', payload, [signers.EdDSA]);
    const urlSafe = { ...env, payload: Buffer.from(payload).toString('base64url') };
    expect(urlSafe.payload).toMatch(/[-_]/);
    const res = verifyEnvelope(urlSafe, trustOnly(signers.EdDSA));
    expect(res.ok).toBe(true);
    expect(Array.from(res.payload)).toEqual(Array.from(payload));
  });

  it('throws BAD_INPUT on structurally malformed envelopes', () => {
    const t = trustOnly(signers.EdDSA);
    for (const bad of [null, 'not json', '{}', { payloadType: 'x', payload: '%%%', signatures: [] }, { payloadType: 'x', payload: '', signatures: {} }]) {
      expect(() => verifyEnvelope(bad, t)).toThrow(CryptoError);
    }
  });

  it('requires at least one signer', async () => {
    await expect(signEnvelope('x', new Uint8Array(), [])).rejects.toThrow(/at least one signer/);
  });

  it('round-trips arbitrary payloads and types, verified independently (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 40, unit: 'grapheme' }),
        fc.uint8Array({ maxLength: 256 }),
        fc.constantFrom('ES256', 'EdDSA'),
        async (type, body, alg) => {
          const s = signers[alg as 'ES256' | 'EdDSA'];
          const env = await signEnvelope(type, body, [s]);
          expect(independentVerify(alg as 'ES256' | 'EdDSA', s.publicJwk as Record<string, unknown>, env)).toBe(true);
          const res = verifyEnvelope(JSON.parse(JSON.stringify(env)), trustOnly(s));
          expect(res.ok).toBe(true);
          expect(res.payloadType).toBe(type);
          expect(Buffer.from(res.payload).equals(Buffer.from(body))).toBe(true);
        },
      ),
      { numRuns: 30 },
    );
  });
});
