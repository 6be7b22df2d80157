import { readTar } from '../../archive';
import { loadRootPack, type RootPack } from '../../crypto/rootpack';
import type { Envelope } from '../../crypto/dsse';
import { sha256Digest } from '../../lib/hash';
import { badInput } from '../../lib/errors';
import { manifestBytes, validateManifest, type ReplayManifest } from './manifest';
import { replayVerify, type ReplayResult } from './verify';
import { promises as fsp } from 'node:fs';

const LIMITS = { maxEntryBytes: 256 * 1024 * 1024, maxTotalBytes: 2 * 1024 * 1024 * 1024, maxEntries: 100_000 };

/**
 * `stella replay --evidence evidence-pack.tar.gz`: finds the replay manifest, its DSSE
 * envelope and both bundles among the pack's entries by content (digests, schema), and the
 * pack's RootPack, then replays. Works on any pack layout that carries those items.
 */
export async function replayFromPack(packPath: string, o: { strict: boolean; rootpack?: string }): Promise<ReplayResult> {
  const byDigest = new Map<string, Buffer>();
  const jsons: { path: string; value: unknown; bytes: Buffer }[] = [];
  for await (const e of readTar(packPath, LIMITS)) {
    if (e.type !== 'file') continue;
    const b = await e.buffer();
    byDigest.set(sha256Digest(b), b);
    if (b[0] === 0x7b) {
      try {
        jsons.push({ path: e.path, value: JSON.parse(b.toString('utf8')), bytes: b });
      } catch {
        /* not JSON */
      }
    }
  }
  const manifests: ReplayManifest[] = [];
  for (const j of jsons) {
    try {
      manifests.push(validateManifest(j.value));
    } catch {
      /* not a manifest */
    }
  }
  if (!manifests.length) throw badInput(`${packPath} holds no replay manifest (export the artifact after a scan has been recorded)`);
  // Newest recorded scan wins when the pack carries several.
  const m = manifests.sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0]!;
  const mb = manifestBytes(m);
  const envelope = (jsons.find((j) => {
    const v = j.value as Partial<Envelope>;
    return typeof v.payload === 'string' && Array.isArray(v.signatures) && Buffer.from(v.payload, 'base64').equals(mb);
  })?.value ?? null) as Envelope | null;
  let rootpack: RootPack | null = null;
  if (o.rootpack) rootpack = await loadRootPack(await fsp.readFile(o.rootpack));
  else {
    for (const j of jsons.filter((x) => /rootpack/i.test(x.path))) {
      try {
        rootpack = await loadRootPack(j.bytes);
        break;
      } catch {
        /* keep looking */
      }
    }
  }
  if (!rootpack) throw badInput(`${packPath} has no RootPack; pass --rootpack <file>`);
  return replayVerify({
    manifest: m,
    envelope,
    inputBundle: byDigest.get(m.inputBundle.digest) ?? null,
    outputBundle: byDigest.get(m.outputBundle.digest) ?? null,
    rootpack,
    strict: o.strict,
  });
}
