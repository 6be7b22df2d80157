import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type Db, withTransaction } from '../../db/pool';
import { canonicalJson } from '../../lib/canonical';
import { sha256Digest } from '../../lib/hash';
import { badInput, conflict } from '../../lib/errors';
import { audit } from '../audit';
import { type PolicyChange, policyDiff } from './policy-diff';
import { parseDuration } from '../../config';
import { createHash, createPublicKey } from 'node:crypto';
import type { JWK } from 'jose';
import type { KeyInfo } from '../../crypto/dsse';
import { CYCLONEDX_BOM, SLSA_PROVENANCE_V1, VULNS_V02 } from '../../crypto/intoto';

/**
 * Promotion policy per target environment: which evidence a promotion needs, how old it may
 * be, whether missing evidence is generated automatically, how long a promotion waits for
 * it, and whether a manual approval is required. Documents are YAML or JSON, validated here,
 * and versioned in promotion_policies (a new version only when the content changes).
 */

const duration = z.string().regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration such as 30m, 24h or 30d');
const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ -');
const count = z.number().int().min(0);

const KID_RE = /^[A-Za-z0-9_-]{43}$/;
/**
 * Who must have signed the evidence of a requirement: `rootpack` (any key trusted through an
 * imported RootPack, stella's own keys excepted), `stella` (stella's own key, for evidence
 * stella's scan-then-attest produced), a key id (RFC 7638 thumbprint, as `stella keys list`
 * shows it) or `{ pem: <public key> }` (P-256 or Ed25519; uploads signed by it verify at ingest).
 * An empty list accepts unsigned evidence.
 */
const signer = z.union([
  z.string().refine((s) => s === 'rootpack' || s === 'stella' || KID_RE.test(s), 'expected rootpack, stella or a key id (43-character RFC 7638 thumbprint)'),
  z.strictObject({ pem: z.string().refine((p) => pemSignerKey(p) !== null, 'expected a PEM public key (P-256 or Ed25519)') }),
]);
export type PolicySigner = z.infer<typeof signer>;
const signers = z.array(signer).max(32);
const DEFAULT_SIGNERS: PolicySigner[] = ['stella', 'rootpack'];
const isCycloneDx = (t: string) => t === CYCLONEDX_BOM || t.startsWith(`${CYCLONEDX_BOM}/v`);

const sbomReq = z.strictObject({
  kind: z.literal('sbom'),
  name: name.default('sbom'),
  required: z.boolean().default(true),
  format: z.enum(['cyclonedx']).default('cyclonedx'),
  /** With signers: the signed statement's predicate type (a CycloneDX BOM). */
  predicateType: z.string().refine(isCycloneDx, `expected ${CYCLONEDX_BOM} (or a versioned form)`).default(CYCLONEDX_BOM),
  signers: signers.default(DEFAULT_SIGNERS),
  maxAge: duration.optional(),
});
const severity = z.enum(['critical', 'high', 'medium', 'low']);
const scanReq = z.strictObject({
  kind: z.literal('scan-report'),
  name: name.default('vulnerability-scan'),
  required: z.boolean().default(true),
  /** Maximum findings per severity; omitted severities are not limited. */
  thresholds: z.strictObject({ critical: count.optional(), high: count.optional(), medium: count.optional(), low: count.optional() }).prefault({ critical: 0 }),
  /**
   * Findings of unknown severity (after VEX): `block` (default: any one is a violation), `warn`
   * (pass, named in the result), `ignore`, or count as a severity against its threshold.
   */
  unknownSeverity: z.union([z.enum(['block', 'warn', 'ignore']), severity]).default('block'),
  /** Who may sign VEX that suppresses findings (OpenVEX or CycloneDX VEX about the artifact); default: the requirement's signers. */
  vexSigners: signers.optional(),
  /** With signers: the signed statement's predicate type (a vulnerability report). */
  predicateType: z.literal(VULNS_V02).default(VULNS_V02),
  signers: signers.default(DEFAULT_SIGNERS),
  maxAge: duration.optional(),
});
const attestationReq = z
  .strictObject({
    kind: z.literal('attestation'),
    name: name.default('provenance'),
    required: z.boolean().default(true),
    /** e.g. SLSA provenance v1, OpenVEX, a CycloneDX BOM, a vulnerability report. */
    predicateType: z.string().min(1).default(SLSA_PROVENANCE_V1),
    /** Legacy: true = signers [rootpack] when signers is not given; false = []. */
    trustedSigner: z.boolean().default(true),
    signers: signers.optional(),
    /** SLSA provenance: runDetails.builder.id must be one of these (as slsa-verifier --builder-id). */
    builderIds: z.array(z.string().min(1)).min(1).optional(),
    /** SLSA provenance: the source repository (externalParameters / resolvedDependencies) must be one of these (as slsa-verifier --source-uri). */
    sourceRepos: z.array(z.string().min(1)).min(1).optional(),
    maxAge: duration.optional(),
  })
  .refine((r) => r.predicateType === SLSA_PROVENANCE_V1 || (!r.builderIds && !r.sourceRepos), 'builderIds and sourceRepos apply to SLSA provenance only');
