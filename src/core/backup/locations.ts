/** Backup locations as the API sees them: a directory or s3://bucket[/prefix], checked before work starts. */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { AppContext } from '../context';
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
  const dir = backupRoot(ctx, outputDir);
  await fsp.mkdir(dir, { recursive: true });
  return { dir, location: join(dir, backupId) };
}

/** `stella backup list`: the backups at a location, newest first. */
export async function listBackupsAt(ctx: AppContext, dir?: string): Promise<{ location: string; backups: BackupSummary[] }> {
  const s3 = s3LocationOf(ctx, dir);
  if (s3) return { location: s3.url, backups: await listS3Backups(ctx, s3) };
  const root = backupRoot(ctx, dir);
  return { location: root, backups: await listBackups(root) };
}

/** A backup's summary read from its location (backup.json; S3: complete only with a manifest); null if absent. */
export async function backupSummaryAt(ctx: AppContext, dir: string | undefined, id: string): Promise<BackupSummary | null> {
  const s3 = s3LocationOf(ctx, dir);
  return s3 ? readS3Summary(ctx, s3, id) : readSummary(backupPath(backupRoot(ctx, dir), id));
}

/** The backup root a restore reads from: s3:// as is (the workflow fetches it first), a directory resolved; null = configured. */
export function restoreBackupDir(ctx: AppContext, backupId: string | undefined, backupDir: string | undefined): string | null {
  const s3 = backupId ? s3LocationOf(ctx, backupDir) : null;
  if (s3) return s3.url;
  return backupDir ? backupRoot(ctx, backupDir) : null;
}
