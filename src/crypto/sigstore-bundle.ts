/**
 * Sigstore bundles v0.3 (`application/vnd.dev.sigstore.bundle.v0.3+json`) carrying a DSSE
 * envelope — what `cosign attest --new-bundle-format`, sigstore-js and policy-controller use.
 *
 * Two kinds of bundle:
 * - keyed (`verificationMaterial.publicKey.hint`): the signature is checked by stella's own DSSE
 *   verifier against the keys the caller trusts (RootPack, policy PEM keys); the hint is an
 *   unsigned label, so a signature is tried against the hinted key when it is trusted and
 *   otherwise against all trusted candidates (dsse.verifyEnvelope).
 * - certificate (Fulcio, "keyless"): the chain, SCTs, transparency-log entries and signature are
 *   checked by @sigstore/verify against a Sigstore trusted_root.json; without one it cannot be
 *   verified and NO_TRUSTED_ROOT says so.
 *
 * stella writes keyed bundles of its own envelopes: DSSE + publicKey hint (the signing kid), no
 * Rekor entry and no timestamp (the locker's own log and anchors are its transparency).
 */
import { createPublicKey } from 'node:crypto';
import { BUNDLE_V03_LEGACY_MEDIA_TYPE, BUNDLE_V03_MEDIA_TYPE, type Bundle, bundleFromJSON, type SerializedEnvelope } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { type Envelope, parseEnvelope, publicKeyFromJwk, type TrustResolver, type VerifyResult, verifyEnvelope } from './dsse';
import { CryptoError } from './errors';

export const SIGSTORE_BUNDLE_V03 = BUNDLE_V03_MEDIA_TYPE;
/** The OCI artifactType of a referrer holding a Sigstore bundle (cosign v2.4+ `--new-bundle-format`, policy-controller). */
export const SIGSTORE_BUNDLE_ARTIFACT_TYPE = BUNDLE_V03_MEDIA_TYPE;
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

export interface ParsedBundle {
  mediaType: string;
  /** The DSSE envelope the bundle carries, in stella's shape (base64 payload and signatures). */
  envelope: Envelope;
  /** How the signer is identified: a key hint or an X.509 certificate (chain). */
  key: { kind: 'public-key'; hint: string } | { kind: 'certificate' };
  tlogEntries: number;
  timestamps: number;
  /** The bundle as @sigstore/bundle parsed it (for @sigstore/verify). */
  bundle: Bundle;
}

/** Is this JSON value (or text) a Sigstore bundle (by its mediaType)? */
export function looksLikeSigstoreBundle(input: unknown): boolean {
  const o = typeof input === 'string' || input instanceof Uint8Array ? tryJson(input) : input;
  return (
    !!o &&
    typeof o === 'object' &&
    typeof (o as { mediaType?: unknown }).mediaType === 'string' &&
    (o as { mediaType: string }).mediaType.startsWith('application/vnd.dev.sigstore.bundle')
  );
}

