/** `stella evidence ingest <file.tar>`: the worker-side unpacking into a spool work directory. */
import { promises as fsp } from 'node:fs';
import { isAbsolute } from 'node:path';
import { ArchiveError, extractTar } from '../../../archive';
import { badInput } from '../../../lib/errors';
import type { AppContext } from '../../context';
import { spoolWorkDir } from './storage';

/**
 * Unpacks an evidence tar (plain, gzip or zstd) with the safe extractor into a fresh work
 * directory under <dataDir>/spool. Idempotent: a retry starts from an empty directory.
 */
export async function extractIngestArchive(ctx: AppContext, archive: string, workDir: string): Promise<{ files: number; bytes: number }> {
  const dir = spoolWorkDir(ctx.cfg.dataDir, workDir);
  await fsp.rm(dir, { recursive: true, force: true });
  try {
    const r = await extractTar(archive, dir, { maxEntryBytes: ctx.cfg.maxUploadBytes });
    return { files: r.files.length, bytes: r.bytes };
  } catch (e) {
    await fsp.rm(dir, { recursive: true, force: true });
    if (e instanceof ArchiveError) throw badInput(`${archive}: ${e.message}`, undefined, { cause: e });
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw badInput(`${archive} does not exist`, undefined, { cause: e });
    throw e;
  }
}

export async function removeIngestWorkDir(ctx: AppContext, workDir: string): Promise<void> {
  await fsp.rm(spoolWorkDir(ctx.cfg.dataDir, workDir), { recursive: true, force: true });
}

const TAR_RE = /\.(tar|tar\.gz|tgz|tar\.zst|tar\.zstd)$/i;

/** What a server-side bulk-ingest path is: a directory or a tar archive; anything else is refused. */
export async function ingestSourceKind(path: string): Promise<'dir' | 'tar'> {
  if (!isAbsolute(path)) throw badInput(`path must be absolute (it is read by the worker): ${path}`);
  const st = await fsp.stat(path).catch(() => null);
  if (!st) throw badInput(`${path} does not exist on the stella server`);
  if (st.isDirectory()) return 'dir';
  if (st.isFile() && TAR_RE.test(path)) return 'tar';
  throw badInput(`${path} is neither a directory nor a .tar/.tar.gz/.tar.zst archive`);
}
