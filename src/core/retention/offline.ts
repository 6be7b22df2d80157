/** Offline verification of an evidence archive or pack file (no database, no API): the CLI calls it directly. */
import { promises as fsp } from 'node:fs';
import { badInput } from '../../lib/errors';
import { verifyManifestArchive, type ManifestProblem, type ArchiveManifest } from '../../archive';

export interface OfflineArchiveVerification {
  ok: boolean;
  file: string;
  kind: string | null;
  items: number;
  manifestSha256: string | null;
  problems: (ManifestProblem & { item: string | null })[];
}

/** Every body re-hashed against manifest.json; problems name the evidence item when the entry is one. */
export async function verifyArchiveFile(file: string): Promise<OfflineArchiveVerification> {
  const st = await fsp.stat(file).catch(() => null);
  if (!st?.isFile()) throw badInput(`${file}: no such file`);
  // Archives of a whole locker are big: raise the reader's default limits (still bounded).
  const v = await verifyManifestArchive(file, { maxEntries: 10_000_000, maxTotalBytes: 16 * 1024 ** 4, maxEntryBytes: 1024 ** 4 });
  const byPath = new Map((v.manifest?.entries ?? []).map((e) => [e.path, e]));
  const itemOf = (path: string) => {
    const m = byPath.get(path)?.meta as { id?: string } | undefined;
    if (m?.id) return m.id;
    const x = /^items\/sha256\/([0-9a-f]{64})$/.exec(path);
    return x ? `sha256:${x[1]}` : null;
  };
  return {
    ok: v.ok,
    file,
    kind: (v.manifest as ArchiveManifest | null)?.kind ?? null,
    items: v.manifest?.entries.length ?? 0,
    manifestSha256: v.manifestSha256,
    problems: v.problems.map((p) => ({ ...p, item: itemOf(p.path) })),
  };
}