const requirement = z.discriminatedUnion('kind', [sbomReq, scanReq, attestationReq]);

export const DEFAULT_REQUIREMENTS = [
  { kind: 'sbom' as const },
  { kind: 'scan-report' as const, thresholds: { critical: 0 } },
  { kind: 'attestation' as const, predicateType: SLSA_PROVENANCE_V1 },
];

export const policySchema = z
  .strictObject({
    requirements: z.array(requirement).prefault(DEFAULT_REQUIREMENTS),
    maxEvidenceAge: duration.default('30d'),
    autoGenerate: z.boolean().default(false),
    waitDeadline: duration.default('24h'),
    requireApproval: z.boolean().default(false),
    approvals: z.number().int().min(1).max(10).default(1),
  })
  .refine((p) => new Set(p.requirements.map((r) => r.name)).size === p.requirements.length, 'requirement names must be unique')
  // Attestation requirements name their signers explicitly once parsed (legacy trustedSigner folded in).
  .transform((p) => ({
    ...p,
    requirements: p.requirements.map((r) => (r.kind === 'attestation' ? { ...r, signers: r.signers ?? (r.trustedSigner ? ['rootpack'] : []) } : r)),
  }));

export type PromotionPolicy = z.infer<typeof policySchema>;
export type Requirement = PromotionPolicy['requirements'][number];

export const DEFAULT_POLICY: PromotionPolicy = policySchema.parse({});

export const ENV_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export function validateEnv(env: string, what = 'environment'): string {
  if (!ENV_RE.test(env)) throw badInput(`malformed ${what} ${JSON.stringify(env)}: lowercase letters, digits, . _ - (max 63)`);
  return env;
}

