/** HTTP contract of retention: legal holds, policies and tiers, purge / tier-move runs, temp cleanup, archive. */
import { z } from 'zod';
import { Digest, QueryBool } from './common';

/** An admin may act for another tenant with `?tenant=` (src/api/deps.ts tenantOf reads it after validation). */
const TenantQuery = { tenant: z.string().optional() };

// ---- legal holds ----------------------------------------------------------------------------

export const HoldScopeInput = z.enum(['items', 'artifact', 'tenant', 'bundle_type', 'bundle-type']);

export const HoldCreateBody = z.object({
  scope: HoldScopeInput,
  values: z.array(z.string()).max(10_000).optional(),
  reason: z.string().min(1).max(2000),
  incidentTicket: z.string().max(200).optional().nullable(),
});

export const Hold = z.object({
  id: z.string(),
  tenant: z.string(),
  scope: z.enum(['items', 'artifact', 'tenant', 'bundle_type']),
  values: z.array(z.string()),
  reason: z.string(),
  incidentTicket: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  releasedBy: z.string().nullable(),
  releasedAt: z.string().nullable(),
  releaseReason: z.string().nullable(),
  active: z.boolean(),
});
export type Hold = z.infer<typeof Hold>;

export const HoldListQuery = z.object({ all: QueryBool.optional(), item: Digest.optional(), ...TenantQuery });
export const HoldList = z.object({ holds: z.array(Hold) });
/** `?item=`: the ids of the active holds covering that item. */
export const HoldIdList = z.object({ holds: z.array(z.string()) });
export const HoldListAnswer = z.union([HoldList, HoldIdList]);

export const HoldParams = z.object({ id: z.string().min(1).max(200) });
export const HoldTimelineQuery = z.object({ ...TenantQuery });
export const HoldTimeline = z.object({
  hold: Hold,
  events: z.array(
    z.object({ at: z.string(), actor: z.string(), action: z.string(), reason: z.string().nullable(), details: z.record(z.string(), z.unknown()) }),
  ),
});
export type HoldTimeline = z.infer<typeof HoldTimeline>;
export const HoldReleaseBody = z.object({ reason: z.string().max(2000).optional() }).nullish();
export const HoldReleaseQuery = z.object({ reason: z.string().max(2000).optional(), ...TenantQuery });

// ---- policies and tiers ------------------------------------------------------------------------

/** A declaration (schemas/replay-retention.schema.json) or a DSSE envelope around one; core validates it. */
export const PolicyApplyBody = z.looseObject({}, { error: 'body must be a retention declaration or a DSSE envelope around one' });

export const Declaration = z.object({
  retention_policy_id: z.string(),
  tenant_id: z.string(),
  bundle_type: z.string(),
  retention_days: z.number(),
  legal_hold: z.boolean(),
  purge_after: z.string().nullable(),
  checksum: z.string(),
  created_at: z.string(),
});

export const PolicyApplied = z.object({ version: z.number().int(), changed: z.boolean(), declaration: Declaration, signedBy: z.string().nullable() });

export const Tiers = z.object({ hotDays: z.number().int(), coldDays: z.number().int() });
export const TiersView = Tiers.extend({ source: z.string() });
export const TiersBody = z.object({ hotDays: z.number().int().min(1).max(36500).optional(), coldDays: z.number().int().min(1).max(36500).optional() });

export const EffectivePolicy = z.object({
  bundleType: z.string(),
  policyId: z.string(),
  retentionDays: z.number().int(),
  legalHold: z.boolean(),
  purgeAfter: z.string().nullable(),
  source: z.enum(['declaration', 'tenant-wide declaration', 'default']),
  version: z.number().int().nullable(),
  checksum: z.string().nullable(),
  signedBy: z.string().nullable(),
});
export const EffectivePolicies = z.object({ tenant: z.string(), tiers: TiersView, policies: z.array(EffectivePolicy) });
/** The `retention` section of `stella evidence policy show`. */
export const RetentionPolicySection = EffectivePolicies.extend({ activeHolds: z.number().int() });
export type RetentionPolicySection = z.infer<typeof RetentionPolicySection>;

