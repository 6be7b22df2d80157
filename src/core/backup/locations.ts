/** Backup locations as the API sees them: a directory or s3://bucket[/prefix], checked before work starts. */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { AppContext } from '../context';
import { badInput } from '../../lib/errors';
import { backupPath, backupRoot, listBackups, readSummary, type BackupSummary } from './backup';
import { checkS3Location, listS3Backups, readS3Summary, s3LocationOf } from './s3';

/**
 * The root a new backup goes to, ready: an s3:// location must answer (staged locally, then
 * uploaded by the workflow); a directory is created. `location` is where the backup will be.
 */
export async function prepareBackupRoot(ctx: AppContext, outputDir: string | undefined, backupId: string): Promise<{ dir: string; location: string }> {
  const s3 = s3LocationOf(ctx, outputDir);
  if (s3) {
    await checkS3Location(ctx, s3);
    return { dir: s3.url, location: `${s3.url}/${backupId}` };
  }
  const dir = localRoot(ctx, outputDir);
  await fsp.mkdir(dir, { recursive: true }).catch(unusable(dir));
  return { dir, location: join(dir, backupId) };
}

/** `stella backup list`: the backups at a location, newest first. */
export async function listBackupsAt(ctx: AppContext, dir?: string): Promise<{ location: string; backups: BackupSummary[] }> {
  const s3 = s3LocationOf(ctx, dir);
  if (s3) return { location: s3.url, backups: await listS3Backups(ctx, s3) };
  const root = localRoot(ctx, dir);
  return { location: root, backups: await listBackups(root).catch(unusable(root)) };
}

/** A backup's summary read from its location (backup.json; S3: complete only with a manifest); null if absent. */
export async function backupSummaryAt(ctx: AppContext, dir: string | undefined, id: string): Promise<BackupSummary | null> {
  const s3 = s3LocationOf(ctx, dir);
  return s3 ? readS3Summary(ctx, s3, id) : readSummary(backupPath(localRoot(ctx, dir), id)).catch(unusable(dir ?? ''));
}

/** A local backup directory as the caller named it: a path, not NUL-laden or absurdly long. */
function localRoot(ctx: AppContext, dir: string | undefined): string {
  if (dir !== undefined && (dir.includes('\u0000') || dir.length > 4096))
    throw badInput('backup directory must be a path of at most 4096 characters without NUL');
  return backupRoot(ctx, dir);
}

/** A directory the server cannot use (not a directory, name too long, no permission) is the caller's bad input. */
const unusable = (dir: string) => (e: unknown) => {
  const code = (e as NodeJS.ErrnoException).code;
  if (code && ['ENOTDIR', 'ENAMETOOLONG', 'EACCES', 'EPERM', 'EEXIST', 'EROFS', 'ELOOP'].includes(code))
    throw badInput(`backup directory ${JSON.stringify(dir.slice(0, 200))} is not usable (${code})`);
  throw e;
};

/** The backup root a restore reads from: s3:// as is (the workflow fetches it first), a directory resolved; null = configured. */
export function restoreBackupDir(ctx: AppContext, backupId: string | undefined, backupDir: string | undefined): string | null {
  const s3 = backupId ? s3LocationOf(ctx, backupDir) : null;
  if (s3) return s3.url;
  return backupDir ? backupRoot(ctx, backupDir) : null;
}