/** Parses a YAML or JSON policy document (YAML is a superset) and validates it. BAD_INPUT with the first problem. */
export function parsePolicyDocument(text: string): PromotionPolicy {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw badInput(`policy is not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw badInput('policy must be a mapping (YAML) or an object (JSON)');
  // A document may wrap itself under `promotion:` (as `evidence policy show --format json` prints it).
  const body = 'promotion' in (raw as object) && Object.keys(raw as object).length === 1 ? (raw as { promotion: unknown }).promotion : raw;
  const r = policySchema.safeParse(body);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw badInput(`invalid policy: ${i.path.join('.') || '(root)'}: ${i.message}`, {
      issues: r.error.issues.map((x) => `${x.path.join('.') || '(root)'}: ${x.message}`),
    });
  }
  return r.data;
}

export const policyChecksum = (p: PromotionPolicy) => sha256Digest(canonicalJson(p));

export function policyTimings(p: PromotionPolicy) {
  return { waitDeadlineMs: parseDuration(p.waitDeadline), maxEvidenceAgeMs: parseDuration(p.maxEvidenceAge) };
}

export interface ResolvedPolicy {
  /** The environment asked about. */
  env: string;
  /** Where the policy came from: the env's own, the tenant-wide '*' policy, or the built-in default. */
  source: 'environment' | 'tenant-default' | 'built-in';
  policyEnv: string;
  version: number | null;
  checksum: string;
  createdAt: string | null;
  createdBy: string | null;
  policy: PromotionPolicy;
}

let builtInChecksum: string | undefined;

/** The policy that applies to promotions into `env` (env-specific, else '*', else built-in). */
export async function resolvePolicy(db: Db, tenant: string, env: string): Promise<ResolvedPolicy> {
  validateEnv(env);
  const r = await db.query(
    `SELECT env, version, document, checksum, created_at, created_by FROM promotion_policies
     WHERE tenant_id=$1 AND env = ANY($2) ORDER BY (env = '*'), version DESC LIMIT 1`,
    [tenant, [env, '*']],
  );
  if (!r.rowCount)
    return {
      env,
      source: 'built-in',
      policyEnv: 'built-in',
      version: null,
      checksum: (builtInChecksum ??= policyChecksum(DEFAULT_POLICY)),
      createdAt: null,
      createdBy: null,
      policy: DEFAULT_POLICY,
    };
  const row = r.rows[0];
  // Re-validate on read: defaults added in later versions fill in, and a bad row fails loudly.
  const policy = policySchema.parse(row.document);
  return {
    env,
    source: row.env === '*' ? 'tenant-default' : 'environment',
    policyEnv: row.env,
    version: row.version,
    checksum: row.checksum,
    createdAt: new Date(row.created_at).toISOString(),
    createdBy: row.created_by,
    policy,
  };
}

/** Latest version of every stored policy for a tenant. */
export async function listPolicies(db: Db, tenant: string): Promise<Omit<ResolvedPolicy, 'env'>[]> {
  const r = await db.query(
    `SELECT DISTINCT ON (env) env, version, document, checksum, created_at, created_by FROM promotion_policies WHERE tenant_id=$1 ORDER BY env, version DESC`,
    [tenant],
  );
  return r.rows.map((row) => ({
    source: row.env === '*' ? ('tenant-default' as const) : ('environment' as const),
    policyEnv: row.env,
    version: row.version,
    checksum: row.checksum,
    createdAt: new Date(row.created_at).toISOString(),
    createdBy: row.created_by,
    policy: policySchema.parse(row.document),
  }));
}

/** Stores a new version when the validated document differs from the latest one. Audited with the diff against the previous version. */
export async function setPolicy(
  db: Db,
  q: { tenant: string; env: string; text: string; actor: string },
): Promise<{
  env: string;
  version: number;
  checksum: string;
  changed: boolean;
  policy: PromotionPolicy;
  previousVersion?: number | null;
  diff?: PolicyChange[];
}> {
  if (q.env !== '*') validateEnv(q.env);
  const policy = parsePolicyDocument(q.text);
  const checksum = policyChecksum(policy);
  for (let attempt = 0; attempt < 3; attempt++) {
    const latest = await db.query('SELECT version, checksum, document FROM promotion_policies WHERE tenant_id=$1 AND env=$2 ORDER BY version DESC LIMIT 1', [
      q.tenant,
      q.env,
    ]);
    const prev = latest.rows[0];
    if (prev?.checksum === checksum) return { env: q.env, version: prev.version, checksum, changed: false, policy };
    const version = (prev?.version ?? 0) + 1;
    // The first version is compared with the built-in default (what applied before, absent a '*' policy).
    const before = prev ? (policySchema.safeParse(prev.document).data ?? prev.document) : DEFAULT_POLICY;
    const details = { version, checksum, previousVersion: prev?.version ?? null, previousChecksum: prev?.checksum ?? null, diff: policyDiff(before, policy) };
    const stored = await withTransaction(db, async (tx) => {
      const ins = await tx.query(
        `INSERT INTO promotion_policies (tenant_id, env, version, document, source, checksum, created_by) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING`,
        [q.tenant, q.env, version, JSON.stringify(policy), q.text, checksum, q.actor],
      );
      if (ins.rowCount === 1) await audit(tx, { tenant: q.tenant, actor: q.actor, action: 'promotion.policy.set', target: `env:${q.env}`, details });
      return ins.rowCount === 1;
    });
    if (stored) return { env: q.env, version, checksum, changed: true, policy, previousVersion: details.previousVersion, diff: details.diff };
    // A concurrent writer took this version number: read again and retry.
  }
  throw conflict(`policy for ${q.env} is being changed concurrently; try again`);
}

/**
 * A policy's PEM public key as the verifier sees it: its key id (RFC 7638 thumbprint, the same
 * kid stella's own keys have) and JWK. Null when the text is not a P-256 or Ed25519 public key.
 */
export function pemSignerKey(pem: string): { kid: string; info: KeyInfo } | null {
  try {
    const jwk = createPublicKey(pem).export({ format: 'jwk' }) as JWK;
    let members: Record<string, string>;
    let alg: KeyInfo['alg'];
    if (jwk.kty === 'EC' && jwk.crv === 'P-256') {
      members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x!, y: jwk.y! };
      alg = 'ES256';
    } else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
      members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x! };
      alg = 'EdDSA';
    } else return null;
    // RFC 7638: the required members in lexicographic order, no whitespace.
    const kid = createHash('sha256').update(JSON.stringify(members)).digest('base64url');
    return { kid, info: { alg, publicJwk: members as JWK, status: 'active' } };
  } catch {
    return null;
  }
}

/** Every PEM key the policies name, by key id (what evidence ingest also verifies against). */
export function pemKeysOf(policies: PromotionPolicy[]): Map<string, KeyInfo> {
  const out = new Map<string, KeyInfo>();
  for (const p of policies)
    for (const r of p.requirements)
      for (const s of r.signers ?? []) {
        if (typeof s === 'string') continue;
        const k = pemSignerKey(s.pem);
        if (k) out.set(k.kid, k.info);
      }
  return out;
}

/** How a signer rule reads in explanations: `rootpack`, `stella`, `key <kid>`, `pem <kid>`. */
export function signerLabel(s: PolicySigner): string {
  if (typeof s !== 'string') return `pem ${pemSignerKey(s.pem)?.kid ?? '(invalid)'}`;
  return s === 'rootpack' || s === 'stella' ? s : `key ${s}`;
}
