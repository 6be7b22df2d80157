import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AppContext } from '../context';
import { audit } from '../audit';
import { canonicalJson } from '../../lib/canonical';
import { sha256Digest } from '../../lib/hash';
import { asStellaError, badInput, integrity, StellaError } from '../../lib/errors';
import { SIGNING_PURPOSE } from '../keys';
import type { EvidenceItem } from '../evidence';
import { ensureEdges, findAttestationByStatement } from '../evidence/queries/scan';
import { combineTrust, type KeyInfo, pae, parseEnvelope, rawSign, rawVerify, publicKeyFromJwk, verifyEnvelope, type Envelope } from '../../crypto/dsse';
import {
  CYCLONEDX_BOM,
  INTOTO_PAYLOAD_TYPE,
  SLSA_PROVENANCE_V1,
  VULNS_V02,
  cyclonedxPredicate,
  makeStatement,
  parseStatement,
  serializeStatement,
  slsaProvenance,
  subject,
  vulnsPredicate,
  type ResourceDescriptor,
  type Statement,
  type VulnResult,
} from '../../crypto/intoto';
import { importRootPack, readRootPackFile, rootPackResolver, writeRootPackFile, type RootPack } from '../../crypto/rootpack';
import type { Provenance } from '../evidence';
import { type AttestationFormat, envelopeForImport } from './external';
import {
  evidenceTrust,
  evidenceTrustKeys,
  trustedRootPack as evidenceRootPack,
  trustFile as evidenceTrustFile,
  verifyEvidenceEnvelope,
} from '../evidence/signed';

/**
 * Attestations: in-toto v1 statements about an artifact, DSSE-signed with the active
 * `signing` key, stored as evidence (kind attestation, media type DSSE) with an edge to
 * the item they attest.
 *
 * Idempotency: ES256 signatures are randomized, so re-signing after a crash would store a
 * second, different envelope. Statements are canonical JSON built only from recorded
 * inputs (scan time fixed by the workflow), and each stored envelope is labelled with the
 * sha256 of its statement; before signing we look for a present attestation with that
 * label and reuse it. Ed25519 keys (deterministic) would give identical bytes anyway.
 */

export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
export const STELLA_BUILDER_ID = 'https://stella.dev/builders/stella';
export const STELLA_SCAN_BUILD_TYPE = 'https://stella.dev/buildtypes/scan-then-attest/v1';
export const ATTEST_TYPES = { 'slsa-provenance': SLSA_PROVENANCE_V1, sbom: CYCLONEDX_BOM, vuln: VULNS_V02 } as const;
export type AttestType = keyof typeof ATTEST_TYPES;

export function attestTypeOf(predicateType: string | null): string {
  const e = Object.entries(ATTEST_TYPES).find(([, v]) => v === predicateType);
  return e ? e[0] : (predicateType ?? 'unknown');
}

// ---------------------------------------------------------------------------------------
// Trust

export const trustFile = (ctx: AppContext) => evidenceTrustFile(ctx.cfg.dataDir);

/**
 * The RootPack verification trusts: this locker's own keys (public halves, with their
 * windows) merged with any pack the operator imported (`stella rootpack import`). Merging
 * only narrows trust for known kids, so an imported pack cannot revive a retired key.
 * (One implementation: src/core/evidence/signed.ts, which ingest verifies uploads with.)
 */
export async function trustedRootPack(ctx: AppContext, now = new Date()): Promise<RootPack> {
  return evidenceRootPack(ctx.keys, ctx.cfg.dataDir, now);
}

/** Merge a pack into the imported trust file (audited). */
export async function importTrust(
  ctx: AppContext,
  tenant: string,
  pack: unknown,
  actor: string,
): Promise<{ added: string[]; updated: string[]; digest: string }> {
  const f = trustFile(ctx);
  const base = existsSync(f) ? await readRootPackFile(f) : undefined;
  const r = await importRootPack(base, pack);
  await mkdir(dirname(f), { recursive: true, mode: 0o700 });
  await writeRootPackFile(f, r.pack);
  await audit(ctx.db, { tenant, actor, action: 'rootpack.import', target: r.pack.digest, details: { added: r.added, updated: r.updated } });
  return { added: r.added, updated: r.updated, digest: r.pack.digest };
}

