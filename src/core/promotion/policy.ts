import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Db } from '../../db/pool';
import { canonicalJson } from '../../lib/canonical';
import { sha256Digest } from '../../lib/hash';
import { badInput, conflict } from '../../lib/errors';
import { audit } from '../audit';
import { parseDuration } from '../../config';
import { SLSA_PROVENANCE_V1 } from '../../crypto/intoto';

/**
 * Promotion policy per target environment: which evidence a promotion needs, how old it may
 * be, whether missing evidence is generated automatically, how long a promotion waits for
 * it, and whether a manual approval is required. Documents are YAML or JSON, validated here,
 * and versioned in promotion_policies (a new version only when the content changes).
 */

const duration = z.string().regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration such as 30m, 24h or 30d');
const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ -');
const count = z.number().int().min(0);

const sbomReq = z.strictObject({
  kind: z.literal('sbom'),
  name: name.default('sbom'),
  required: z.boolean().default(true),
  format: z.enum(['cyclonedx']).default('cyclonedx'),
  maxAge: duration.optional(),
});
const scanReq = z.strictObject({
  kind: z.literal('scan-report'),
  name: name.default('vulnerability-scan'),
  required: z.boolean().default(true),
  /** Maximum findings per severity; omitted severities are not limited. */
  thresholds: z.strictObject({ critical: count.optional(), high: count.optional(), medium: count.optional(), low: count.optional() }).prefault({ critical: 0 }),
  maxAge: duration.optional(),
});
const attestationReq = z.strictObject({
  kind: z.literal('attestation'),
  name: name.default('provenance'),
  required: z.boolean().default(true),
  predicateType: z.string().min(1).default(SLSA_PROVENANCE_V1),
  /** The DSSE envelope must carry a valid signature by a key trusted in the RootPack. */
  trustedSigner: z.boolean().default(true),
  maxAge: duration.optional(),
});
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
  .refine((p) => new Set(p.requirements.map((r) => r.name)).size === p.requirements.length, 'requirement names must be unique');

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
      checksum: policyChecksum(DEFAULT_POLICY),
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

/** Stores a new version when the validated document differs from the latest one. Audited. */
export async function setPolicy(
  db: Db,
  q: { tenant: string; env: string; text: string; actor: string },
): Promise<{ env: string; version: number; checksum: string; changed: boolean; policy: PromotionPolicy }> {
  if (q.env !== '*') validateEnv(q.env);
  const policy = parsePolicyDocument(q.text);
  const checksum = policyChecksum(policy);
  for (let attempt = 0; attempt < 3; attempt++) {
    const latest = await db.query('SELECT version, checksum FROM promotion_policies WHERE tenant_id=$1 AND env=$2 ORDER BY version DESC LIMIT 1', [
      q.tenant,
      q.env,
    ]);
    if (latest.rows[0]?.checksum === checksum) return { env: q.env, version: latest.rows[0].version, checksum, changed: false, policy };
    const version = (latest.rows[0]?.version ?? 0) + 1;
    const ins = await db.query(
      `INSERT INTO promotion_policies (tenant_id, env, version, document, source, checksum, created_by) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING`,
      [q.tenant, q.env, version, JSON.stringify(policy), q.text, checksum, q.actor],
    );
    if (ins.rowCount === 1) {
      await audit(db, { tenant: q.tenant, actor: q.actor, action: 'promotion.policy.set', target: `env:${q.env}`, details: { version, checksum } });
      return { env: q.env, version, checksum, changed: true, policy };
    }
    // A concurrent writer took this version number: read again and retry.
  }
  throw conflict(`policy for ${q.env} is being changed concurrently; try again`);
}
