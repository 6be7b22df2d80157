/**
 * Signed evidence: a DSSE envelope (an in-toto statement) is verified when it is ingested, and
 * the item records how it was made (`provenance`, `signer`). A bad signature, a tampered
 * envelope, an unknown, revoked or expired key, a statement of another predicate type than
 * declared, or one that does not name the declared artifact is refused with a clear 4xx and
 * nothing is stored.
 *
 * Keys that count: the trusted RootPack (this locker's signing keys plus any pack imported with
 * `stella rootpack import`) and the PEM public keys the tenant's promotion policies name.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from '../../db/pool';
import { combineTrust, type Envelope, type KeyInfo, parseEnvelope, type TrustResolver, verifyEnvelope } from '../../crypto/dsse';
import { CYCLONEDX_BOM, INTOTO_PAYLOAD_TYPE, parseStatement, type Statement, VULNS_V02 } from '../../crypto/intoto';
import type { KeyStore } from '../../crypto/keys';
import { exportRootPack, importRootPack, readRootPackFile, type RootPack, rootPackResolver } from '../../crypto/rootpack';
import { badInput, integrity } from '../../lib/errors';
import { policySignerKeys } from '../promotion/queries/evidence';
import type { EvidenceKind, Provenance } from './model';

export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
export const OPENVEX_PREDICATE = 'https://openvex.dev/ns/v0.2.0';
/** The key purpose signatures on evidence must carry (see src/core/keys.ts). */
const SIGNING = 'signing';
const MAX_ENVELOPE_BYTES = 16 * 1024 * 1024;

/** Where `stella rootpack import` keeps the imported trust. */
export const trustFile = (dataDir: string) => join(dataDir, 'trust', 'rootpack.json');

/**
 * The RootPack verification trusts: this locker's own keys (public halves, with their windows)
 * merged with any pack the operator imported. Merging only narrows trust for known kids, so an
 * imported pack cannot revive a retired key.
 */
export async function trustedRootPack(keys: KeyStore, dataDir: string, now = new Date()): Promise<RootPack> {
  const own = await exportRootPack(keys, { now });
  const f = trustFile(dataDir);
  if (!existsSync(f)) return own;
  return (await importRootPack(own, await readRootPackFile(f), { now })).pack;
}

/** The keys evidence signatures are checked against for a tenant: the trusted RootPack and the policies' PEM keys (by kid). */
export async function evidenceTrustKeys(
  deps: { db: Db; keys: KeyStore; cfg: { dataDir: string } },
  tenant: string,
): Promise<{ pack: RootPack; pem: Map<string, KeyInfo> }> {
  const [pack, pem] = await Promise.all([trustedRootPack(deps.keys, deps.cfg.dataDir), policySignerKeys(deps.db, tenant)]);
  return { pack, pem };
}

/**
 * What evidence signatures are checked against for a tenant: the RootPack, then the policies' PEM
 * keys. A signature without a key id (cosign's `keyid: ""`) is tried against those same keys.
 */
export async function evidenceTrust(deps: { db: Db; keys: KeyStore; cfg: { dataDir: string } }, tenant: string): Promise<TrustResolver> {
  const { pack, pem } = await evidenceTrustKeys(deps, tenant);
  return combineTrust(rootPackResolver(pack, { purpose: SIGNING }), pem);
}

/**
 * Does this upload claim to be a DSSE envelope (media type, kind attestation) or is it one (a
 * JSON object with payloadType, payload and signatures)? Other JSON that merely mentions those
 * words is not.
 */
export function looksLikeEnvelope(mediaType: string, kind: string, bytes: Buffer): boolean {
  if (/dsse|in-toto|intoto/i.test(mediaType) || kind === 'attestation') return true;
  if (!bytes.includes('"payloadType"') || !bytes.includes('"signatures"')) return false;
  try {
    const o = JSON.parse(bytes.toString('utf8')) as Record<string, unknown> | null;
    return !!o && typeof o === 'object' && typeof o.payloadType === 'string' && typeof o.payload === 'string' && Array.isArray(o.signatures);
  } catch {
    return false;
  }
}

/** The predicate types an item of each kind may carry when it is a signed statement. */
function predicateFits(kind: EvidenceKind, predicateType: string): boolean {
  if (kind === 'sbom') return predicateType === CYCLONEDX_BOM || predicateType.startsWith(`${CYCLONEDX_BOM}/v`);
  if (kind === 'scan-report') return predicateType === VULNS_V02;
  // VEX: OpenVEX, or a CycloneDX BOM carrying vulnerabilities[].analysis.
  if (kind === 'vex')
    return predicateType.startsWith('https://openvex.dev/ns') || predicateType === CYCLONEDX_BOM || predicateType.startsWith(`${CYCLONEDX_BOM}/v`);
  return true;
}