// ---------------------------------------------------------------------------------------
// Statements

export interface ScanFacts {
  scanId: string;
  artifactDigest: string;
  imageRef: string | null;
  trigger: string;
  requestedBy: string;
  scanTime: string;
  finishedAt?: string;
  scanner: { name: string; version: string };
  feed: { version: number; digest: string; importedAt: string } | null;
  sbomId: string | null;
  reportId: string | null;
}

const subjectName = (f: Pick<ScanFacts, 'imageRef' | 'artifactDigest'>) => f.imageRef ?? f.artifactDigest;

export function sbomStatement(f: ScanFacts, bom: Record<string, unknown>): Statement {
  return makeStatement([subject(subjectName(f), f.artifactDigest)], CYCLONEDX_BOM, cyclonedxPredicate(bom as never));
}

interface ReportFinding {
  id: string;
  severity: string;
  score?: number;
  cvssVector?: string;
  package: { purl: string };
  installedVersion: string;
  fixedVersion?: string;
}

export function vulnStatement(f: ScanFacts, report: { findings: ReportFinding[] }): Statement {
  const result: VulnResult[] = report.findings.map((x) => ({
    id: x.id,
    severity: [
      {
        method: x.cvssVector ? (x.cvssVector.startsWith('CVSS:3') ? 'CVSSv3' : 'CVSSv2') : 'severity',
        score: x.score !== undefined ? String(x.score) : x.severity,
      },
    ],
    annotations: [
      { purl: x.package.purl, installedVersion: x.installedVersion, ...(x.fixedVersion ? { fixedVersion: x.fixedVersion } : {}), severity: x.severity },
    ],
  }));
  const predicate = vulnsPredicate({
    scanner: { uri: `urn:stella:scanner:${f.scanner.name}`, version: f.scanner.version },
    db: f.feed
      ? { uri: `urn:stella:feed:${f.feed.digest}`, version: String(f.feed.version), lastUpdate: f.feed.importedAt }
      : { uri: 'urn:stella:feed:none', version: 'none', lastUpdate: f.scanTime },
    result,
    scanStartedOn: f.scanTime,
    scanFinishedOn: f.finishedAt ?? f.scanTime,
  });
  return makeStatement([subject(subjectName(f), f.artifactDigest)], VULNS_V02, predicate);
}

export function provenanceStatement(f: ScanFacts): Statement {
  const deps: ResourceDescriptor[] = [
    { name: 'image', uri: f.imageRef ? `oci:${f.imageRef}` : `oci:${f.artifactDigest}`, digest: { sha256: f.artifactDigest.slice(7) } },
  ];
  if (f.feed) deps.push({ name: 'advisory-feed', uri: `urn:stella:feed:v${f.feed.version}`, digest: { sha256: f.feed.digest.slice(7) } });
  const byproducts: ResourceDescriptor[] = [];
  if (f.sbomId) byproducts.push({ name: 'sbom', mediaType: 'application/vnd.cyclonedx+json', digest: { sha256: f.sbomId.slice(7) } });
  if (f.reportId) byproducts.push({ name: 'scan-report', mediaType: 'application/json', digest: { sha256: f.reportId.slice(7) } });
  const predicate = slsaProvenance({
    buildType: STELLA_SCAN_BUILD_TYPE,
    externalParameters: { imageRef: f.imageRef ?? f.artifactDigest, artifactDigest: f.artifactDigest, trigger: f.trigger, requestedBy: f.requestedBy },
    internalParameters: { scanId: f.scanId, scanner: f.scanner, feed: f.feed ? { version: f.feed.version, digest: f.feed.digest } : null },
    resolvedDependencies: deps,
    builderId: STELLA_BUILDER_ID,
    builderVersion: { [f.scanner.name]: f.scanner.version },
    invocationId: f.scanId,
    startedOn: f.scanTime,
    ...(f.finishedAt ? { finishedOn: f.finishedAt } : {}),
    ...(byproducts.length ? { byproducts } : {}),
  });
  return makeStatement([subject(subjectName(f), f.artifactDigest)], SLSA_PROVENANCE_V1, predicate);
}

