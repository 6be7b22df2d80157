import { canonicalJson } from '../lib/canonical';
import { leafHash } from './hash';
import { MerkleError } from './errors';

/**
 * Canonical leaf encoding for evidence log entries. The leaf bytes are what the Merkle tree
 * commits to, so the same entry must always encode to the same bytes: canonical JSON, a
 * version field, subjects sorted and de-duplicated, time normalised to ISO-8601 UTC with
 * milliseconds. decodeLeaf accepts only bytes that re-encode identically.
 */

export const LEAF_VERSION = 1;

export interface EvidenceLeaf {
  /** Evidence item id (normally its sha256:<hex> digest). */
  id: string;
  /** Evidence kind, e.g. "sbom" or "attestation". */
  kind: string;
  /** Subjects the evidence is about (e.g. image digests); order-insensitive. */
  subjects: string[];
  tenant: string;
  /** When the entry was logged: ISO-8601 UTC, e.g. 2024-05-01T12:00:00.000Z. */
  time: string;
}

export interface EvidenceLeafInput extends Omit<EvidenceLeaf, 'time' | 'subjects'> {
  subjects: readonly string[];
  time: string | Date;
}

function nonEmptyString(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new MerkleError('BAD_LEAF', `leaf ${field} must be a non-empty string`);
  return v;
}

function normaliseTime(t: unknown): string {
  const d = t instanceof Date ? t : typeof t === 'string' ? new Date(t) : undefined;
  if (!d || Number.isNaN(d.getTime())) throw new MerkleError('BAD_LEAF', 'leaf time must be a valid date or ISO-8601 string');
  return d.toISOString();
}

/** Validate and normalise an entry into its canonical in-memory form. */
export function normaliseLeaf(entry: EvidenceLeafInput): EvidenceLeaf {
  if (!entry || typeof entry !== 'object') throw new MerkleError('BAD_LEAF', 'leaf entry must be an object');
  if (!Array.isArray(entry.subjects)) throw new MerkleError('BAD_LEAF', 'leaf subjects must be an array');
  const subjects = [...new Set(entry.subjects.map((s, i) => nonEmptyString(s, `subjects[${i}]`)))].sort();
  return {
    id: nonEmptyString(entry.id, 'id'),
    kind: nonEmptyString(entry.kind, 'kind'),
    subjects,
    tenant: nonEmptyString(entry.tenant, 'tenant'),
    time: normaliseTime(entry.time),
  };
}

/** Canonical leaf bytes: canonicalJson({ v, id, kind, subjects (sorted), tenant, time }). */
export function encodeLeaf(entry: EvidenceLeafInput): Buffer {
  return Buffer.from(canonicalJson({ v: LEAF_VERSION, ...normaliseLeaf(entry) }), 'utf8');
}

/** Decode leaf bytes; throws unless they are exactly the canonical encoding of a v1 entry. */
export function decodeLeaf(bytes: Uint8Array): EvidenceLeaf {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new MerkleError('BAD_LEAF', 'leaf bytes are not JSON');
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new MerkleError('BAD_LEAF', 'leaf must be a JSON object');
  const obj = raw as Record<string, unknown>;
  if (obj.v !== LEAF_VERSION) throw new MerkleError('BAD_LEAF', `unsupported leaf version ${String(obj.v)}`);
  const allowed = new Set(['v', 'id', 'kind', 'subjects', 'tenant', 'time']);
  for (const k of Object.keys(obj)) if (!allowed.has(k)) throw new MerkleError('BAD_LEAF', `unexpected leaf field ${k}`);
  const leaf = normaliseLeaf(obj as unknown as EvidenceLeafInput);
  // Reject non-canonical bytes (whitespace, key order, unsorted subjects, non-normal time):
  // two different byte strings for one entry would give two different leaf hashes.
  // Compared as bytes so invalid UTF-8 (decoded to U+FFFD above) cannot slip through.
  if (!Buffer.from(canonicalJson({ v: LEAF_VERSION, ...leaf }), 'utf8').equals(bytes))
    throw new MerkleError('BAD_LEAF', 'leaf bytes are not in canonical form');
  return leaf;
}

/** Merkle leaf hash of an entry: SHA-256(0x00 ‖ encodeLeaf(entry)). */
export function evidenceLeafHash(entry: EvidenceLeafInput): Buffer {
  return leafHash(encodeLeaf(entry));
}
