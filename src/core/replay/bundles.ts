import { buildTar, readTar, zstdCompress } from '../../archive';
import { canonicalJson } from '../../lib/canonical';
import { sha256Digest } from '../../lib/hash';
import { integrity } from '../../lib/errors';

/**
 * Replay bundles: deterministic tar (sorted entries, mtime 0, uid/gid 0, fixed modes) with
 * canonical JSON inside, compressed with zstd at a fixed level, so the same inputs always
 * give the same bytes and therefore the same digest.
 */
export const INPUT_BUNDLE = 'inputbundle.tar.zst';
export const OUTPUT_BUNDLE = 'outputbundle.tar.zst';

/** Bundles are small (inventories, advisory snapshots, reports); bound what we read. */
const LIMITS = { maxEntryBytes: 128 * 1024 * 1024, maxTotalBytes: 256 * 1024 * 1024, maxEntries: 10_000 };

export type BundleFiles = Record<string, Buffer | string | unknown>;

function asBytes(v: Buffer | string | unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  return Buffer.from(canonicalJson(v) + '\n', 'utf8');
}

export async function buildBundle(files: BundleFiles): Promise<{ bytes: Buffer; digest: string }> {
  const tar = buildTar(Object.entries(files).map(([path, v]) => ({ path, data: asBytes(v) })));
  const bytes = await zstdCompress(tar);
  return { bytes, digest: sha256Digest(bytes) };
}

export async function readBundle(bytes: Uint8Array): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const e of readTar(bytes, LIMITS)) if (e.type === 'file') out.set(e.path, await e.buffer());
  return out;
}

export function jsonFile<T = unknown>(files: Map<string, Buffer>, path: string, bundle: string): T {
  const b = files.get(path);
  if (!b) throw integrity(`${bundle} has no ${path}`);
  try {
    return JSON.parse(b.toString('utf8')) as T;
  } catch {
    throw integrity(`${bundle}: ${path} is not valid JSON`);
  }
}