// ---------------------------------------------------------------------------------------
// Signing + storing

export async function recordSigningFailure(
  ctx: AppContext,
  e: { tenant: string; kid?: string | null; predicateType?: string; subject?: string; scanId?: string; error: string },
): Promise<void> {
  await ctx.db
    .query('INSERT INTO signing_failures (tenant_id, kid, predicate_type, subject, scan_id, error) VALUES ($1,$2,$3,$4,$5,$6)', [
      e.tenant,
      e.kid ?? null,
      e.predicateType ?? null,
      e.subject ?? null,
      e.scanId ?? null,
      e.error.slice(0, 2000),
    ])
    .catch((err) => ctx.log.error({ err }, 'could not record signing failure'));
}

export type StoredAttestation = {
  id: string;
  predicateType: string;
  kid: string;
  created: boolean;
  reused: boolean;
};

/**
 * Sign `statement` with the active signing key and store the envelope, unless an
 * attestation of exactly this statement is already present (then return it).
 */
export async function signAndStore(
  ctx: AppContext,
  a: {
    tenant: string;
    statement: Statement;
    attests: { id: string; relation?: string }[];
    scanId?: string;
    actor: string;
    labels?: Record<string, string>;
    /** Stella's own output (scan-then-attest over what its scanner produced) or a claim signed by stella's key over evidence it did not produce. */
    ownOutput?: boolean;
  },
): Promise<StoredAttestation> {
  const payload = serializeStatement(a.statement);
  const statementDigest = sha256Digest(payload);
  const artifact = `sha256:${a.statement.subject[0]!.digest.sha256}`;
  const edges = a.attests.map((p) => ({ id: p.id, relation: p.relation ?? 'attests' }));
  const existing = await findAttestationByStatement(ctx.db, a.tenant, { artifact, predicateType: a.statement.predicateType, statementDigest });
  if (existing) {
    // Make sure the edges exist (a crash could not have split them from the row, but a
    // caller may attest an extra item with the same statement).
    await ensureEdges(ctx.db, a.tenant, existing.id, edges);
    return { id: existing.id, predicateType: a.statement.predicateType, kid: existing.signer, created: false, reused: true };
  }
  let kid: string | null = null;
  let env: Envelope;
  try {
    const rec = await ctx.keys.active(SIGNING_PURPOSE);
    kid = rec.kid;
    const signer = await ctx.keys.signer(rec.kid);
    const sig = await signer.sign(pae(INTOTO_PAYLOAD_TYPE, payload));
    // Self-check: never store an envelope that does not verify against the key's public half.
    if (!rawVerify(rec.alg, publicKeyFromJwk(rec.publicJwk), pae(INTOTO_PAYLOAD_TYPE, payload), sig))
      throw integrity(`signature by ${rec.kid} does not verify`);
    env = {
      payloadType: INTOTO_PAYLOAD_TYPE,
      payload: Buffer.from(payload).toString('base64'),
      signatures: [{ keyid: rec.kid, sig: Buffer.from(sig).toString('base64') }],
    };
  } catch (e) {
    await recordSigningFailure(ctx, {
      tenant: a.tenant,
      kid,
      predicateType: a.statement.predicateType,
      subject: artifact,
      ...(a.scanId ? { scanId: a.scanId } : {}),
      error: (e as Error).message,
    });
    const s = asStellaError(e); // key-store errors (CryptoError) by their category
    if (s) throw new StellaError(s.code === 'NOT_FOUND' ? 'UNAVAILABLE' : s.code, `signing failed: ${s.message}`, s.details);
    // I/O trouble with the key store: transient, left retryable by the workflow.
    throw new Error(`signing failed: ${(e as Error).message}`, { cause: e });
  }
  const r = await ctx.evidence.ingest({
    tenant: a.tenant,
    data: Buffer.from(canonicalJson(env)),
    kind: 'attestation',
    mediaType: DSSE_MEDIA_TYPE,
    predicateType: a.statement.predicateType,
    subjects: [artifact],
    parents: edges,
    producer: { type: 'stella-attestor', actor: a.actor, ...(a.scanId ? { scanId: a.scanId } : {}) },
    labels: { 'stella.statement': statementDigest, 'stella.signer': kid!, ...(a.scanId ? { 'stella.scan-id': a.scanId } : {}), ...(a.labels ?? {}) },
    provenance: { kind: a.ownOutput ? 'produced-by-stella' : 'signed', signer: kid! } satisfies Provenance,
  });
  return { id: r.id, predicateType: a.statement.predicateType, kid: kid!, created: r.created, reused: false };
}

