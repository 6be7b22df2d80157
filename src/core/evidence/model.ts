/** Evidence item vocabulary: kinds, ingest input/result, item shapes, validation and the log leaf. */
import { badInput } from '../../lib/errors';
import { isDigest } from '../../lib/hash';
import { encodeLeaf } from '../../merkle/leaf';

export const EVIDENCE_KINDS = ['sbom', 'scan-report', 'vex', 'attestation', 'replay-bundle', 'log', 'other'] as const;
export type EvidenceKind = (typeof EVIDENCE_KINDS)[number];

/**
 * How an evidence item was made (decided at ingest, never changed afterwards):
 * `signed` — a DSSE envelope whose signature verified against a known key (`signer`);
 * `produced-by-stella` — made by a stella workflow (scan-then-attest); `signer` is stella's key
 * for the attestations it signed, null for the raw scanner outputs they attest;
 * `uploaded` — unsigned bytes.
 */
export const PROVENANCES = ['signed', 'produced-by-stella', 'uploaded'] as const;
export type ProvenanceKind = (typeof PROVENANCES)[number];
export interface Provenance {
  kind: ProvenanceKind;
  signer: string | null;
}

export interface IngestInput {
  tenant: string;
  /** Either the bytes or a local file with them (streamed). */
  data?: Buffer;
  filePath?: string;
  /** When given, the content must hash to this digest or nothing is stored. */
  expectedDigest?: string;
  /**
   * `filePath` is a private temp file this process wrote, hashed and fsynced as it arrived
   * (spool.ts): ingest trusts this digest and size and moves the file into the store instead of
   * reading it again. Never set from anything a client sent.
   */
  spooled?: { digest: string; size: number };
  mediaType: string;
  kind: EvidenceKind;
  subjects: string[];
  predicateType?: string;
  producer?: Record<string, unknown>;
  parents?: { id: string; relation?: string }[];
  labels?: Record<string, string>;
  /** Decided by the caller that verified it (upload, attest); 'uploaded' when omitted. */
  provenance?: Provenance;
}

export interface IngestResult {
  id: string;
  size: number;
  /** false when the same bytes were already indexed for this tenant (idempotent ingest). */
  created: boolean;
  alreadyPresent: boolean;
  logSeq: number | null;
}

export interface EvidenceItem {
  tenant: string;
  id: string;
  mediaType: string;
  kind: EvidenceKind;
  predicateType: string | null;
  size: number;
  producer: Record<string, unknown>;
  labels: Record<string, string>;
  tier: string;
  state: string;
  stateReason: string | null;
  createdAt: string;
  subjects: string[];
  parents: { id: string; relation: string }[];
  children: { id: string; relation: string }[];
  logSeq: number | null;
  provenance: ProvenanceKind;
  signer: string | null;
}

export type EvidenceHead = Pick<EvidenceItem, 'id' | 'kind' | 'mediaType' | 'size' | 'state' | 'stateReason' | 'tier'>;

export function validateDigest(d: string, what = 'digest'): string {
  if (!isDigest(d)) throw badInput(`malformed ${what} ${JSON.stringify(d)}: expected sha256:<64 lowercase hex>`);
  return d;
}

export function validateKind(k: string): EvidenceKind {
  if (!(EVIDENCE_KINDS as readonly string[]).includes(k))
    throw badInput(`unknown evidence kind ${JSON.stringify(k)}: expected one of ${EVIDENCE_KINDS.join(', ')}`);
  return k as EvidenceKind;
}

/** Checks an ingest input's metadata (not its bytes); throws BAD_INPUT naming the first problem. */
export function validateIngestInput(input: IngestInput): void {
  validateKind(input.kind);
  if (!input.data && !input.filePath) throw badInput('no content given');
  if (!input.subjects.length) throw badInput('at least one subject artifact digest is required');
  for (const s of input.subjects) validateDigest(s, 'artifact digest');
  if (!input.mediaType || input.mediaType.length > 255) throw badInput('media type is required');
  for (const p of input.parents ?? []) validateDigest(p.id, 'parent id');
}

/** Leaf bytes for the evidence Merkle log: the Merkle library's one canonical leaf encoding. */
export function evidenceLeaf(e: { id: string; kind: string; subjects: string[]; tenant: string; time: string }): Buffer {
  return encodeLeaf(e);
}
