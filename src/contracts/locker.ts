/**
 * HTTP contract of the Evidence Locker runbook routes (src/api/routes/locker.ts and verify.ts):
 * status, store health, provenance, chain, index, storage, repair, bulk ingest, verification.
 * Response objects are loose: fields the CLI reads are typed, anything else passes through.
 */
import { z } from 'zod';

const Flag = z
  .enum(['true', 'false'])
  .optional()
  .transform((v) => v === 'true');
const Tenant = z.string().optional();
const Count = z.object({ key: z.string(), items: z.number(), bytes: z.number() });
const Capacity = z.object({ totalBytes: z.number(), availableBytes: z.number() }).nullable();

export const IdParams = z.object({ id: z.string() });
export const OpIdParams = z.object({ opId: z.string() });
export const WorkflowIdParams = z.object({ workflowId: z.string() });
export const RunIdParams = z.object({ runId: z.string() });

// ---- verification ------------------------------------------------------------------------
export const VerifyStartBody = z
  .object({
    mode: z.enum(['quick', 'full']).default('quick'),
    sampleRate: z.number().gt(0).max(1).optional(),
    allTenants: z.boolean().optional(),
    toAnchor: z.string().optional(),
    maxLogSize: z.number().int().nonnegative().optional(),
    batchSize: z.number().int().min(1).max(10_000).optional(),
  })
  .default({ mode: 'quick' });
export const VerifyStarted = z.object({ runId: z.string(), workflowId: z.string() });