// ---------------------------------------------------------------------------------------
// Verification

export type SignatureView = {
  keyid: string;
  alg: string | null;
  valid: boolean;
  trustedAtSigning: boolean;
  trustedNow: boolean;
  reason: string;
  reasonNow: string;
};
export type AttestationView = {
  id: string;
  predicateType: string | null;
  type: string;
  subjects: string[];
  attests: { id: string; relation: string }[];
  createdAt: string;
  state: string;
  signer: string | null;
  /** At least one signature is cryptographically valid and its key was trusted when it was stored. */
  valid: boolean;
  /** ...and that key is still trusted now. */
  trustedNow: boolean;
  signatures: SignatureView[];
  error?: string;
};

/**
 * Verify a stored attestation. The signing time is the locker's ingestion time (trusted),
 * never a timestamp inside the payload; "trusted now" re-evaluates the same key today.
 */
export function verifyEnvelopeBytes(
  bytes: Buffer,
  pack: RootPack,
  signedAt: Date,
  now = new Date(),
  /** Further trusted keys by kid: the tenant's policy PEM keys (a pipeline's cosign key). */
  extra: ReadonlyMap<string, KeyInfo> = new Map(),
): { valid: boolean; trustedNow: boolean; signatures: SignatureView[]; statement: Statement | null; error?: string } {
  let env: Envelope;
  try {
    env = parseEnvelope(bytes);
  } catch (e) {
    return { valid: false, trustedNow: false, signatures: [], statement: null, error: (e as Error).message };
  }
  const resolver = combineTrust(rootPackResolver(pack, { purpose: SIGNING_PURPOSE }), extra);
  const at = verifyEnvelope(env, resolver, signedAt);
  const nowR = verifyEnvelope(env, resolver, now);
  const signatures = at.signatures.map((s, i) => ({
    keyid: s.keyid,
    alg: pack.keys.find((k) => k.kid === s.keyid)?.alg ?? extra.get(s.keyid)?.alg ?? null,
    valid: s.valid,
    trustedAtSigning: s.trusted,
    trustedNow: nowR.signatures[i]!.trusted,
    reason: s.reason,
    reasonNow: nowR.signatures[i]!.reason,
  }));
  let statement: Statement | null = null;
  let error: string | undefined;
  if (at.payloadType !== INTOTO_PAYLOAD_TYPE) error = `payloadType is ${at.payloadType}, expected ${INTOTO_PAYLOAD_TYPE}`;
  else {
    try {
      statement = parseStatement(at.payload);
    } catch (e) {
      error = (e as Error).message;
    }
  }
  const good = signatures.filter((s) => s.valid && s.trustedAtSigning);
  return { valid: good.length > 0 && !error, trustedNow: good.some((s) => s.trustedNow) && !error, signatures, statement, ...(error ? { error } : {}) };
}

