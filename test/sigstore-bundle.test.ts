/**
 * Sigstore bundle v0.3 and keyid-less DSSE signatures, pure (no servers):
 * - a stella-made bundle verifies with sigstore-js (@sigstore/verify, the independent verifier);
 *   a tampered one does not;
 * - stella's verifier: keyed bundles by hint or by trying the trusted keys (cosign's hint is not a
 *   stella kid), bounded; certificate bundles need a trusted root and say so;
 * - malformed bundles are refused naming what is wrong;
 * - cosign's registry layouts (the .att manifest and the bundle referrer) round-trip.
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { describe, expect, it } from 'vitest';
import {
  COSIGN_SIGNATURE_ANNOTATION,
  cosignAttestationLayer,
  cosignAttestationManifest,
  cosignAttestationTag,
  DSSE_ENVELOPE_LAYER,
  parseCosignAttestationManifest,
  parseSigstoreBundleReferrer,
  sigstoreBundleReferrer,
} from '../src/crypto/cosign';
import { combineTrust, type Envelope, type KeyInfo, MAX_KEYLESS_CANDIDATES, rawSign, signEnvelope, verifyEnvelope } from '../src/crypto/dsse';
import { INTOTO_PAYLOAD_TYPE, makeStatement, serializeStatement, subject } from '../src/crypto/intoto';
import { parseSigstoreBundle, SIGSTORE_BUNDLE_V03, sigstoreBundleOf, verifySigstoreBundle } from '../src/crypto/sigstore-bundle';

interface Key {
  kid: string;
  info: KeyInfo;
  publicKey: KeyObject;
  privateKey: KeyObject;
}
function key(): Key {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as { crv: string; kty: string; x: string; y: string };
  const members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  const kid = createHash('sha256').update(JSON.stringify(members)).digest('base64url');
  return { kid, info: { alg: 'ES256', publicJwk: members, status: 'active' }, publicKey, privateKey };
}
const DIGEST = `sha256:${createHash('sha256').update('app').digest('hex')}`;
const statement = makeStatement([subject('registry.example/app', DIGEST)], 'https://example.com/ci/v1', { ok: true });

async function envelope(k: Key, keyid = k.kid): Promise<Envelope> {
  return signEnvelope(INTOTO_PAYLOAD_TYPE, serializeStatement(statement), [{ keyid, alg: 'ES256', sign: async (d) => rawSign('ES256', k.privateKey, d) }]);
}
const EMPTY_ROOT = TrustedRoot.fromJSON({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1' });

describe('stella-made Sigstore bundle, verified by sigstore-js (@sigstore/verify)', () => {
  it('verifies with the signer key found by its hint; a tampered payload or another key does not', async () => {
    const k = key();
    const json = sigstoreBundleOf(await envelope(k), k.kid);
    expect(json).toMatchObject({ mediaType: SIGSTORE_BUNDLE_V03, verificationMaterial: { publicKey: { hint: k.kid }, tlogEntries: [] } });
    const keys = { [k.kid]: k.publicKey };
    const material = toTrustMaterial(EMPTY_ROOT, (hint) => {
      const pub = keys[hint];
      if (!pub) throw new Error(`no key for hint ${hint}`);
      return { publicKey: pub, validFor: () => true };
    });
    const verifier = new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
    const signer = verifier.verify(toSignedEntity(bundleFromJSON(json)));
    expect(signer.key.export({ format: 'der', type: 'spki' }).equals(k.publicKey.export({ format: 'der', type: 'spki' }))).toBe(true);

    const tampered = structuredClone(json);
    tampered.dsseEnvelope.payload = Buffer.from(JSON.stringify({ ...statement, predicate: { ok: false } })).toString('base64');
    expect(() => verifier.verify(toSignedEntity(bundleFromJSON(tampered)))).toThrow(/signature verification failed/);
    const other = key();
    keys[k.kid] = other.publicKey;
    expect(() => verifier.verify(toSignedEntity(bundleFromJSON(json)))).toThrow(/signature verification failed/);
  });
});

describe("stella's Sigstore bundle verification", () => {
  it('keyed: by the hint when it names a trusted key, else by trying the trusted keys (cosign hints are not kids); unknown keys fail with the reason', async () => {
    const signerKey = key();
    const others = [key(), key()];
    const trust = combineTrust(new Map([...others, signerKey].map((k) => [k.kid, k.info] as const)));
    const env = await envelope(signerKey, '');
    const byHint = verifySigstoreBundle(sigstoreBundleOf(env, signerKey.kid), { trust });
    expect(byHint).toMatchObject({ ok: true, kind: 'public-key', tlog: 'absent' });
    expect(byHint.verification!.signatures[0]).toMatchObject({ keyid: signerKey.kid, valid: true, trusted: true });
    expect(byHint.verification!.signatures[0]!.matchedBy).toBeUndefined();

    const cosignHint = createHash('sha256')
      .update(signerKey.publicKey.export({ format: 'der', type: 'spki' }))
      .digest('base64');
    const byCandidates = verifySigstoreBundle(sigstoreBundleOf(env, cosignHint), { trust });
    expect(byCandidates.ok).toBe(true);
    expect(byCandidates.verification!.signatures[0]).toMatchObject({ keyid: signerKey.kid, matchedBy: 'candidate' });

    const unknown = verifySigstoreBundle(sigstoreBundleOf(await envelope(key(), ''), cosignHint), { trust });
    expect(unknown.ok).toBe(false);
    expect(unknown.reason).toMatch(/no valid signature by a trusted key \(signature has no keyid and verifies under none of the 3 trusted keys\)/);
  });

  it('keyid-less signatures: the candidates are bounded, a revoked key never matches, and a resolver without candidates refuses', async () => {
    const keys = Array.from({ length: MAX_KEYLESS_CANDIDATES + 1 }, key);
    const last = keys[keys.length - 1]!;
    const map = new Map(keys.map((k) => [k.kid, k.info] as const));
    const beyond = verifyEnvelope(await envelope(last, ''), combineTrust(map));
    expect(beyond.ok).toBe(false);
    expect(beyond.signatures[0]!.reason).toMatch(
      new RegExp(`verifies under none of the ${MAX_KEYLESS_CANDIDATES} trusted keys \\(only the first ${MAX_KEYLESS_CANDIDATES} tried\\)`),
    );
    const within = verifyEnvelope(await envelope(keys[3]!, ''), combineTrust(map));
    expect(within.ok).toBe(true);
    expect(within.signatures[0]!.keyid).toBe(keys[3]!.kid);

    const k = key();
    const revoked = verifyEnvelope(await envelope(k, ''), combineTrust(new Map([[k.kid, { ...k.info, status: 'revoked' as const }]])));
    expect(revoked.ok).toBe(false);
    expect(revoked.signatures[0]).toMatchObject({ keyid: k.kid, valid: true, trusted: false, reason: 'key revoked' });
    const plain = verifyEnvelope(await envelope(k, ''), (kid) => (kid === k.kid ? k.info : undefined));
    expect(plain.signatures[0]!.reason).toBe('signature has no keyid and no trusted keys to try');
  });

  it('certificate bundles: without a trusted root the reason says what to configure; with one, an untrusted certificate fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cert-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=ci',
      ],
      { stdio: 'ignore' },
    );
    const der = Buffer.from(readFileSync(join(dir, 'c.pem'), 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const k = key();
    const keyed = sigstoreBundleOf(await envelope(k, ''), k.kid);
    const certBundle = {
      ...keyed,
      verificationMaterial: { certificate: { rawBytes: der.toString('base64') }, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } },
    };
    expect(parseSigstoreBundle(certBundle).key).toEqual({ kind: 'certificate' });
    expect(() => verifySigstoreBundle(certBundle, { trust: combineTrust() })).toThrow(
      /signed with a certificate \(keyless\).*set STELLA_SIGSTORE_TRUSTED_ROOT/,
    );
    const r = verifySigstoreBundle(certBundle, {
      trust: combineTrust(),
      trustedRoot: { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1' },
    });
    expect(r).toMatchObject({ ok: false, kind: 'certificate' });
    expect(r.reason).toMatch(/TIMESTAMP_ERROR|CERTIFICATE_ERROR/);
  });

  it('malformed bundles are refused naming what is wrong', async () => {
    const k = key();
    const good = sigstoreBundleOf(await envelope(k), k.kid);
    const cases: [unknown, RegExp][] = [
      ['{not json', /not a JSON object/],
      [
        { ...good, mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1' },
        /mediaType is .* expected application\/vnd.dev.sigstore.bundle.v0.3\+json/,
      ],
      [{ ...good, dsseEnvelope: undefined }, /Sigstore bundle is invalid/],
      [
        { ...good, dsseEnvelope: undefined, messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: 'AA==' }, signature: 'AA==' } },
        /message signature, not a DSSE attestation/,
      ],
      [
        { ...good, dsseEnvelope: { ...good.dsseEnvelope, signatures: [...good.dsseEnvelope.signatures, ...good.dsseEnvelope.signatures] } },
        /Sigstore bundle is invalid: invalid bundle \(content.dsseEnvelope.signatures\)/,
      ],
      [{ ...good, verificationMaterial: { tlogEntries: [] } }, /Sigstore bundle is invalid/],
    ];
    for (const [input, why] of cases) expect(() => parseSigstoreBundle(input), String(why)).toThrow(why);
  });
});

describe("cosign's registry layouts", () => {
  it('the .att manifest: DSSE layers annotated as cosign does, duplicates dropped, deterministic; parsed back', async () => {
    const k = key();
    const a = cosignAttestationLayer(Buffer.from(JSON.stringify(await envelope(k, ''))), 'https://slsa.dev/provenance/v1');
    const b = cosignAttestationLayer(Buffer.from(JSON.stringify(await envelope(k, ''))), 'https://cyclonedx.org/bom');
    expect(a.descriptor).toMatchObject({
      mediaType: DSSE_ENVELOPE_LAYER,
      annotations: { [COSIGN_SIGNATURE_ANNOTATION]: '', predicateType: 'https://slsa.dev/provenance/v1' },
    });
    const m1 = cosignAttestationManifest([a.descriptor, b.descriptor, a.descriptor]);
    expect(m1.manifest.equals(cosignAttestationManifest([a.descriptor, b.descriptor]).manifest)).toBe(true);
    expect(JSON.parse(m1.config.bytes.toString()).rootfs.diff_ids).toEqual([a.descriptor.digest, b.descriptor.digest]);
    expect(parseCosignAttestationManifest(m1.manifest)).toEqual([
      { digest: a.descriptor.digest, size: a.bytes.length, predicateType: 'https://slsa.dev/provenance/v1' },
      { digest: b.descriptor.digest, size: b.bytes.length, predicateType: 'https://cyclonedx.org/bom' },
    ]);
    expect(cosignAttestationTag(DIGEST)).toBe(`${DIGEST.replace(':', '-')}.att`);
    expect(() => cosignAttestationTag('latest')).toThrow(/not a sha256 digest/);
    expect(() => cosignAttestationLayer(Buffer.from('{}'), 'x')).toThrow(/payloadType/);
    expect(() => parseCosignAttestationManifest('{"schemaVersion":1}')).toThrow(/schemaVersion is 1, expected 2/);
  });

  it('the OCI 1.1 referrer of a Sigstore bundle: artifactType, empty config, subject; parsed back; other artifacts are not bundles', async () => {
    const k = key();
    const bundle = Buffer.from(JSON.stringify(sigstoreBundleOf(await envelope(k), k.kid)));
    const subjectDesc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: DIGEST, size: 1234 };
    const r = sigstoreBundleReferrer(bundle, subjectDesc, 'https://slsa.dev/provenance/v1');
    const m = JSON.parse(r.manifest.toString());
    expect(m).toMatchObject({
      artifactType: SIGSTORE_BUNDLE_V03,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2 },
      layers: [{ mediaType: SIGSTORE_BUNDLE_V03, digest: r.layer.descriptor.digest, size: bundle.length }],
      subject: subjectDesc,
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1' },
    });
    expect(parseSigstoreBundleReferrer(r.manifest)).toEqual({ layer: r.layer.descriptor, subject: DIGEST, predicateType: 'https://slsa.dev/provenance/v1' });
    expect(parseSigstoreBundleReferrer(JSON.stringify({ ...m, artifactType: 'application/spdx+json', layers: [] }))).toBeNull();
  });
});