export const VerifySummary = z.object({
  runId: z.string(),
  mode: z.string(),
  status: z.string(),
  tenant: z.string(),
  total: z.number(),
  checked: z.number(),
  ok: z.number(),
  failed: z.number(),
  /** Failures an operator acknowledged (stella evidence acknowledge / mark-corrupted): listed, not failing the run. */
  acknowledged: z.number().optional(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  toAnchor: z.string().nullable(),
  byResult: z.record(z.string(), z.number()).optional(),
});
export const VerifyProgress = z.object({
  runId: z.string(),
  mode: z.string(),
  total: z.number(),
  checked: z.number(),
  scanned: z.number(),
  ok: z.number(),
  failed: z.number(),
  phase: z.enum(['items', 'unindexed', 'done']),
});
export const VerifyRunStatus = z.object({
  runId: z.string(),
  status: z.string(),
  progress: VerifyProgress.nullable(),
  result: VerifySummary.nullable(),
  /** Why it failed: the root cause's message (src/temporal/failure.ts). */
  error: z.string().nullable().optional(),
  /** The failure's StellaError code (BAD_INPUT, INTEGRITY…): the CLI's exit code follows it. */
  errorCode: z.string().nullable().optional(),
});
export const VerifyReportQuery = z.object({ runId: z.string().optional(), filter: z.string().optional(), tenant: Tenant });
export const VerifyReport = VerifySummary.extend({
  byResult: z.record(z.string(), z.number()),
  results: z.array(
    z.looseObject({
      id: z.string(),
      result: z.string(),
      detail: z.string().nullable(),
      checkedAt: z.string(),
      acknowledged: z.object({ reason: z.string().nullable(), actor: z.string().nullable(), at: z.string().nullable() }).nullable().optional(),
    }),
  ),
});

// ---- status, store, provenance, chain ----------------------------------------------------
const StoreState = z.object({
  kind: z.string(),
  location: z.string(),
  healthy: z.boolean(),
  latencyMs: z.number().nullable(),
  error: z.string().nullable(),
});
export const LockerStatus = z.looseObject({
  tenant: z.string(),
  healthy: z.boolean(),
  items: z.number(),
  bytes: z.number(),
  byKind: z.array(z.object({ kind: z.string(), items: z.number(), bytes: z.number() })),
  byState: z.record(z.string(), z.number()),
  store: StoreState.extend({ capacity: Capacity }),
  replica: StoreState.nullable(),
  index: z.object({ bytes: z.number() }),
  log: z.object({ size: z.number(), tenantEntries: z.number(), lastAppendedAt: z.string().nullable() }),
  latestVerify: VerifySummary.nullable(),
  /** The newest anchor's summary, `{ none: true }` before the first one. */
  latestAnchor: z.looseObject({ none: z.literal(true).optional() }),
  /** Open acknowledged integrity failures (stella evidence acknowledge / mark-corrupted). */
  acknowledged: z
    .object({ open: z.number(), items: z.array(z.object({ id: z.string(), reason: z.string(), actor: z.string(), acknowledgedAt: z.string() })) })
    .optional(),
});

export const Probe = z.object({
  role: z.string(),
  kind: z.string(),
  location: z.string(),
  ok: z.boolean(),
  connectivityMs: z.number().nullable(),
  error: z.string().optional(),
  steps: z.array(z.object({ op: z.string(), ok: z.boolean(), ms: z.number(), error: z.string().optional() })),
});
export type Probe = z.infer<typeof Probe>;
export const StoreHealth = z.object({ healthy: z.boolean(), replicaConfigured: z.boolean(), stores: z.array(Probe) });
export const StorageTest = z.object({ ok: z.boolean(), stores: z.array(Probe) });

const GraphNode = z.object({
  id: z.string(),
  via: z.string(),
  relation: z.string(),
  depth: z.number(),
  kind: z.string().nullable(),
  state: z.string().nullable(),
});
export const Provenance = z.looseObject({
  id: z.string(),
  kind: z.string(),
  state: z.string(),
  stateReason: z.string().nullable(),
  createdAt: z.string(),
  producer: z.record(z.string(), z.unknown()),
  subjects: z.array(z.string()),
  ancestors: z.array(GraphNode),
  descendants: z.array(GraphNode),
  log: z.object({ seq: z.number(), leafHash: z.string(), appendedAt: z.string() }).nullable(),
  audit: z.array(z.looseObject({ at: z.string(), actor: z.string(), action: z.string(), reason: z.string().nullable() })),
  verifyHistory: z.array(z.looseObject({ runId: z.string(), result: z.string(), detail: z.string().nullable(), checkedAt: z.string() })),
});

export const ChainQuery = z.object({ artifact: z.string({ error: 'artifact=<sha256:…> is required' }), tenant: Tenant });
const ChainItem = z.object({
  id: z.string(),
  state: z.string(),
  predicateType: z.string().nullable(),
  createdAt: z.string(),
  linkedTo: z.array(z.string()),
});
export const Chain = z.looseObject({
  artifact: z.string(),
  complete: z.boolean(),
  missing: z.array(z.string()),
  nodes: z.array(
    z.object({
      key: z.string(),
      label: z.string(),
      status: z.enum(['present', 'missing', 'unusable']),
      items: z.array(ChainItem),
      expectedParent: z.string().nullable(),
      linked: z.boolean().nullable(),
      remedy: z.string().nullable(),
    }),
  ),
  other: z.array(z.looseObject({ id: z.string(), kind: z.string(), predicateType: z.string().nullable(), state: z.string(), createdAt: z.string() })),
  itemCount: z.number(),
});

// ---- index ---------------------------------------------------------------------------------
const OpSummary = z.looseObject({ id: z.string(), status: z.string(), actor: z.string(), startedAt: z.string(), finishedAt: z.string().nullable() });
export const IndexStatusQuery = z.object({ full: Flag, sample: z.coerce.number().int().min(1).max(1_000_000).optional(), tenant: Tenant });
export const IndexStatus = z.looseObject({
  tenant: z.string(),
  healthy: z.boolean(),
  rows: z.object({
    items: z.number(),
    subjects: z.number(),
    edges: z.number(),
    logEntries: z.number(),
    quarantined: z.number(),
    corrupted: z.number(),
  }),
  danglingEdges: z.object({ parentNotIndexed: z.number(), childNotIndexed: z.number() }),
  itemsWithoutSubjects: z.number(),
  itemsWithoutLogLeaf: z.number(),
  blobs: z.object({ scanned: z.number(), unindexed: z.number(), mode: z.string(), complete: z.boolean() }),
  indexBytes: z.number(),
  lastRebuild: OpSummary.nullable(),
  lastRefresh: OpSummary.nullable(),
  lastOptimize: OpSummary.nullable(),
});

export const RefreshBody = z.object({ dryRun: z.boolean().optional() }).default({});
export const RefreshResult = z.looseObject({
  opId: z.string().nullable(),
  dryRun: z.boolean(),
  checked: z.number(),
  changed: z.number(),
  markedCorrupted: z.number(),
  restored: z.number(),
  danglingEdges: z.number(),
  changes: z.array(z.object({ id: z.string(), from: z.string(), to: z.string(), reason: z.string() })),
});

export const OpStarted = z.object({ opId: z.string(), workflowId: z.string() });
export const RebuildTotals = z.looseObject({
  scanned: z.number(),
  reindexed: z.number(),
  alreadyIndexed: z.number(),
  damaged: z.number(),
  damagedIds: z.array(z.string()),
  reindexedIds: z.array(z.string()),
});
export const RebuildStatus = z.object({
  opId: z.string(),
  workflowStatus: z.string(),
  status: z.string(),
  cursor: z.string().nullable(),
  result: z.looseObject({ scanned: z.number().optional(), reindexed: z.number().optional(), error: z.string().optional() }),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});

export const OptimizeResult = z.looseObject({
  opId: z.string(),
  tables: z.array(z.object({ table: z.string(), ms: z.number() })),
  bytesBefore: z.number(),
  bytesAfter: z.number(),
});

export const IndexLookup = z.looseObject({
  id: z.string(),
  indexed: z.boolean(),
  rows: z.array(
    z.looseObject({
      tenant: z.string(),
      kind: z.string(),
      mediaType: z.string(),
      size: z.number(),
      state: z.string(),
      stateReason: z.string().nullable(),
      tier: z.string(),
      createdAt: z.string(),
      logSeq: z.number().nullable(),
    }),
  ),
  blob: z.looseObject({ location: z.string(), present: z.boolean(), size: z.number().nullable(), modifiedAt: z.string().nullable() }),
  replica: z.looseObject({ location: z.string(), present: z.boolean(), size: z.number().nullable() }).nullable(),
});

// ---- storage -------------------------------------------------------------------------------
export const StorageStatsQuery = z.object({ allTenants: Flag, tenant: Tenant });
export const StorageStats = z.looseObject({
  scope: z.string(),
  store: z.object({ kind: z.string(), location: z.string(), capacity: Capacity }),
  replica: z.object({ kind: z.string(), location: z.string() }).nullable(),
  totals: z.object({ blobs: z.number(), bytes: z.number() }),
  byKind: z.array(Count),
  byTier: z.array(Count),
  byTenant: z.array(Count),
  byState: z.array(Count),
  tempFiles: z.object({ count: z.number(), bytes: z.number() }),
  spool: z.object({ dir: z.string(), files: z.number(), bytes: z.number() }),
});

const BlobCheck = z.looseObject({
  location: z.string(),
  result: z.string(),
  size: z.number().nullable(),
  actual: z.string().nullable(),
  error: z.string().optional(),
});
export const StorageCheck = z.looseObject({
  id: z.string(),
  ok: z.boolean(),
  indexed: z.object({ size: z.number(), state: z.string(), stateReason: z.string().nullable(), tier: z.string() }).nullable(),
  primary: BlobCheck,
  replica: BlobCheck.nullable(),
});

export const StorageAnalyzeQuery = z.object({
  sort: z.enum(['size', 'age']).default('size'),
  limit: z.coerce.number().int().min(1).max(1000).default(20),
  allTenants: Flag,
  tenant: Tenant,
});
export const StorageAnalyze = z.looseObject({
  sort: z.string(),
  limit: z.number(),
  items: z.array(
    z.looseObject({
      tenant: z.string(),
      id: z.string(),
      kind: z.string(),
      size: z.number(),
      tier: z.string(),
      state: z.string(),
      createdAt: z.string(),
    }),
  ),
});

// ---- repair --------------------------------------------------------------------------------
export const MarkCorruptedBody = z.object({ reason: z.string({ error: 'reason is required' }) });
export const MarkCorruptedResult = z.looseObject({ id: z.string(), previousState: z.string(), state: z.string(), reason: z.string() });
/** area replay: the copy in the replay area (verify-report's `replay/<digest>`), from the locker's own blob by default. */
export const RecoverBody = z.object({ source: z.string().optional(), area: z.enum(['locker', 'replay']).optional() }).default({});
export const AcknowledgeBody = z.object({ id: z.string({ error: 'id is required' }), reason: z.string({ error: 'reason is required' }) });
export const Acknowledgement = z.object({
  id: z.string(),
  reason: z.string(),
  actor: z.string(),
  acknowledgedAt: z.string(),
  resolution: z.enum(['repaired', 'tombstoned']).nullable(),
  resolvedAt: z.string().nullable(),
});
export const AcknowledgementQuery = z.object({ tenant: Tenant });
export const AcknowledgementList = z.object({ acknowledgements: z.array(Acknowledgement) });
export const TombstoneResult = z.object({ id: z.string(), previousState: z.string(), state: z.string(), reason: z.string() });
export const RecoverResult = z.looseObject({
  id: z.string(),
  recovered: z.boolean(),
  source: z.string(),
  replica: z.string(),
  previousState: z.string(),
  primaryWas: z.string(),
  state: z.string(),
  bytes: z.number(),
});
export const RetryStoreBody = z.object({ artifact: z.string({ error: 'artifact is required' }) });
export const RetryStoreResult = z.looseObject({
  opId: z.string(),
  artifact: z.string(),
  checked: z.number(),
  retried: z.number(),
  unrecoverable: z.number(),
  outcomes: z.array(z.object({ id: z.string(), action: z.string(), detail: z.string() })),
});

// ---- bulk ingest ---------------------------------------------------------------------------
export const BulkIngestBody = z.object({
  path: z.string().min(1),
  artifact: z.string(),
  kind: z.string(),
  mediaType: z.string().max(255).optional(),
  batchSize: z.number().int().min(1).max(5000).optional(),
});
export const BulkIngestStarted = z.object({ workflowId: z.string() });
export const BulkIngestProgress = z.object({ total: z.number(), done: z.number(), created: z.number(), present: z.number(), bytes: z.number() });
export const BulkIngestStatus = z.object({
  workflowId: z.string(),
  status: z.string(),
  progress: BulkIngestProgress.nullable(),
  result: BulkIngestProgress.nullable(),
  /** Why it failed: the root cause's message ("entry ../../etc/passwd escapes the archive"). */
  error: z.string().nullable(),
  /** The failure's StellaError code (BAD_INPUT, INTEGRITY…): the CLI's exit code follows it. */
  errorCode: z.string().nullable().optional(),
});

/** `wait`: seconds to wait for the ingest to end before answering with its progress (0–30). */
export const BulkIngestStatusQuery = z.object({ wait: z.coerce.number().int().min(0).max(30).optional() });

export const LatestOpQuery = z.object({ op: z.enum(['index.refresh', 'index.rebuild', 'index.optimize', 'retry-store']), tenant: Tenant });
export const LatestOp = z.looseObject({
  id: z.string().optional(),
  status: z.string().optional(),
  actor: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().nullable().optional(),
  result: z.record(z.string(), z.unknown()).optional(),
});

export type IdParams = z.infer<typeof IdParams>;
export type OpIdParams = z.infer<typeof OpIdParams>;
export type WorkflowIdParams = z.infer<typeof WorkflowIdParams>;
export type RunIdParams = z.infer<typeof RunIdParams>;
export type VerifyStartBody = z.infer<typeof VerifyStartBody>;
export type VerifyStarted = z.infer<typeof VerifyStarted>;
export type VerifySummary = z.infer<typeof VerifySummary>;
export type VerifyProgress = z.infer<typeof VerifyProgress>;
export type VerifyRunStatus = z.infer<typeof VerifyRunStatus>;
export type VerifyReportQuery = z.infer<typeof VerifyReportQuery>;
export type VerifyReport = z.infer<typeof VerifyReport>;
export type LockerStatus = z.infer<typeof LockerStatus>;
export type StoreHealth = z.infer<typeof StoreHealth>;
export type StorageTest = z.infer<typeof StorageTest>;
export type Provenance = z.infer<typeof Provenance>;
export type ChainQuery = z.infer<typeof ChainQuery>;
export type Chain = z.infer<typeof Chain>;
export type IndexStatusQuery = z.infer<typeof IndexStatusQuery>;
export type IndexStatus = z.infer<typeof IndexStatus>;
export type RefreshBody = z.infer<typeof RefreshBody>;
export type RefreshResult = z.infer<typeof RefreshResult>;
export type OpStarted = z.infer<typeof OpStarted>;
export type RebuildTotals = z.infer<typeof RebuildTotals>;
export type RebuildStatus = z.infer<typeof RebuildStatus>;
export type OptimizeResult = z.infer<typeof OptimizeResult>;
export type IndexLookup = z.infer<typeof IndexLookup>;
export type StorageStatsQuery = z.infer<typeof StorageStatsQuery>;
export type StorageStats = z.infer<typeof StorageStats>;
export type StorageCheck = z.infer<typeof StorageCheck>;
export type StorageAnalyzeQuery = z.infer<typeof StorageAnalyzeQuery>;
export type StorageAnalyze = z.infer<typeof StorageAnalyze>;
export type MarkCorruptedBody = z.infer<typeof MarkCorruptedBody>;
export type MarkCorruptedResult = z.infer<typeof MarkCorruptedResult>;
export type RecoverBody = z.infer<typeof RecoverBody>;
export type RecoverResult = z.infer<typeof RecoverResult>;
export type AcknowledgeBody = z.infer<typeof AcknowledgeBody>;
export type Acknowledgement = z.infer<typeof Acknowledgement>;
export type RetryStoreBody = z.infer<typeof RetryStoreBody>;
export type RetryStoreResult = z.infer<typeof RetryStoreResult>;
export type BulkIngestBody = z.infer<typeof BulkIngestBody>;
export type BulkIngestStarted = z.infer<typeof BulkIngestStarted>;
export type BulkIngestProgress = z.infer<typeof BulkIngestProgress>;
export type BulkIngestStatus = z.infer<typeof BulkIngestStatus>;
export type BulkIngestStatusQuery = z.infer<typeof BulkIngestStatusQuery>;
export type LatestOpQuery = z.infer<typeof LatestOpQuery>;
export type LatestOp = z.infer<typeof LatestOp>;