function viewOf(item: EvidenceItem, v: ReturnType<typeof verifyEnvelopeBytes>): AttestationView {
  const good = v.signatures.find((s) => s.valid) ?? v.signatures[0];
  return {
    id: item.id,
    predicateType: item.predicateType ?? v.statement?.predicateType ?? null,
    type: attestTypeOf(item.predicateType ?? v.statement?.predicateType ?? null),
    subjects: item.subjects,
    attests: item.parents,
    createdAt: item.createdAt,
    state: item.state,
    signer: good?.keyid ?? null,
    valid: v.valid,
    trustedNow: v.trustedNow,
    signatures: v.signatures,
    ...(v.error ? { error: v.error } : {}),
  };
}

export async function verifyAttestation(
  ctx: AppContext,
  tenant: string,
  id: string,
  pack?: RootPack,
): Promise<AttestationView & { statement: Statement | null }> {
  const item = await ctx.evidence.get(tenant, id);
  if (item.kind !== 'attestation') throw badInput(`evidence ${id} is a ${item.kind}, not an attestation`);
  const bytes = await ctx.evidence.read(tenant, id);
  const { pem } = await evidenceTrustKeys(ctx, tenant);
  const v = verifyEnvelopeBytes(bytes, pack ?? (await trustedRootPack(ctx)), new Date(item.createdAt), new Date(), pem);
  return { ...viewOf(item, v), statement: v.statement };
}

export async function listAttestations(ctx: AppContext, tenant: string, subjectDigest: string): Promise<AttestationView[]> {
  const { pack, pem } = await evidenceTrustKeys(ctx, tenant);
  const { items } = await ctx.evidence.list({ tenant, artifact: subjectDigest, kind: 'attestation', limit: 1000 });
  const out: AttestationView[] = [];
  for (const item of items) {
    try {
      const bytes = await ctx.evidence.read(tenant, item.id);
      out.push(viewOf(item, verifyEnvelopeBytes(bytes, pack, new Date(item.createdAt), new Date(), pem)));
    } catch (e) {
      out.push({ ...viewOf(item, { valid: false, trustedNow: false, signatures: [], statement: null }), error: (e as Error).message });
    }
  }
  return out;
}

/**
 * Store an externally produced attestation, but only if it verifies against the trusted
 * RootPack now and names the artifact; otherwise nothing is stored (INTEGRITY/BAD_INPUT).
 */
export async function importAttestation(
  ctx: AppContext,
  tenant: string,
  upload: Buffer,
  opts: { actor: string; attests?: string[] },
): Promise<{ id: string; created: boolean; predicateType: string; subject: string; signer: string; format: AttestationFormat }> {
  // A Sigstore bundle is stored as the DSSE envelope it carries (src/core/attest/external.ts).
  const { envelope, format } = await envelopeForImport(ctx, tenant, upload);
  const bytes = envelope;
  // The same verification as a signed upload (src/core/evidence/signed.ts): RootPack + policy PEM
  // keys, which a signature without a key id (cosign's) is tried against.
  const v = verifyEvidenceEnvelope(bytes, await evidenceTrust(ctx, tenant), { kind: 'attestation', subjects: [] });
  const subjects = v.statement.subject
    .map((s) => s.digest.sha256)
    .filter((h): h is string => !!h && /^[0-9a-f]{64}$/.test(h))
    .map((h) => `sha256:${h}`);
  if (!subjects.length) throw badInput('attestation names no sha256 subject; nothing stored');
  for (const p of opts.attests ?? []) await ctx.evidence.get(tenant, p);
  const signer = v.provenance.signer!;
  const r = await ctx.evidence.ingest({
    tenant,
    data: bytes,
    kind: 'attestation',
    mediaType: DSSE_MEDIA_TYPE,
    predicateType: v.predicateType,
    subjects,
    parents: (opts.attests ?? []).map((id) => ({ id, relation: 'attests' })),
    producer: { type: 'import', actor: opts.actor },
    labels: {
      'stella.statement': sha256Digest(serializeStatement(v.statement)),
      'stella.signer': signer,
      ...(format === 'dsse' ? {} : { 'stella.imported-as': format }),
    },
    provenance: v.provenance,
  });
  const out = { id: r.id, created: r.created, predicateType: v.predicateType, subject: subjects[0]!, signer, format };
  await audit(ctx.db, {
    tenant,
    actor: opts.actor,
    action: 'attestation.import',
    target: out.id,
    details: { subject: out.subject, signer: out.signer, created: out.created, format },
  });
  return out;
}