export interface VerifiedEnvelope {
  provenance: Provenance;
  statement: Statement;
  predicateType: string;
}

/**
 * Verifies an uploaded envelope at ingest time `now` (the item's creation time, which later
 * checks use as the signing time). Throws BAD_INPUT (malformed, wrong payload or predicate
 * type, wrong subject) or INTEGRITY (no valid signature by a known, unrevoked, unexpired key).
 */
export function verifyEvidenceEnvelope(
  bytes: Buffer,
  trust: TrustResolver,
  declared: { kind: EvidenceKind; predicateType?: string; subjects: string[] },
  now = new Date(),
): VerifiedEnvelope {
  let env: Envelope;
  try {
    env = parseEnvelope(bytes);
  } catch (e) {
    throw badInput(`not a valid DSSE envelope: ${(e as Error).message}; nothing stored`);
  }
  if (!env.signatures.length) throw integrity('envelope carries no signatures; nothing stored');
  let v: ReturnType<typeof verifyEnvelope>;
  try {
    v = verifyEnvelope(env, trust, now);
  } catch (e) {
    throw badInput(`not a valid DSSE envelope: ${(e as Error).message}; nothing stored`);
  }
  if (!v.ok) {
    const why = v.signatures.map((s) => `${s.keyid || '(no keyid)'}: ${s.valid && !s.trusted ? `key not trusted now (${s.reason})` : s.reason}`).join('; ');
    throw integrity(`signature refused: no valid signature by a trusted key (known, unrevoked, unexpired: ${why}); nothing stored`, {
      signatures: v.signatures,
    });
  }
  if (v.payloadType !== INTOTO_PAYLOAD_TYPE) throw badInput(`envelope payloadType is ${v.payloadType}, expected ${INTOTO_PAYLOAD_TYPE}; nothing stored`);
  let statement: Statement;
  try {
    statement = parseStatement(v.payload);
  } catch (e) {
    const issues = (e as { details?: { issues?: string[] } }).details?.issues;
    throw badInput(`signed statement is invalid: ${(e as Error).message}${issues?.length ? `: ${issues[0]}` : ''}; nothing stored`);
  }
  if (declared.predicateType && declared.predicateType !== statement.predicateType)
    throw badInput(`wrong predicate type: declared ${declared.predicateType}, the signed statement says ${statement.predicateType}; nothing stored`);
  if (!predicateFits(declared.kind, statement.predicateType))
    throw badInput(`wrong predicate type: a ${declared.kind} cannot be a ${statement.predicateType} statement; nothing stored`);
  const named = new Set(statement.subject.map((s) => (s.digest.sha256 ? `sha256:${s.digest.sha256}` : '')));
  const foreign = declared.subjects.filter((d) => !named.has(d));
  if (foreign.length) throw badInput(`the signed statement does not name ${foreign.join(', ')} as its subject; nothing stored`);
  const signer = v.signatures.find((s) => s.valid && s.trusted)!.keyid;
  return { provenance: { kind: 'signed', signer }, statement, predicateType: statement.predicateType };
}

/**
 * The provenance of uploaded bytes: a DSSE envelope is verified (and refused when it does not
 * verify); anything else is `uploaded`. Returns the predicate type to record.
 */
export async function provenanceOfUpload(
  deps: { db: Db; keys: KeyStore; cfg: { dataDir: string } },
  u: { tenant: string; kind: EvidenceKind; mediaType: string; predicateType?: string; subjects: string[]; size: number; read: () => Promise<Buffer> },
): Promise<{ provenance: Provenance; predicateType?: string }> {
  const uploaded = { provenance: { kind: 'uploaded' as const, signer: null }, ...(u.predicateType ? { predicateType: u.predicateType } : {}) };
  const claimed = /dsse|in-toto|intoto/i.test(u.mediaType) || u.kind === 'attestation';
  if (u.size > MAX_ENVELOPE_BYTES) {
    if (claimed) throw badInput(`a signed envelope of ${u.size} bytes is too large to verify (max ${MAX_ENVELOPE_BYTES}); nothing stored`);
    return uploaded;
  }
  const bytes = await u.read();
  if (!looksLikeEnvelope(u.mediaType, u.kind, bytes)) return uploaded;
  const v = verifyEvidenceEnvelope(bytes, await evidenceTrust(deps, u.tenant), u);
  return { provenance: v.provenance, predicateType: v.predicateType };
}
