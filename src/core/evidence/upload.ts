/** POST /evidence: an upload streamed once to the spool (hashed, fsynced), checked against what the client declared, then ingested by rename. */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { badInput, StellaError } from '../../lib/errors';
import type { EvidenceService } from './index';
import { type IngestResult, validateDigest, validateKind } from './model';
import { provenanceOfUpload } from './signed';
import { spoolUpload } from './spool';
import type { Db } from '../../db/pool';
import type { KeyStore } from '../../crypto/keys';

export interface Upload {
  tenant: string;
  body: NodeJS.ReadableStream;
  /** X-Stella-Digest, when the client sent one. */
  declaredDigest?: string;
  /** Content-Length, when known: refused up front if over the limit. */
  declaredLength?: number;
  contentType?: string;
  kind: string;
  subjects: string[];
  parents: string[];
  relation?: string;
  predicateType?: string;
  producer: Record<string, unknown>;
}

/** Uploads up to this size are also kept in memory while spooled (the envelope check reads them from there). */
const KEEP_IN_MEMORY = 256 * 1024;

/** Checks the metadata before a byte is read, so a bad request never spools anything. */
function checkUpload(u: Upload, maxBytes: number) {
  const kind = validateKind(u.kind);
  if (!u.subjects.length) throw badInput('query parameter artifact=<sha256:…> is required');
  for (const s of u.subjects) validateDigest(s, 'artifact digest');
  const parents = u.parents.map((id) => ({ id: validateDigest(id, 'parent id'), relation: u.relation ?? 'derived-from' }));
  if (u.declaredDigest) validateDigest(u.declaredDigest, 'X-Stella-Digest');
  if ((u.declaredLength ?? 0) > maxBytes)
    throw new StellaError('TOO_LARGE', `upload of ${u.declaredLength} bytes exceeds the limit of ${maxBytes} bytes; nothing stored`);
  return { kind, parents };
}

/** What an upload needs from the process: the evidence service, the spool's place and limit, and what signatures are checked against. */
export interface UploadDeps {
  evidence: EvidenceService;
  cfg: { dataDir: string; maxUploadBytes: number };
  db: Db;
  keys: KeyStore;
}

export async function ingestUpload(ctx: UploadDeps, u: Upload): Promise<IngestResult> {
  const { kind, parents } = checkUpload(u, ctx.cfg.maxUploadBytes);
  const spool = await spoolUpload(u.body, join(ctx.cfg.dataDir, 'spool'), ctx.cfg.maxUploadBytes, { sync: true, keepBytes: KEEP_IN_MEMORY });
  try {
    if (spool.size === 0) throw badInput('empty upload');
    if (u.declaredDigest && u.declaredDigest !== spool.digest)
      throw badInput(`digest mismatch: X-Stella-Digest says ${u.declaredDigest}, content hashes to ${spool.digest}; nothing stored`);
    const mediaType = (u.contentType ?? 'application/octet-stream').split(';')[0]!.trim();
    // A DSSE envelope is verified before anything is stored (signed.ts); other bytes are 'uploaded'.
    const signed = await provenanceOfUpload(ctx, {
      tenant: u.tenant,
      kind,
      mediaType,
      subjects: u.subjects,
      size: spool.size,
      read: () => (spool.data ? Promise.resolve(spool.data) : fsp.readFile(spool.path)),
      ...(u.predicateType ? { predicateType: u.predicateType } : {}),
    });
    return await ctx.evidence.ingest({
      tenant: u.tenant,
      filePath: spool.path,
      spooled: { digest: spool.digest, size: spool.size },
      kind,
      mediaType,
      subjects: u.subjects,
      parents,
      predicateType: signed.predicateType,
      producer: u.producer,
      provenance: signed.provenance,
    });
  } finally {
    await fsp.rm(spool.path, { force: true });
  }
}
