import { createHash } from 'node:crypto';
import { promises as fsp, createReadStream } from 'node:fs';
import { join, relative, extname } from 'node:path';
import { heartbeat, activityInfo, ApplicationFailure } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { StellaError } from '../src/lib/errors';
import type { EvidenceKind } from '../src/core/evidence';

export interface BulkIngestSource {
  tenant: string;
  dir: string;
  kind: EvidenceKind;
  artifact: string;
  mediaType?: string;
  actor: string;
}

const MEDIA_BY_EXT: Record<string, string> = { '.json': 'application/json', '.txt': 'text/plain', '.xml': 'application/xml', '.log': 'text/plain' };

/** StellaErrors are decisions, not transient faults: fail the activity without retrying. */
export function nonRetryable(e: unknown): never {
  if (e instanceof StellaError) throw ApplicationFailure.nonRetryable(e.message, e.code, e.details);
  throw e;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(relative(dir, p));
      // symlinks and devices are skipped on purpose: ingestion reads only regular files inside the tree
    }
  };
  await walk(dir);
  return out.sort();
}

export function createEvidenceActivities(ctx: AppContext) {
  return {
    /** Lists the regular files of a bulk-ingest directory (sorted, so batches are stable across retries). */
    async bulkListSource(src: BulkIngestSource): Promise<string[]> {
      try {
        const st = await fsp.stat(src.dir);
        if (!st.isDirectory()) throw new StellaError('BAD_INPUT', `${src.dir} is not a directory`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') nonRetryable(new StellaError('BAD_INPUT', `${src.dir} does not exist`));
        nonRetryable(e);
      }
      return listFiles(src.dir);
    },

    /** Ingests one batch; idempotent by digest, so a retried batch re-ingests nothing twice. */
    async bulkIngestBatch(src: BulkIngestSource, files: string[]): Promise<{ created: number; present: number; bytes: number; ids: string[] }> {
      const start = (activityInfo().heartbeatDetails as number | undefined) ?? 0;
      let created = 0;
      let present = 0;
      let bytes = 0;
      const ids: string[] = [];
      for (let i = start; i < files.length; i++) {
        const path = join(src.dir, files[i]!);
        try {
          const r = await ctx.evidence.ingest({
            tenant: src.tenant,
            filePath: path,
            kind: src.kind,
            mediaType: src.mediaType ?? MEDIA_BY_EXT[extname(path)] ?? 'application/octet-stream',
            subjects: [src.artifact],
            producer: { type: 'bulk-ingest', workflowId: activityInfo().workflowExecution?.workflowId ?? 'unknown', source: files[i], actor: src.actor },
          });
          if (r.created) created++;
          else present++;
          bytes += r.size;
          ids.push(r.id);
        } catch (e) {
          nonRetryable(e);
        }
        heartbeat(i + 1);
      }
      return { created, present, bytes, ids };
    },

    async sha256OfFile(path: string): Promise<string> {
      const h = createHash('sha256');
      for await (const c of createReadStream(path)) h.update(c as Buffer);
      return `sha256:${h.digest('hex')}`;
    },
  };
}
