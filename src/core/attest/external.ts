/**
 * Attestations in the formats other tools read and write: a DSSE envelope as cosign writes it
 * (`keyid: ""`), a Sigstore bundle v0.3 carrying one (cosign `--new-bundle-format`, sigstore-js),
 * and stella's own attestations exported as a keyed Sigstore bundle.
 *
 * Import stores the DSSE envelope (the bundle's, for a bundle) so that every later check — verify,
 * list, promotion gates — reads the same envelope; the signer is the trusted key the signature
 * verifies under (src/crypto/dsse.ts tries the trusted keys for a signature without a key id).
 */
import { readFile } from 'node:fs/promises';
import { canonicalJson } from '../../lib/canonical';
import { badInput } from '../../lib/errors';
import { parseEnvelope } from '../../crypto/dsse';
import { looksLikeSigstoreBundle, parseSigstoreBundle, sigstoreBundleOf, type KeyedBundleJson, verifySigstoreBundle } from '../../crypto/sigstore-bundle';
import type { AppContext } from '../context';
import { evidenceTrust } from '../evidence/signed';

export type AttestationFormat = 'dsse' | 'sigstore-bundle';
type DsseJson = { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] };

/** The envelope to store for an uploaded attestation, and what it came as. Throws BAD_INPUT / INTEGRITY naming what failed; nothing is stored by it. */
export async function envelopeForImport(
  ctx: AppContext,
  tenant: string,
  bytes: Buffer,
): Promise<{ envelope: Buffer; format: AttestationFormat; tlog: 'verified' | 'absent' | 'not-checked' }> {
  if (!looksLikeSigstoreBundle(bytes)) return { envelope: bytes, format: 'dsse', tlog: 'absent' };
  let p: ReturnType<typeof parseSigstoreBundle>;
  try {
    p = parseSigstoreBundle(bytes);
  } catch (e) {
    throw badInput(`${(e as Error).message}; nothing stored`);
  }
  if (p.key.kind === 'certificate') {
    // Verified or not, a certificate names an identity, not a key a promotion policy can name as a signer.
    const root = await sigstoreTrustedRoot(ctx);
    if (!root)
      throw badInput(
        'this Sigstore bundle is signed with a certificate (keyless); verifying it needs a Sigstore trusted root (STELLA_SIGSTORE_TRUSTED_ROOT) and importing it needs a key-signed bundle: stella policies name signer keys; nothing stored',
      );
    const v = verifySigstoreBundle(bytes, { trust: await evidenceTrust(ctx, tenant), trustedRoot: root });
    throw badInput(
      `this Sigstore bundle is signed with a certificate (${v.ok ? `verified: ${v.reason}` : `does not verify: ${v.reason}`}); stella imports key-signed attestations only (policy signers are keys); nothing stored`,
    );
  }
  // Keyed: the signature is checked on import by the same envelope verification as a DSSE upload;
  // here only the bundle's own log entries, when there are any and a trusted root is configured.
  let tlog: 'verified' | 'absent' | 'not-checked' = p.tlogEntries ? 'not-checked' : 'absent';
  const root = p.tlogEntries ? await sigstoreTrustedRoot(ctx) : undefined;
  if (root) {
    const v = verifySigstoreBundle(bytes, { trust: await evidenceTrust(ctx, tenant), trustedRoot: root });
    if (v.verification?.ok && !v.ok) throw badInput(`Sigstore bundle refused: ${v.reason}; nothing stored`);
    tlog = v.tlog;
  }
  // The hint names the key when the signature does not (stella's bundles; cosign's hint is no kid):
  // a bundle of a stored envelope so imports back as that same envelope.
  const sig = p.envelope.signatures[0]!;
  const hinted = !sig.keyid && p.key.hint && (await evidenceTrust(ctx, tenant))(p.key.hint);
  const envelope = hinted ? { ...p.envelope, signatures: [{ keyid: p.key.hint, sig: sig.sig }] } : p.envelope;
  return { envelope: Buffer.from(canonicalJson(envelope)), format: 'sigstore-bundle', tlog };
}

/** A stored attestation (a DSSE envelope) as a keyed Sigstore bundle v0.3: publicKey hint = its signer's kid, no Rekor entry. */
export async function exportAttestation(ctx: AppContext, tenant: string, id: string, format: AttestationFormat): Promise<KeyedBundleJson | DsseJson> {
  const item = await ctx.evidence.get(tenant, id);
  if (item.kind !== 'attestation') throw badInput(`evidence ${id} is a ${item.kind}, not an attestation`);
  const bytes = await ctx.evidence.read(tenant, id);
  const env = parseEnvelope(bytes);
  if (format === 'dsse') return { payloadType: env.payloadType, payload: env.payload, signatures: env.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })) };
  const sig = env.signatures[0];
  if (env.signatures.length !== 1 || !sig) throw badInput(`attestation ${id} has ${env.signatures.length} signatures; a Sigstore bundle carries exactly one`);
  return sigstoreBundleOf(env, sig.keyid || item.signer || '');
}

/** The configured Sigstore trusted root (parsed JSON), or undefined when none is configured. */
export async function sigstoreTrustedRoot(ctx: AppContext): Promise<unknown> {
  const f = ctx.cfg.sigstoreTrustedRoot;
  if (!f) return undefined;
  try {
    return JSON.parse(await readFile(f, 'utf8'));
  } catch (e) {
    throw badInput(`STELLA_SIGSTORE_TRUSTED_ROOT ${f} is not readable JSON: ${(e as Error).message}`);
  }
}
