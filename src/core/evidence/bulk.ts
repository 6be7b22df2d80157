/** Bulk ingest of a directory tree (workflows/evidence.ts bulkIngest): listing and batched ingest of its files. */
import { promises as fsp } from 'node:fs';
import { extname, join } from 'node:path';
import { badInput } from '../../lib/errors';
import { walkFiles } from '../../lib/walk';
import type { EvidenceService } from './index';
import type { EvidenceKind } from './model';

export interface BulkIngestSource {
  tenant: string;
  dir: string;
  kind: EvidenceKind;
  artifact: string;
  mediaType?: string;
  actor: string;
}

export interface BulkBatchResult {
  created: number;
  present: number;
  bytes: number;
  ids: string[];
}

const MEDIA_BY_EXT: Record<string, string> = { '.json': 'application/json', '.txt': 'text/plain', '.xml': 'application/xml', '.log': 'text/plain' };

/** Files per ingest commit inside one activity batch (also the heartbeat/resume granularity). */
const CHUNK = 50;
/** Blob writes in flight: enough concurrent fsyncs for the filesystem journal to group them. */
const WRITES_IN_FLIGHT = 32;

/**
 * The regular files under `dir`, relative, sorted (so batches are stable across retries).
 * Symlinks and devices are skipped on purpose: ingestion reads only regular files inside the tree.
 */
export async function listSourceFiles(dir: string): Promise<string[]> {
  const st = await fsp.stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw badInput(`${dir} does not exist`, undefined, { cause: e });
    throw e;
  });
  if (!st.isDirectory()) throw badInput(`${dir} is not a directory`);
  const out: string[] = [];
  for await (const f of walkFiles(dir)) out.push(f.rel);
  return out;
}

/** Where a batch resumes: the next file and the counts of the files before it (so created + present = done). */
export interface BulkResume extends BulkBatchResult {
  next: number;
}

/**
 * Ingests `files` (relative to src.dir) from `resume.next` on, in chunks of one commit each;
 * `onProgress` after every chunk lets an activity heartbeat the counts so far and resume with
 * them. Idempotent by digest, so a retried chunk stores nothing twice.
 */
export async function ingestFiles(
  evidence: EvidenceService,
  src: BulkIngestSource,
  files: readonly string[],
  resume: BulkResume | undefined,
  producer: Record<string, unknown>,
  onProgress: (at: BulkResume) => void,
): Promise<BulkBatchResult> {
  const start = resume?.next ?? 0;
  const out: BulkBatchResult = { created: resume?.created ?? 0, present: resume?.present ?? 0, bytes: resume?.bytes ?? 0, ids: [...(resume?.ids ?? [])] };
  for (let i = start; i < files.length; i += CHUNK) {
    const chunk = files.slice(i, i + CHUNK);
    const results = await evidence.ingestMany(
      chunk.map((rel) => ({
        tenant: src.tenant,
        filePath: join(src.dir, rel),
        kind: src.kind,
        mediaType: src.mediaType ?? MEDIA_BY_EXT[extname(rel)] ?? 'application/octet-stream',
        subjects: [src.artifact],
        producer: { ...producer, source: rel, actor: src.actor },
      })),
      { concurrency: WRITES_IN_FLIGHT },
    );
    for (const r of results) {
      if (r.created) out.created++;
      else out.present++;
      out.bytes += r.size;
      out.ids.push(r.id);
    }
    onProgress({ ...out, next: i + chunk.length });
  }
  return out;
}