/** Parse and validate an untrusted Sigstore bundle v0.3 carrying a DSSE envelope. Throws MALFORMED_BUNDLE naming what is wrong. */
export function parseSigstoreBundle(input: Uint8Array | string | unknown): ParsedBundle {
  if ((typeof input === 'string' || input instanceof Uint8Array) && input.length > MAX_BUNDLE_BYTES)
    throw new CryptoError('MALFORMED_BUNDLE', `Sigstore bundle is larger than ${MAX_BUNDLE_BYTES} bytes`);
  const obj = typeof input === 'string' || input instanceof Uint8Array ? tryJson(input) : input;
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new CryptoError('MALFORMED_BUNDLE', 'Sigstore bundle is not a JSON object');
  const mediaType = (obj as { mediaType?: unknown }).mediaType;
  if (mediaType !== BUNDLE_V03_MEDIA_TYPE && mediaType !== BUNDLE_V03_LEGACY_MEDIA_TYPE)
    throw new CryptoError('MALFORMED_BUNDLE', `Sigstore bundle mediaType is ${JSON.stringify(mediaType)}, expected ${BUNDLE_V03_MEDIA_TYPE}`);
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(obj);
  } catch (e) {
    const fields = (e as { fields?: string[] }).fields;
    throw new CryptoError('MALFORMED_BUNDLE', `Sigstore bundle is invalid: ${(e as Error).message}${fields?.length ? ` (${fields.join(', ')})` : ''}`);
  }
  if (bundle.content.$case !== 'dsseEnvelope') throw new CryptoError('MALFORMED_BUNDLE', 'Sigstore bundle carries a message signature, not a DSSE attestation');
  const dsse = bundle.content.dsseEnvelope;
  let envelope: Envelope;
  try {
    envelope = parseEnvelope({
      payloadType: dsse.payloadType,
      payload: dsse.payload.toString('base64'),
      signatures: dsse.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig.toString('base64') })),
    });
  } catch (e) {
    throw new CryptoError('MALFORMED_BUNDLE', `Sigstore bundle's DSSE envelope is malformed: ${(e as Error).message}`);
  }
  if (envelope.signatures.length !== 1)
    throw new CryptoError('MALFORMED_BUNDLE', `Sigstore bundle's DSSE envelope has ${envelope.signatures.length} signatures, expected 1`);
  const vm = bundle.verificationMaterial;
  const key: ParsedBundle['key'] = vm.content.$case === 'publicKey' ? { kind: 'public-key', hint: vm.content.publicKey.hint } : { kind: 'certificate' };
  return {
    mediaType: mediaType as string,
    envelope,
    key,
    tlogEntries: vm.tlogEntries.length,
    timestamps: vm.timestampVerificationData?.rfc3161Timestamps.length ?? 0,
    bundle,
  };
}

/**
 * A DSSE envelope as a keyed Sigstore bundle v0.3: publicKey hint (the signing key's kid), no
 * transparency-log entry, no timestamp. `cosign verify-blob-attestation --new-bundle-format
 * --key … --insecure-ignore-tlog` and @sigstore/verify (with the key) verify it.
 */
export function sigstoreBundleOf(env: Envelope, keyHint: string): KeyedBundleJson {
  const e = parseEnvelope(env);
  if (e.signatures.length !== 1)
    throw new CryptoError('INVALID_ARGUMENT', `a Sigstore bundle carries exactly one signature, the envelope has ${e.signatures.length}`);
  const dsseEnvelope: SerializedEnvelope = {
    payload: e.payload,
    payloadType: e.payloadType,
    // The key is named by the hint; sigstore-go (cosign) rejects a bundle whose DSSE signature carries a keyid of its own.
    signatures: e.signatures.map((s) => ({ sig: s.sig, keyid: '' })),
  };
  const bundle: KeyedBundleJson = {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: keyHint }, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } },
    dsseEnvelope,
  };
  parseSigstoreBundle(bundle); // never hand out a bundle the reference parser refuses
  return bundle;
}

/** The JSON of a keyed DSSE bundle as stella writes it. */
export type KeyedBundleJson = {
  mediaType: string;
  verificationMaterial: { publicKey: { hint: string }; tlogEntries: []; timestampVerificationData: { rfc3161Timestamps: [] } };
  dsseEnvelope: SerializedEnvelope;
};

export interface BundleVerification {
  /** The signature verifies and its signer is trusted (keyed: a trusted key; certificate: the trusted root's CA and logs). */
  ok: boolean;
  envelope: Envelope;
  kind: 'public-key' | 'certificate';
  /** Keyed: the DSSE verification (the signer is the valid, trusted signature's keyid). */
  verification?: VerifyResult;
  /** Certificate: who the certificate names. */
  identity?: { subjectAlternativeName: string | null; issuer: string | null };
  /** Transparency-log entries: verified against the trusted root, absent, or present but not checked (no trusted root). */
  tlog: 'verified' | 'absent' | 'not-checked';
  reason: string;
}

/**
 * Verify a Sigstore bundle. `trust`: the keys a keyed bundle may be signed by. `trustedRoot`: a
 * Sigstore trusted_root.json (parsed JSON) for certificate bundles and for transparency-log entries
 * of keyed ones. `at`: the signing time the caller trusts (see dsse.verifyEnvelope).
 * Throws MALFORMED_BUNDLE for a bundle that does not parse and NO_TRUSTED_ROOT for a certificate
 * bundle without a trusted root; a signature that does not hold is reported (ok false), not thrown.
 */
