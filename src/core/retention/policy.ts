import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv, { type ValidateFunction } from 'ajv';
import type { Db } from '../../db/pool';
import { withTransaction } from '../../db/pool';
import type { AppContext } from '../context';
import { canonicalJson } from '../../lib/canonical';
import { sha256Digest } from '../../lib/hash';
import { badInput, integrity, StellaError } from '../../lib/errors';
import { audit } from '../audit';
import { EVIDENCE_KINDS } from '../evidence';
import { parseEnvelope, verifyEnvelope, envelopePayload, type Envelope } from '../../crypto/dsse';
import { exportRootPack, rootPackResolver } from '../../crypto/rootpack';
import { SIGNING_PURPOSE } from '../keys';
import { getSetting, putSetting } from '../settings/settings';
import type { Queryable } from '../evidence/state';
import { countActiveHolds } from './holds';
import type { DeclaredPolicy, Tiers } from './decide';

export type { Tiers };

/**
 * Retention declarations (schemas/replay-retention.schema.json).
 *
 * checksum = 'sha256:' + hex SHA-256 of canonicalJson(declaration without its `checksum`
 * field) (src/lib/canonical.ts, RFC 8785 subset). It is recomputed on every load, so a
 * declaration edited after it was checksummed is refused. A declaration may arrive wrapped
 * in a DSSE envelope (payloadType DECLARATION_PAYLOAD_TYPE); the envelope must then verify
 * against the RootPack of this installation (a currently trusted 'signing' key).
 */
export const SCHEMA_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'schemas', 'replay-retention.schema.json');
export const DECLARATION_PAYLOAD_TYPE = 'application/vnd.stella.retention-declaration+json';
export const BUNDLE_TYPES = ['*', ...EVIDENCE_KINDS] as const;

/** Tier defaults (runbook: hot CAS 180 days, cold Evidence Locker 2 years). */
export const DEFAULT_HOT_DAYS = 180;
export const DEFAULT_COLD_DAYS = 730;
export const TIERS_SETTING = 'retention.tiers';

export interface RetentionDeclaration {
  retention_policy_id: string;
  tenant_id: string;
  bundle_type: string;
  retention_days: number;
  legal_hold: boolean;
  purge_after: string | null;
  checksum: string;
  created_at: string;
}

let validator: ValidateFunction | null = null;
function validate(): ValidateFunction {
  if (validator) return validator;
  const ajv = new Ajv({ allErrors: false, strict: true });
  // RFC 3339 date-time, checked by parsing (ajv-formats is not a declared dependency).
  ajv.addFormat('date-time', {
    type: 'string',
    validate: (s: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s) && !Number.isNaN(Date.parse(s)),
  });
  validator = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')));
  return validator;
}

/** The checksum a declaration must carry: sha256 of its canonical JSON without `checksum`. */
export function declarationChecksum(d: Omit<RetentionDeclaration, 'checksum'> & { checksum?: string }): string {
  const { checksum: _omit, ...rest } = d;
  return sha256Digest(canonicalJson(rest));
}

