/**
 * Every name stella gives Temporal: search-attribute keys, schedule ids, task queue defaults and
 * workflow-id builders. Pure (no I/O, no SDK runtime), so workflows, activities, the API and the
 * CLI all import the same values.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes registered on the namespace (dev server flags, or the operator API). */
export const SEARCH_ATTRIBUTES: Record<string, 'Keyword' | 'Text' | 'Int' | 'Datetime' | 'KeywordList'> = {
  StellaArtifactDigest: 'Keyword',
  StellaEnvironment: 'Keyword',
  StellaMissingEvidence: 'KeywordList',
  StellaPromotionState: 'Keyword',
  StellaTenant: 'Keyword',
};

/** Typed keys for upsert/read of the attributes above. */
export const SA = {
  artifact: defineSearchAttributeKey('StellaArtifactDigest', SearchAttributeType.KEYWORD),
  environment: defineSearchAttributeKey('StellaEnvironment', SearchAttributeType.KEYWORD),
  /** Evidence kinds a waiting promotion misses (`StellaMissingEvidence = 'sbom'` in the UI's filter). */
  missingEvidence: defineSearchAttributeKey('StellaMissingEvidence', SearchAttributeType.KEYWORD_LIST),
  promotionState: defineSearchAttributeKey('StellaPromotionState', SearchAttributeType.KEYWORD),
  tenant: defineSearchAttributeKey('StellaTenant', SearchAttributeType.KEYWORD),
} as const;

/**
 * The heavy task queue of a control queue: scans, full verification, backup compression and
 * restores run there, so workers with more CPU/memory (and fewer slots) can poll it separately.
 */
export function heavyTaskQueue(controlQueue: string): string {
  return `${controlQueue}-heavy`;
}

/** Ids of the Temporal Schedules stella creates at worker start. */
export const SCHEDULE_IDS = {
  integrityDaily: 'stella-integrity-daily',
  merkleAnchor: 'stella-merkle-anchor',
  retentionDaily: 'stella-retention-daily',
  replayNightly: 'stella-replay-nightly',
  backupDaily: 'stella-backup-daily',
} as const;

/** A sortable, unique suffix for ids of operator-started runs (`<prefix>-20261202T101500123Z-1a2b3c4d`). */
export function runStamp(now: Date, random8: string): string {
  return `${now.toISOString().replace(/[:.]/g, '')}-${random8}`;
}

/** scanThenAttest runs: one id per tenant and artifact, so concurrent requests join one run. */
export function scanWorkflowId(tenant: string, artifactDigest: string): string {
  return `scan-${tenant}-${artifactDigest.replace(/^sha256:/, '')}`;
}

/**
 * Whether `id` is a scan workflow id of exactly this tenant. A prefix test is not enough: tenant
 * `acme`'s prefix `scan-acme-` also starts tenant `acme-eu`'s ids.
 */
export function isScanWorkflowIdOf(tenant: string, id: string): boolean {
  const m = /^scan-(.+)-([0-9a-f]{64})$/.exec(id);
  return !!m && m[1] === tenant;
}

/** Promotions: one running promotion per tenant, target environment and artifact. */
export function promotionWorkflowId(tenant: string, toEnv: string, artifactDigest: string): string {
  return `promotion-${tenant}-${toEnv}-${artifactDigest.replace(/^sha256:/, '')}`;
}

/** Prefix of every promotion workflow id of a tenant (the tenant check for ids before their first task). */
export function promotionWorkflowIdPrefix(tenant: string): string {
  return `promotion-${tenant}-`;
}

/** On-demand anchoring run (`stella evidence anchor create`): `stella-merkle-anchor-manual-<stamp>`. */
export function anchorManualWorkflowId(now: Date, random8: string): string {
  return `stella-merkle-anchor-manual-${runStamp(now, random8)}`;
}

/** Operator-started nightly replay verification: `replay-nightly-manual-<epoch ms>`. */
export function replayNightlyManualWorkflowId(now: Date): string {
  return `replay-nightly-manual-${now.getTime()}`;
}

/** A backup's workflow id is its backup id (`bk-<time>-<hex>`), which also names its directory. */
export function backupWorkflowId(backupId: string): string {
  return backupId;
}

/** A restore's id and workflow id: `restore-20261202T101500123Z-1a2b3c4d`. */
export function restoreWorkflowId(now: Date, random8: string): string {
  return `restore-${runStamp(now, random8)}`;
}

/** The `verify --mode full` child workflow a restore runs. */
export function restoreVerifyWorkflowId(restoreId: string): string {
  return `${restoreId}-verify-full`;
}

/** Retention run ids (also the workflow id of a purge / dry run / tier move started by an operator). */
export function retentionRunId(kind: 'purge' | 'dryrun' | 'tier', now: Date, random8: string): string {
  return `retention-${kind}-${runStamp(now, random8)}`;
}

/** Run id of an `archive --delete-archived` purge (runs in the API, no workflow). */
export function archiveDeleteRunId(now: Date, random8: string): string {
  return `archive-delete-${runStamp(now, random8)}`;
}

/** Child workflow ids of the daily retention schedule: one tier move and one purge per tenant. */
export function retentionDailyChildId(parentId: string, tenant: string, step: 'tier' | 'purge'): string {
  return `${parentId}-${tenant}-${step}`;
}

/** Evidence index rebuild (`stella evidence index rebuild`): the op id is the workflow id. */
export function indexRebuildWorkflowId(now: Date, random8: string): string {
  return `index-rebuild-${runStamp(now, random8)}`;
}

/** Bulk ingest of a server-side directory or tar (`stella evidence ingest`). */
export function ingestWorkflowId(now: Date, random8: string): string {
  return `ingest-${runStamp(now, random8)}`;
}

/** Whether an id is a bulk-ingest workflow id (the status route refuses anything else). */
export function isIngestWorkflowId(id: string): boolean {
  return /^ingest-[A-Za-z0-9-]+$/.test(id);
}

/** On-demand integrity verification (`stella evidence verify`): the run id is the workflow id. */
export function verifyRunWorkflowId(mode: 'quick' | 'full', now: Date, random8: string): string {
  return `verify-${mode}-${runStamp(now, random8)}`;
}
