/** The one directory walker: regular files below a root, depth-first, sorted, symlinks not followed. */
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export interface WalkedFile {
  /** Absolute (or root-joined) path. */
  path: string;
  /** Path relative to the root, with `/` separators. */
  rel: string;
}

/** Yields regular files in a stable (sorted) order; directories named in `skip` are not entered. */
export async function* walkFiles(root: string, opts: { skip?: (rel: string, isDir: boolean) => boolean } = {}): AsyncGenerator<WalkedFile> {
  const entries = await readdir(root, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const path = join(root, e.name);
    yield* walkEntry(root, path, e.isDirectory(), e.isFile(), opts);
  }
}

async function* walkEntry(
  base: string,
  path: string,
  isDir: boolean,
  isFile: boolean,
  opts: { skip?: (rel: string, isDir: boolean) => boolean },
  top = base,
): AsyncGenerator<WalkedFile> {
  const rel = relative(top, path).split(sep).join('/');
  if (opts.skip?.(rel, isDir)) return;
  if (isFile) {
    yield { path, rel };
    return;
  }
  if (!isDir) return;
  const entries = await readdir(path, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) yield* walkEntry(base, join(path, e.name), e.isDirectory(), e.isFile(), opts, top);
}