/** Schema-validates and checksum-checks a plain declaration object. */
export function checkDeclaration(value: unknown): RetentionDeclaration {
  const v = validate();
  if (!v(value)) {
    const e = v.errors![0]!;
    throw badInput(
      `retention declaration does not match schemas/replay-retention.schema.json: ${e.instancePath || '(root)'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${(e.params as { additionalProperty: string }).additionalProperty})` : ''}`,
    );
  }
  const d = value as RetentionDeclaration;
  const want = declarationChecksum(d);
  if (d.checksum !== want)
    throw integrity(`retention declaration ${d.retention_policy_id}: checksum mismatch (declared ${d.checksum}, content hashes to ${want}); refused`);
  return d;
}

export interface LoadedDeclaration {
  declaration: RetentionDeclaration;
  envelope: Envelope | null;
  signedBy: string | null;
}

/** Accepts a declaration or a DSSE envelope around one; verifies signature, schema and checksum. */
export async function loadDeclaration(ctx: AppContext, input: unknown): Promise<LoadedDeclaration> {
  if (input && typeof input === 'object' && 'payloadType' in input && 'signatures' in input) {
    const env = parseEnvelope(input);
    if (env.payloadType !== DECLARATION_PAYLOAD_TYPE) throw badInput(`DSSE payloadType ${env.payloadType} is not ${DECLARATION_PAYLOAD_TYPE}`);
    const pack = await exportRootPack(ctx.keys);
    const r = verifyEnvelope(env, rootPackResolver(pack, { purpose: SIGNING_PURPOSE }));
    if (!r.ok)
      throw integrity(
        `retention declaration envelope does not verify against the RootPack: ${r.signatures.map((s) => `${s.keyid}: ${s.reason}`).join('; ') || 'no signatures'}`,
      );
    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(envelopePayload(env)).toString('utf8'));
    } catch {
      throw badInput('DSSE payload is not JSON');
    }
    const signedBy = r.signatures.find((s) => s.valid && s.trusted)!.keyid;
    return { declaration: checkDeclaration(payload), envelope: env, signedBy };
  }
  return { declaration: checkDeclaration(input), envelope: null, signedBy: null };
}

/**
 * Stores a declaration as the next version for (tenant, bundle_type); unchanged content
 * (same checksum as the current version) is a no-op. The declaration's tenant must be the
 * caller's tenant.
 */
export async function applyDeclaration(
  ctx: AppContext,
  q: { tenant: string; input: unknown; actor: string },
): Promise<{ version: number; changed: boolean; declaration: RetentionDeclaration; signedBy: string | null }> {
  const { declaration: d, envelope, signedBy } = await loadDeclaration(ctx, q.input);
  if (d.tenant_id !== q.tenant) throw new StellaError('FORBIDDEN', `declaration is for tenant ${d.tenant_id}, request is for ${q.tenant}`);
  return withTransaction(ctx.db, async (tx) => {
    // Serialise appliers of the same series so versions stay dense.
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`retention:${q.tenant}:${d.bundle_type}`]);
    const cur = await tx.query('SELECT version, checksum FROM retention_policies WHERE tenant_id=$1 AND bundle_type=$2 ORDER BY version DESC LIMIT 1', [
      q.tenant,
      d.bundle_type,
    ]);
    if (cur.rowCount && cur.rows[0].checksum === d.checksum) return { version: cur.rows[0].version as number, changed: false, declaration: d, signedBy };
    const version = cur.rowCount ? (cur.rows[0].version as number) + 1 : 1;
    await tx.query(
      `INSERT INTO retention_policies (tenant_id, bundle_type, version, retention_policy_id, retention_days, legal_hold, purge_after, checksum, declaration, envelope, signed_by, declared_at, applied_by)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
      [
        q.tenant,
        d.bundle_type,
        version,
        d.retention_policy_id,
        d.retention_days,
        d.legal_hold,
        d.purge_after,
        d.checksum,
        JSON.stringify(d),
        envelope ? JSON.stringify(envelope) : null,
        signedBy,
        d.created_at,
        q.actor,
      ],
    );
    await audit(tx, {
      tenant: q.tenant,
      actor: q.actor,
      action: 'retention.policy.applied',
      target: d.retention_policy_id,
      reason: `bundle type ${d.bundle_type}: ${d.retention_days} days${d.legal_hold ? ', legal hold' : ''}`,
      details: { version, checksum: d.checksum, signedBy, bundleType: d.bundle_type },
    });
    return { version, changed: true, declaration: d, signedBy };
  });
}

export async function getTiers(q: Queryable, tenant: string): Promise<Tiers & { source: 'default' | 'tenant' }> {
  const v = await getSetting<Partial<Tiers>>(q, tenant, TIERS_SETTING);
  if (!v) return { hotDays: DEFAULT_HOT_DAYS, coldDays: DEFAULT_COLD_DAYS, source: 'default' };
  return { hotDays: v.hotDays ?? DEFAULT_HOT_DAYS, coldDays: v.coldDays ?? DEFAULT_COLD_DAYS, source: 'tenant' };
}

