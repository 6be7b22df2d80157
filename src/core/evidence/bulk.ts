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

/**
 * Ingests `files` (relative to src.dir) from index `start` on, in chunks of one commit each;
 * `onProgress(done)` after every chunk lets an activity heartbeat and resume. Idempotent by
 * digest, so a retried chunk stores nothing twice.
 */
export async function ingestFiles(
  evidence: EvidenceService,
  src: BulkIngestSource,
  files: readonly string[],
  start: number,
  producer: Record<string, unknown>,
  onProgress: (done: number) => void,
): Promise<BulkBatchResult> {
  const out: BulkBatchResult = { created: 0, present: 0, bytes: 0, ids: [] };
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
      { concurrency: 8 },
    );
    for (const r of results) {
      if (r.created) out.created++;
      else out.present++;
      out.bytes += r.size;
      out.ids.push(r.id);
    }
    onProgress(i + chunk.length);
  }
  return out;
}
