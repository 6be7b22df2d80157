/** HTTP contract of the evidence routes (src/api/routes/evidence.ts): ingest, list, metadata. */
import { z } from 'zod';
import { Digest } from './common';

/** `?artifact=a&artifact=b` or `?artifact=a,b`: one or more values. */
const Many = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) => (v === undefined ? [] : (Array.isArray(v) ? v : v.split(',')).filter(Boolean)));

/** POST /evidence (raw body): what the query string says about the upload. */
export const PutEvidenceQuery = z.looseObject({
  kind: z.string().default(''),
  artifact: Many,
  parent: Many,
  relation: z.string().optional(),
  predicateType: z.string().optional(),
  producer: z.string().optional(),
  tenant: z.string().optional(),
});

export const IngestResult = z.object({
  id: Digest,
  size: z.number(),
  created: z.boolean(),
  alreadyPresent: z.boolean(),
  logSeq: z.number().nullable(),
});
export type IngestResult = z.infer<typeof IngestResult>;

const Link = z.object({ id: z.string(), relation: z.string() });

export const EvidenceItem = z.object({
  tenant: z.string(),
  id: Digest,
  mediaType: z.string(),
  kind: z.string(),
  predicateType: z.string().nullable(),
  size: z.number(),
  producer: z.record(z.string(), z.unknown()),
  labels: z.record(z.string(), z.string()),
  tier: z.string(),
  state: z.string(),
  stateReason: z.string().nullable(),
  createdAt: z.string(),
  subjects: z.array(z.string()),
  parents: z.array(Link),
  children: z.array(Link),
  logSeq: z.number().nullable(),
  /** How the item was made: signed (verified DSSE, `signer` = key id), produced-by-stella, uploaded (unsigned). */
  provenance: z.enum(['signed', 'produced-by-stella', 'uploaded']),
  signer: z.string().nullable(),
});
export type EvidenceItem = z.infer<typeof EvidenceItem>;

export const ListEvidenceQuery = z.object({
  artifact: z.string().optional(),
  kind: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  cursor: z.string().optional(),
  all: z.enum(['true', 'false']).optional(),
  tenant: z.string().optional(),
});

export const EvidenceList = z.object({ items: z.array(EvidenceItem), nextCursor: z.string().nullable() });
export type EvidenceList = z.infer<typeof EvidenceList>;

export const EvidenceIdParams = z.object({ id: z.string() });

/** GET /evidence/:id/exists: the index row and the blob (stat by default; deep=true re-hashes it). */
export const ExistsQuery = z.object({ deep: z.enum(['true', 'false']).optional(), tenant: z.string().optional() });
export const Existence = z.object({
  id: z.string(),
  indexed: z.boolean(),
  state: z.string().nullable(),
  kind: z.string().nullable(),
  size: z.number().nullable(),
  blob: z.enum(['present', 'intact', 'missing', 'size-mismatch', 'hash-mismatch']).nullable(),
  check: z.enum(['stat', 'hash']),
  exists: z.boolean(),
});
export type Existence = z.infer<typeof Existence>;