export function verifySigstoreBundle(
  input: Uint8Array | string | unknown,
  opts: { trust: TrustResolver; trustedRoot?: unknown; at?: Date },
): BundleVerification {
  const p = parseSigstoreBundle(input);
  if (p.key.kind === 'certificate') return verifyCertificateBundle(p, opts.trustedRoot);
  const hint = p.key.hint;
  // The hint is unsigned: use it only to pick a trusted key for a signature without its own key id.
  const sig = p.envelope.signatures[0]!;
  const env: Envelope = sig.keyid || !hint || !opts.trust(hint) ? p.envelope : { ...p.envelope, signatures: [{ ...sig, keyid: hint }] };
  const verification = verifyEnvelope(env, opts.trust, opts.at);
  const good = verification.signatures.find((s) => s.valid && s.trusted);
  let tlog: BundleVerification['tlog'] = p.tlogEntries ? 'not-checked' : 'absent';
  let reason = good
    ? `signed by trusted key ${good.keyid}`
    : `no valid signature by a trusted key (${verification.signatures.map((s) => s.reason).join('; ')})`;
  if (good && p.tlogEntries && opts.trustedRoot !== undefined) {
    // The bundle's log entries must hold too, checked by the reference verifier with the matched key.
    const key = opts.trust(good.keyid)!;
    try {
      const pub = createPublicKey(publicKeyFromJwk(key.publicJwk).export({ format: 'pem', type: 'spki' }) as string);
      const material = toTrustMaterial(trustedRootOf(opts.trustedRoot), () => ({ publicKey: pub, validFor: () => true }));
      new Verifier(material, { tlogThreshold: p.tlogEntries, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(p.bundle));
      tlog = 'verified';
    } catch (e) {
      return {
        ok: false,
        envelope: p.envelope,
        kind: 'public-key',
        verification,
        tlog: 'not-checked',
        reason: `transparency-log entry does not verify: ${(e as Error).message}`,
      };
    }
  } else if (good && p.tlogEntries) reason += '; its transparency-log entries were not checked (no Sigstore trusted root configured)';
  return { ok: !!good, envelope: p.envelope, kind: 'public-key', verification, tlog, reason };
}

function verifyCertificateBundle(p: ParsedBundle, trustedRoot: unknown): BundleVerification {
  if (trustedRoot === undefined)
    throw new CryptoError(
      'NO_TRUSTED_ROOT',
      'this Sigstore bundle is signed with a certificate (keyless); verifying it needs a Sigstore trusted root: set STELLA_SIGSTORE_TRUSTED_ROOT to a trusted_root.json',
    );
  const material = toTrustMaterial(trustedRootOf(trustedRoot));
  try {
    const signer = new Verifier(material).verify(toSignedEntity(p.bundle));
    const san = signer.identity?.subjectAlternativeName ?? null;
    const issuer = signer.identity?.extensions?.issuer ?? null;
    return {
      ok: true,
      envelope: p.envelope,
      kind: 'certificate',
      identity: { subjectAlternativeName: san, issuer },
      tlog: 'verified',
      reason: `certificate for ${san ?? '(no SAN)'} issued by the trusted root's CA (OIDC issuer ${issuer ?? 'unknown'})`,
    };
  } catch (e) {
    const code = (e as { code?: string }).code;
    return { ok: false, envelope: p.envelope, kind: 'certificate', tlog: 'not-checked', reason: `${code ? `${code}: ` : ''}${(e as Error).message}` };
  }
}

/** A Sigstore trusted_root.json, parsed. Throws INVALID_ARGUMENT when it is not one. */
export function trustedRootOf(json: unknown): TrustedRoot {
  if (!json || typeof json !== 'object') throw new CryptoError('INVALID_ARGUMENT', 'the Sigstore trusted root is not a JSON object');
  const mt = (json as { mediaType?: unknown }).mediaType;
  if (typeof mt !== 'string' || !mt.startsWith('application/vnd.dev.sigstore.trustedroot'))
    throw new CryptoError(
      'INVALID_ARGUMENT',
      `the Sigstore trusted root's mediaType is ${JSON.stringify(mt)}, expected application/vnd.dev.sigstore.trustedroot…+json`,
    );
  try {
    return TrustedRoot.fromJSON(json);
  } catch (e) {
    throw new CryptoError('INVALID_ARGUMENT', `the Sigstore trusted root does not parse: ${(e as Error).message}`);
  }
}

function tryJson(input: string | Uint8Array): unknown {
  try {
    return JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
  } catch {
    return undefined;
  }
}
