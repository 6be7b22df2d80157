/**
 * HTTP contract of backups and restores (DR-001, DR-002), storage provisioning, offline evidence
 * packs and the diagnostics bundle: /backups*, /evidence/restore*, /evidence/storage/provision,
 * /evidence/export, /evidence/diagnostics. Response objects are loose so a field added on the
 * server never disappears on the way out.
 */
import { z } from 'zod';
import { QueryBool } from './common';

const TYPE_MESSAGE = 'only --type evidence-locker is supported';
export const BackupType = z.literal('evidence-locker', { message: TYPE_MESSAGE });

// ---- requests

export const CreateBackupBody = z
  .object({
    type: BackupType.default('evidence-locker'),
    /** Backup root: a directory or s3://bucket[/prefix]; default Backup:Path. */
    outputDir: z.string().min(1).optional(),
  })
  .nullish();
export const ListBackupsQuery = z.object({ type: BackupType.optional(), dir: z.string().min(1).optional() });
export const BackupIdParams = z.object({ id: z.string().min(1) });
export const BackupStatusQuery = z.object({ dir: z.string().min(1).optional() });

export const ProvisionBody = z.object({ size: z.string().min(1), path: z.string().min(1).optional() });

export const RestoreBody = z
  .object({
    backupId: z.string().min(1).optional(),
    backupDir: z.string().min(1).optional(),
    target: z.string().min(1).optional(),
    toAnchor: z.string().min(1).optional(),
  })
  .refine((b) => b.backupId || b.toAnchor, { message: 'give --backup-id <id> and/or --to-anchor <anchor-id>' });
export const RestoreIdParams = z.object({ id: z.string().min(1) });

export const ExportPackQuery = z.object({
  digest: z.string({ message: 'query parameter digest=<artifact digest> is required' }).min(1),
  includeDeps: QueryBool.optional(),
  /** Archive compression: tar (none), gz (default) or zst. */
  format: z.enum(['tar', 'gz', 'zst']).optional(),
  tenant: z.string().optional(),
});

export const DiagnosticsQuery = z.object({ auditLimit: z.coerce.number().int().optional(), tenant: z.string().optional() });

// ---- responses

export const LatestAnchor = z.looseObject({ id: z.string(), seq: z.number(), logSize: z.number(), rootHash: z.string(), createdAt: z.string() });

export const BackupSummary = z.looseObject({
  id: z.string(),
  type: z.string(),
  /** running | complete | failed | incomplete (S3 without a manifest). */
  status: z.string(),
  createdAt: z.string(),
  finishedAt: z.string().nullish(),
  location: z.string(),
  sizeBytes: z.number(),
  items: z.number(),
  blobs: z.number(),
  blobBytes: z.number(),
  logSize: z.number(),
  latestAnchor: LatestAnchor.nullable(),
  manifestSha256: z.string().nullish(),
  problems: z.array(z.looseObject({ id: z.string(), problem: z.string() })).optional(),
});
export type BackupSummary = z.infer<typeof BackupSummary>;

export const BackupAccepted = z.looseObject({ backupId: z.string(), workflowId: z.string(), location: z.string() });
export const BackupList = z.looseObject({ location: z.string(), backups: z.array(BackupSummary) });

/** A workflow's state as the status routes report it: Temporal status, the progress query, the result or the innermost error. */
const workflowStatus = <T extends z.ZodType>(result: T) =>
  z.looseObject({
    id: z.string(),
    status: z.string(),
    running: z.boolean(),
    progress: z.record(z.string(), z.union([z.number(), z.string(), z.null()])).nullable(),
    result: result.nullable(),
    error: z.string().nullable(),
    /** The failure's StellaError code (BAD_INPUT, INTEGRITY…): the CLI's exit code follows it. */
    errorCode: z.string().nullable().optional(),
  });

export const BackupStatus = workflowStatus(BackupSummary);
export type BackupStatus = z.infer<typeof BackupStatus>;

export const ProvisionResult = z.looseObject({
  path: z.string(),
  requestedBytes: z.number(),
  availableBytes: z.number().nullable(),
  created: z.boolean(),
  ok: z.literal(true),
});

export const RestoreAccepted = z.looseObject({ restoreId: z.string(), workflowId: z.string() });

const VerifyWorkflowCheck = z.looseObject({
  kind: z.literal('verify-workflow'),
  runId: z.string(),
  status: z.string(),
  checked: z.number(),
  ok: z.number(),
  failed: z.number(),
});
const TargetRehashCheck = z.looseObject({
  kind: z.literal('target-rehash'),
  checked: z.number(),
  ok: z.number(),
  failed: z.number(),
  failures: z.array(z.looseObject({ id: z.string(), result: z.string() })),
});
export const AnchorCheck = z.looseObject({
  ok: z.boolean(),
  anchors: z.number(),
  checked: z.number(),
  firstBreak: z.unknown(),
  chains: z.array(z.looseObject({ id: z.string(), status: z.string(), anchors: z.number(), checked: z.number(), ok: z.boolean() })),
  rootsMatchBackup: z.boolean().nullable(),
  mismatches: z.array(z.string()),
});
export const PointInTimeResult = z.looseObject({
  anchorId: z.string(),
  logSize: z.number(),
  rootHash: z.string(),
  quarantined: z.number(),
  alreadyQuarantined: z.number(),
  anchorsArchived: z.number(),
});
export const RestoreOutcome = z.looseObject({
  restoreId: z.string(),
  backupId: z.string().nullable(),
  outcome: z.enum(['passed', 'failed']),
  target: z.string(),
  items: z.number(),
  logSize: z.number(),
  blobsRestored: z.number(),
  verify: z.discriminatedUnion('kind', [VerifyWorkflowCheck, TargetRehashCheck]).nullable(),
  anchors: AnchorCheck.nullable(),
  pointInTime: PointInTimeResult.nullable(),
  nextSteps: z.array(z.string()),
});
export type RestoreOutcome = z.infer<typeof RestoreOutcome>;

export const RestoreStatus = workflowStatus(RestoreOutcome);
export type RestoreStatus = z.infer<typeof RestoreStatus>;

export const Diagnostics = z.looseObject({ generatedAt: z.string(), tenant: z.string(), files: z.record(z.string(), z.string()) });
