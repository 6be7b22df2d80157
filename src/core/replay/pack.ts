import { readTar } from '../../archive';
import type { Envelope } from '../../crypto/dsse';
import { sha256Digest } from '../../lib/hash';
import { badInput } from '../../lib/errors';
import { manifestBytes, validateManifest, type ReplayManifest } from './manifest';
import { replayVerify, type ReplayResult } from './verify';
import { describeEmbedded, type EmbeddedRootPack, type TrustedRootPack } from '../backup/pack/trust';

const LIMITS = { maxEntryBytes: 256 * 1024 * 1024, maxTotalBytes: 2 * 1024 * 1024 * 1024, maxEntries: 100_000 };

/**
 * `stella replay --evidence evidence-pack.tar.gz`: finds the replay manifest, its DSSE
 * envelope and both bundles among the pack's entries by content (digests, schema), then replays
 * against the RootPack the verifier trusts. The pack's own RootPack is reported, never trusted.
 * Works on any pack layout that carries those items.
 */
export async function replayFromPack(
  packPath: string,
  o: { strict: boolean; trusted: TrustedRootPack },
): Promise<{ result: ReplayResult; embeddedRootPack: EmbeddedRootPack }> {
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
  const embeddedRootPack = await describeEmbedded(jsons.find((x) => /(^|\/)rootpack\.json$/i.test(x.path))?.bytes ?? null, o.trusted);
  const result = await replayVerify({
    manifest: m,
    envelope,
    inputBundle: byDigest.get(m.inputBundle.digest) ?? null,
    outputBundle: byDigest.get(m.outputBundle.digest) ?? null,
    rootpack: o.trusted.rootpack,
    strict: o.strict,
  });
  return { result, embeddedRootPack };
}