export async function setTiers(db: Db, tenant: string, t: Partial<Tiers>, actor: string): Promise<Tiers> {
  const cur = await getTiers(db, tenant);
  const next = { hotDays: t.hotDays ?? cur.hotDays, coldDays: t.coldDays ?? cur.coldDays };
  for (const [k, v] of Object.entries(next))
    if (!Number.isInteger(v) || v < 1 || v > 36500) throw badInput(`${k} must be a whole number of days between 1 and 36500`);
  if (next.hotDays > next.coldDays) throw badInput(`hot retention (${next.hotDays} days) cannot exceed cold retention (${next.coldDays} days)`);
  await withTransaction(db, async (tx) => {
    await putSetting(tx, tenant, TIERS_SETTING, next);
    await audit(tx, {
      tenant,
      actor,
      action: 'retention.tiers.set',
      target: tenant,
      details: { ...next, previous: { hotDays: cur.hotDays, coldDays: cur.coldDays } },
    });
  });
  return next;
}

interface PolicyRow {
  bundle_type: string;
  version: number;
  retention_policy_id: string;
  retention_days: number;
  legal_hold: boolean;
  purge_after: Date | null;
  purge_after_us: number | null;
  checksum: string;
  signed_by: string | null;
}

/** The latest version of each bundle type's declaration for a tenant. */
async function latestPolicyRows(q: Queryable, tenant: string): Promise<PolicyRow[]> {
  const r = await q.query<PolicyRow>(
    `SELECT DISTINCT ON (bundle_type) bundle_type, version, retention_policy_id, retention_days, legal_hold, purge_after,
            (extract(epoch FROM purge_after) * 1000000)::bigint AS purge_after_us, checksum, signed_by
     FROM retention_policies WHERE tenant_id=$1 ORDER BY bundle_type, version DESC`,
    [tenant],
  );
  return r.rows;
}

/** Latest declaration per bundle type (including '*'): the policy facts of retention decisions. */
export async function declaredPolicies(q: Queryable, tenant: string): Promise<Map<string, DeclaredPolicy>> {
  const rows = await latestPolicyRows(q, tenant);
  return new Map(
    rows.map((x) => [
      x.bundle_type,
      {
        bundleType: x.bundle_type,
        policyId: x.retention_policy_id,
        retentionDays: x.retention_days,
        legalHold: x.legal_hold,
        purgeAfterUs: x.purge_after_us === null ? null : Number(x.purge_after_us),
      },
    ]),
  );
}

export interface EffectivePolicy {
  bundleType: string;
  policyId: string;
  retentionDays: number;
  legalHold: boolean;
  purgeAfter: string | null;
  source: 'declaration' | 'tenant-wide declaration' | 'default';
  version: number | null;
  checksum: string | null;
  signedBy: string | null;
}

/** What applies to each bundle type of a tenant: its own declaration, else '*', else the tier default. */
export async function effectivePolicies(db: Db, tenant: string): Promise<{ tenant: string; tiers: Tiers & { source: string }; policies: EffectivePolicy[] }> {
  const tiers = await getTiers(db, tenant);
  const by = new Map((await latestPolicyRows(db, tenant)).map((x) => [x.bundle_type, x]));
  const view = (bt: string, row: PolicyRow | undefined, source: EffectivePolicy['source']): EffectivePolicy =>
    row
      ? {
          bundleType: bt,
          policyId: row.retention_policy_id,
          retentionDays: row.retention_days,
          legalHold: row.legal_hold,
          purgeAfter: row.purge_after ? new Date(row.purge_after).toISOString() : null,
          source,
          version: row.version,
          checksum: row.checksum,
          signedBy: row.signed_by,
        }
      : {
          bundleType: bt,
          policyId: 'default',
          retentionDays: tiers.coldDays,
          legalHold: false,
          purgeAfter: null,
          source: 'default',
          version: null,
          checksum: null,
          signedBy: null,
        };
  const star = by.get('*');
  const policies = EVIDENCE_KINDS.map((k) =>
    by.has(k) ? view(k, by.get(k), 'declaration') : star ? view(k, star, 'tenant-wide declaration') : view(k, undefined, 'default'),
  );
  return { tenant, tiers, policies };
}

/** The `retention` section of `stella evidence policy show` (shared with the promotion policy view). */
export async function retentionPolicySection(db: Db, tenant: string) {
  const e = await effectivePolicies(db, tenant);
  return { ...e, activeHolds: await countActiveHolds(db, tenant) };
}