// ---------------------------------------------------------------------------------------
// Signer health

export type SignerStatus = {
  healthy: boolean;
  activeKey: { kid: string; alg: string; notBefore: string; createdAt: string } | null;
  canSign: boolean;
  canSignError: string | null;
  inRootPack: boolean;
  keys: { total: number; active: number; retired: number };
  recentFailures: { at: string; kid: string | null; predicateType: string | null; subject: string | null; scanId: string | null; error: string }[];
  failuresLast24h: number;
};

interface SigningFailureRow {
  at: Date | string;
  kid: string | null;
  predicate_type: string | null;
  subject: string | null;
  scan_id: string | null;
  error: string;
}

export async function signerStatus(ctx: AppContext, tenant: string): Promise<SignerStatus> {
  const all = (await ctx.keys.list()).filter((k) => k.purpose === SIGNING_PURPOSE);
  let activeKey: SignerStatus['activeKey'] = null;
  let canSign = false;
  let canSignError: string | null = null;
  let inRootPack = false;
  try {
    const rec = await ctx.keys.active(SIGNING_PURPOSE);
    activeKey = { kid: rec.kid, alg: rec.alg, notBefore: rec.notBefore, createdAt: rec.createdAt };
    const signer = await ctx.keys.signer(rec.kid);
    // Test signature over a probe message, verified with the public half.
    const probe = pae('application/vnd.stella.probe', Buffer.from(`probe ${new Date().toISOString()}`));
    const sig = rawSign(rec.alg, signer.privateKey, probe);
    canSign = rawVerify(rec.alg, publicKeyFromJwk(rec.publicJwk), probe, sig);
    if (!canSign) canSignError = 'test signature did not verify';
    const pack = await trustedRootPack(ctx);
    inRootPack = pack.keys.some((k) => k.kid === rec.kid && k.status === 'active');
  } catch (e) {
    canSignError = (e as Error).message;
  }
  const f = await ctx.db.query<SigningFailureRow>('SELECT * FROM signing_failures WHERE tenant_id=$1 ORDER BY at DESC, id DESC LIMIT 10', [tenant]);
  const n = await ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM signing_failures WHERE tenant_id=$1 AND at > now() - interval '24 hours'`, [
    tenant,
  ]);
  return {
    healthy: !!activeKey && canSign && inRootPack,
    activeKey,
    canSign,
    canSignError,
    inRootPack,
    keys: { total: all.length, active: all.filter((k) => k.status === 'active').length, retired: all.filter((k) => k.status === 'retired').length },
    recentFailures: f.rows.map((r) => ({
      at: new Date(r.at).toISOString(),
      kid: r.kid,
      predicateType: r.predicate_type,
      subject: r.subject,
      scanId: r.scan_id,
      error: r.error,
    })),
    failuresLast24h: n.rows[0]?.n ?? 0,
  };
}

export function ensureKnownType(t: string): AttestType {
  if (!(t in ATTEST_TYPES)) throw badInput(`unknown attestation type ${JSON.stringify(t)}: expected one of ${Object.keys(ATTEST_TYPES).join(', ')}`);
  return t as AttestType;
}
