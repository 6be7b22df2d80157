/**
 * The scan feature's shared shapes: what scanThenAttest is started with, the context its
 * steps pass along (ids and digests, never blobs), and the progress it reports. Pure types,
 * so the workflow imports them type-only.
 */
import type { ScanEngine } from './external';

export type ScanTrigger = 'promote' | 'push' | 'manual';

/** SBOM formats a scan stores: CycloneDX 1.6 always; `spdx` also stores an SPDX 2.3 JSON document. */
export type SbomFormat = 'cyclonedx' | 'spdx';

export interface ScanThenAttestInput {
  tenant: string;
  artifactDigest?: string;
  imageRef?: string;
  sbomOnly?: boolean;
  /** `spdx`: also store the SBOM as an SPDX 2.3 JSON document (the CycloneDX one stays the scan's SBOM). */
  sbomFormat?: SbomFormat;
  force?: boolean;
  requestedBy: string;
  trigger?: ScanTrigger;
  /** The pinned registry reference's host may be spoken to over plain HTTP (`--insecure-registry`). */
  insecureRegistry?: boolean;
}

export interface ScanFeedPin {
  version: number;
  digest: string;
  records: number;
  importedAt: string;
}

export interface ScanContext {
  tenant: string;
  scanId: string;
  workflowId: string;
  artifactDigest: string;
  imagePath: string;
  imageRef: string | null;
  imageFormat: string;
  trigger: string;
  requestedBy: string;
  sbomOnly: boolean;
  /** From the request (not recorded in the run row): `spdx` also stores an SPDX 2.3 document. */
  sbomFormat?: SbomFormat;
  force: boolean;
  scanTime: string;
  feed: ScanFeedPin | null;
  /** Which tool lists the packages (scanner config `engine`); pinned for the whole run. */
  engine?: ScanEngine;
  /** imagePath is a pinned registry reference whose host the request allowed over plain HTTP. */
  insecureRegistry?: boolean;
}

export type ScanPhase = 'resolving' | 'scanning' | 'matching' | 'attesting' | 'done' | 'failed' | 'reused';

export type ScanProgress = {
  scanId: string;
  phase: ScanPhase;
  artifactDigest: string | null;
  imageRef: string | null;
  sbomId: string | null;
  /** The SPDX 2.3 document stored beside the CycloneDX SBOM (--sbom-format spdx). */
  spdxId?: string | null;
  reportId: string | null;
  attestationIds: string[];
  components: number | null;
  counts: Record<string, number> | null;
  feed: { version: number; digest: string } | null;
  warnings: string[];
  reusedFrom: string | null;
  error: string | null;
  /** The signed replay manifest recorded for this run (evidence id). */
  replayManifest?: string | null;
};

export type ReportCounts = { critical: number; high: number; medium: number; low: number; unknown: number; none: number };