// ---- runs --------------------------------------------------------------------------------------

export const PurgeBody = z.object({
  dryRun: z.boolean().default(false),
  aggressive: z.boolean().default(false),
  reason: z.string().max(500).optional(),
  batchSize: z.number().int().min(1).max(5000).optional(),
});
export const TierMoveBody = z.object({ batchSize: z.number().int().min(1).max(2000).optional() }).nullish();

/** 202: the run id is also the workflow id. */
export const RunStarted = z.object({ runId: z.string(), workflowId: z.string() });

export const RunSummary = z.object({
  runId: z.string(),
  tenant: z.string(),
  kind: z.enum(['purge', 'tier-move', 'archive-delete']),
  dryRun: z.boolean(),
  aggressive: z.boolean(),
  status: z.string(),
  actor: z.string(),
  reason: z.string().nullable(),
  asOf: z.string(),
  items: z.number().int(),
  bytes: z.number(),
  bytesFreed: z.number(),
  skippedHeld: z.number().int(),
  skippedPromotion: z.number().int(),
  pendingBlobs: z.number().int(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
});
export type RunSummary = z.infer<typeof RunSummary>;

export const RunListQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(20), ...TenantQuery });
export const RunList = z.object({ runs: z.array(RunSummary) });

export const RunParams = z.object({ runId: z.string().min(1).max(300) });
export const RunProgress = z.object({
  runId: z.string(),
  phase: z.enum(['starting', 'planning', 'purging', 'moving', 'done']),
  items: z.number().int(),
  bytes: z.number(),
});
/** Workflow status (Temporal's name, or UNKNOWN when not found / not connected), live progress, and the run record. */
export const RunStatus = z.object({
  runId: z.string(),
  status: z.string(),
  progress: RunProgress.nullable(),
  run: RunSummary.nullable(),
  /** Why it failed: the root cause's message (src/temporal/failure.ts). */
  error: z.string().nullable().optional(),
  /** The failure's StellaError code (BAD_INPUT, INTEGRITY…): the CLI's exit code follows it. */
  errorCode: z.string().nullable().optional(),
});

export const RunItemsQuery = z.object({ limit: z.coerce.number().int().min(1).max(10_000).optional(), after: z.string().optional(), ...TenantQuery });
export const RunItem = z.object({
  id: z.string(),
  kind: z.string(),
  size: z.number(),
  tier: z.string(),
  policyId: z.string(),
  reason: z.string(),
  blobShared: z.boolean(),
  blobDone: z.boolean(),
});
export const RunItems = z.object({ items: z.array(RunItem), next: z.string().nullable() });

// ---- cleanup and archive ------------------------------------------------------------------------

export const CleanupTempBody = z.object({ dryRun: z.boolean().default(false), olderThanMinutes: z.number().int().min(0).max(100_000).optional() });
export const CleanupTempResult = z.object({
  dryRun: z.boolean(),
  olderThanMs: z.number(),
  results: z.array(z.object({ where: z.string(), removed: z.number().int(), bytes: z.number() })),
  removed: z.number().int(),
  bytes: z.number(),
});

export const ArchiveQuery = z.object({
  olderThanDays: z.coerce
    .number({ error: 'olderThanDays must be a whole number of days' })
    .int('olderThanDays must be a whole number of days')
    .min(0, 'olderThanDays must be a whole number of days'),
  ...TenantQuery,
});
export const ArchivePlan = z.object({ items: z.number().int(), bytes: z.number(), skippedReplayBundles: z.number().int() });

export const ArchiveDeleteBody = z.object({ ids: z.array(Digest).min(1).max(10_000), manifestSha256: Digest });
export const ArchiveDeleted = RunSummary.extend({ keptIds: z.array(z.string()) });
