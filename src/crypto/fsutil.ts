import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Write a file so readers see either the old or the new content, never a torn one:
 * exclusive temp file in the same directory (same filesystem, so rename is atomic),
 * fsync the data, rename over the target, then fsync the directory so the rename
 * itself survives a crash.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      await fh.writeFile(data);
      // open()'s mode is filtered by umask; chmod makes the requested mode exact (0600 for secrets).
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms/filesystems refuse fsync on directories; the data itself is already synced.
  } finally {
    await fh?.close();
  }
}

export async function readJsonFile(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8'));
}
