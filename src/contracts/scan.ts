/**
 * HTTP contract of scanning: scans and their status/queue, registry push events, scanner
 * config, the image catalogue and advisory feeds. Response objects are loose so a field added
 * on the server never disappears on the way out; querystrings are loose so `?tenant=` passes.
 */
import { z } from 'zod';
import { Digest } from './common';

const Counts = z.record(z.string(), z.number());

// ---- scans

export const ScanBody = z.object({
  /** Catalogue name, absolute path on the worker, artifact digest, or registry reference (host/repo:tag, host/repo@sha256:…). */
  image: z.string().min(1).max(4096),
  sbomOnly: z.boolean().optional(),
  /** `spdx`: also store the SBOM as an SPDX 2.3 JSON document (the CycloneDX 1.6 SBOM is always stored). */
  sbomFormat: z.enum(['cyclonedx', 'spdx']).optional(),
  force: z.boolean().optional(),
  /** For a registry reference naming a multi-platform index: os/arch[/variant] (default: linux and the worker's architecture). */
  platform: z
    .string()
    .regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, 'expected os/arch[/variant], e.g. linux/amd64')
    .optional(),
  /** Speak plain HTTP to the reference's registry host (that host only). */
  insecureRegistry: z.boolean().optional(),
});

export const ScanStarted = z.looseObject({
  workflowId: z.string(),
  runId: z.string(),
  artifactDigest: z.string(),
  imageRef: z.string().nullable(),
  imagePath: z.string(),
  joined: z.boolean(),
  superseded: z.string().nullable(),
  message: z.string(),
});
export type ScanStarted = z.infer<typeof ScanStarted>;

export const ScanProgress = z.looseObject({
  scanId: z.string(),
  phase: z.string(),
  artifactDigest: z.string().nullable(),
  imageRef: z.string().nullable(),
  sbomId: z.string().nullable(),
  spdxId: z.string().nullable().optional(),
  reportId: z.string().nullable(),
  attestationIds: z.array(z.string()),
  components: z.number().nullable(),
  counts: Counts.nullable(),
  feed: z.looseObject({ version: z.number(), digest: z.string() }).nullable(),
  warnings: z.array(z.string()),
  reusedFrom: z.string().nullable(),
  error: z.string().nullable(),
  replayManifest: z.string().nullable().optional(),
});
export type ScanProgress = z.infer<typeof ScanProgress>;

export const ScanRun = z.looseObject({
  scanId: z.string(),
  workflowId: z.string(),
  artifactDigest: z.string(),
  imageRef: z.string().nullable(),
  imagePath: z.string().nullable(),
  imageFormat: z.string().nullable(),
  trigger: z.string(),
  requestedBy: z.string(),
  sbomOnly: z.boolean(),
  force: z.boolean(),
  feedVersion: z.number().nullable(),
  feedDigest: z.string().nullable(),
  scanner: z.looseObject({ name: z.string(), version: z.string() }),
  scanTime: z.string(),
  sbomId: z.string().nullable(),
  reportId: z.string().nullable(),
  attestationIds: z.array(z.string()),
  counts: Counts.nullable(),
  components: z.number().nullable(),
  warnings: z.array(z.string()),
  status: z.string(),
  reusedFrom: z.string().nullable(),
  error: z.string().nullable(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
});
export type ScanRun = z.infer<typeof ScanRun>;

export const ScanStatusQuery = z.looseObject({ workflowId: z.string().min(1), runId: z.string().optional() });
export const ScanStatus = z.looseObject({
  workflowId: z.string(),
  runId: z.string(),
  status: z.string(),
  progress: ScanProgress.nullable(),
  error: z.string().nullable(),
  errorType: z.string().nullable(),
  /** The failure's StellaError code (BAD_INPUT, INTEGRITY…): the CLI's exit code follows it. */
  errorCode: z.string().nullable().optional(),
  run: ScanRun.nullable(),
});
export type ScanStatus = z.infer<typeof ScanStatus>;

/** `limit` is clamped to 1..500 by the server. */
export const ScanRunsQuery = z.looseObject({ artifact: Digest.optional(), limit: z.coerce.number().int().optional() });
export const ScanRunList = z.looseObject({ items: z.array(ScanRun.extend({ temporalStatus: z.string().nullable() })) });

export const AutoScanConfig = z.looseObject({ enabled: z.boolean(), triggers: z.array(z.string()) });

export const ScanEvent = z.looseObject({
  id: z.number(),
  trigger: z.string(),
  repository: z.string().nullable(),
  tag: z.string().nullable(),
  artifact: z.string().nullable(),
  image: z.string().nullable(),
  status: z.string(),
  reason: z.string().nullable(),
  receivedAt: z.string(),
});

export const ScanQueueQuery = z.looseObject({ artifact: Digest.optional() });
export const ScanQueue = z.looseObject({
  workflows: z.array(
    z.looseObject({
      workflowId: z.string(),
      runId: z.string(),
      status: z.string(),
      startTime: z.string(),
      artifact: z.string().nullable(),
      progress: ScanProgress.nullable(),
    }),
  ),
  events: z.array(ScanEvent),
  autoScan: AutoScanConfig,
});

// ---- registry push events

export const PushEventBody = z.object({
  repository: z.string().max(512).optional(),
  tag: z.string().max(256).optional(),
  digest: Digest.optional(),
  image: z.string().max(4096).optional(),
});
export const PushResult = z.looseObject({
  eventId: z.number(),
  status: z.enum(['ignored', 'queued', 'failed', 'started']),
  reason: z.string().optional(),
  workflowId: z.string().optional(),
  runId: z.string().optional(),
  artifactDigest: z.string().optional(),
  joined: z.boolean().optional(),
});

// ---- scanner config

export const ScanEngine = z.enum(['builtin', 'syft', 'trivy']);

export const FeedVersion = z.looseObject({
  version: z.number(),
  digest: z.string(),
  records: z.number(),
  ecosystems: z.array(z.string()),
  size: z.number(),
  source: z.string().nullable(),
  importedAt: z.string(),
  importedBy: z.string().nullable(),
});

export const ScannerConfig = z.looseObject({
  auto_scan: AutoScanConfig,
  engine: ScanEngine,
  scanner: z.looseObject({ name: z.string(), version: z.string() }),
  feed: FeedVersion.nullable(),
});
export const ScannerConfigSetBody = z.object({ key: z.string().min(1), value: z.string() });
export const ScannerConfigSet = z.looseObject({ auto_scan: AutoScanConfig, engine: ScanEngine });

// ---- image catalogue

export const CatalogueImage = z.looseObject({
  name: z.string(),
  path: z.string(),
  digest: z.string(),
  format: z.string().nullable(),
  registeredAt: z.string(),
  registeredBy: z.string().nullable(),
});
export const RegisterImageBody = z.object({ name: z.string().min(1), path: z.string().min(1) });
export const RegisteredImage = CatalogueImage.extend({
  replaced: CatalogueImage.nullable(),
  queuedScans: z.looseObject({ eventIds: z.array(z.number()), workflowId: z.string() }).nullable(),
});
export const ImageList = z.looseObject({ items: z.array(CatalogueImage) });

// ---- advisory feeds

export const FeedImported = FeedVersion.extend({ created: z.boolean() });
export const FeedList = z.looseObject({ items: z.array(FeedVersion) });
