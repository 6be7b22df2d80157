/**
 * The document formats this feature moves, as the registry holds them: adapters over
 * src/crypto/sigstore-bundle (a keyed Sigstore bundle carries the same DSSE envelope stella stores).
 */
import { canonicalJson } from '../../lib/canonical';
import { parseEnvelope } from '../../crypto/dsse';
import { parseSigstoreBundle, sigstoreBundleOf as bundleOf } from '../../crypto/sigstore-bundle';

/** A stored DSSE envelope as a keyed Sigstore bundle v0.3 (publicKey hint = the signing kid; no Rekor entry). */
export function sigstoreBundleOf(envelope: Buffer): Buffer {
  const env = parseEnvelope(envelope);
  return Buffer.from(canonicalJson(bundleOf(env, env.signatures[0]?.keyid ?? '')));
}

/**
 * The DSSE envelope a keyed Sigstore bundle carries (canonical JSON), verified afterwards like any
 * envelope; or why it cannot be taken (malformed, a message signature, a keyless certificate bundle).
 */
export function envelopeOfBundle(bundle: Buffer): { envelope: Buffer } | { reason: string } {
  try {
    const p = parseSigstoreBundle(bundle);
    if (p.key.kind === 'certificate')
      return { reason: 'a keyless (certificate) Sigstore bundle: verify and import it with its trusted root (stella attest import <bundle.json>)' };
    // The hint is an unsigned label: a signature without a key id (cosign's "") is tried against the trusted keys.
    return { envelope: Buffer.from(canonicalJson(p.envelope)) };
  } catch (e) {
    return { reason: (e as Error).message };
  }
}
