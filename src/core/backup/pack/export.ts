/**
 * Offline evidence packs (`stella evidence export`). A deterministic manifest archive
 * (src/archive) holding, for one artifact:
 *
 *   anchor.json          the anchor covering every item: compact JWS + decoded payload
 *   checkpoint/          the same anchor in standard formats (C2SP checkpoint, vkeys, RFC 3161 token,
 *                        cosignatures, consistency from the previous checkpoint): src/core/anchoring/pack.ts
 *   index.json           every item: id, kind, media type, subjects, parents, log seq, leaf bytes
 *   items/<hex>          the item bytes (sha256 = the item id)
 *   proofs/<hex>.json    RFC 6962 inclusion proof of the item's leaf in the anchored tree
 *   rootpack.json        the public keys (RootPack) the anchor and DSSE attestations verify against
 *   manifest.json        sha256 + size of every file (kind evidence-pack)
 *
 * createdAt is the anchor's time, so exporting the same artifact against the same anchor
 * gives the same bytes.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../context';
import { writeManifestArchiveFile } from '../../../archive';
import { compressionFor } from './format';
import { trustedRootPack } from '../../attest/attest';
import { canonicalJson } from '../../../lib/canonical';
import { conflict, integrity, notFound } from '../../../lib/errors';
import { validateDigest } from '../../evidence/model';
import { inclusionProofFromSource, verifyInclusion, hashFromHex, decodeAnchorUnverified } from '../../../merkle';
import { PgSubtreeSource, PROOF_OPTS, latestAnchor } from '../../anchoring';
import { checkpointPackFiles, type PackFile as CheckpointFile } from '../../anchoring/pack';
import { newestActiveAnchorCovering } from '../../anchoring/queries/backup';
import { itemIdsForArtifact, packItems, type PackItemRow } from '../../evidence/queries/backup';
import { audit } from '../../audit';

export { compressionFor };

export const PACK_KIND = 'evidence-pack';
export const PACK_FORMAT = 'stella.evidence-pack.v1';

export interface PackItem {
  id: string;
  kind: string;
  mediaType: string;
  predicateType: string | null;
  size: number;
  subjects: string[];
  parents: { id: string; relation: string }[];
  createdAt: string;
  logSeq: number;
  leaf: string;
  leafHash: string;
  path: string;
  /** Why it is in the pack: a subject of the artifact, or a dependency of one. */
  via: 'subject' | 'dependency';
}

export interface PackIndex {
  format: typeof PACK_FORMAT;
  artifact: string;
  tenant: string;
  includeDeps: boolean;
  items: PackItem[];
  missingDependencies: { id: string; reason: string }[];
}

type PackQuery = { tenant: string; digest: string; includeDeps: boolean; actor: string };
type Via = Map<string, 'subject' | 'dependency'>;
type Missing = { id: string; reason: string }[];
type LoggedRow = PackItemRow & { seq: number; leaf: Buffer; leafHash: Buffer };
type PackAnchor = NonNullable<Awaited<ReturnType<typeof newestActiveAnchorCovering>>>;

export async function exportEvidencePack(ctx: AppContext, q: PackQuery, dest: string) {
  validateDigest(q.digest, 'artifact digest');
  const { rows, via, missing } = await gatherItems(ctx, q);
  const logged = loggedItems(rows, via, missing, q.digest);
  const anchor = await coveringAnchor(ctx, q.digest, Math.max(...logged.map((r) => r.seq)));
  // Own keys plus imported trust (after a restore, the old signing keys' public halves).
  const rootpack = await trustedRootPack(ctx, new Date(anchor.createdAt));
  if (!rootpack.keys.some((k) => k.kid === anchor.kid))
    throw conflict(`the key ${anchor.kid} that signed anchor ${anchor.id} is not in the key store; cannot build a RootPack for it`);
  const { items, proofs } = await provenItems(ctx, logged, via, anchor);
  const index: PackIndex = {
    format: PACK_FORMAT,
    artifact: q.digest,
    tenant: q.tenant,
    includeDeps: q.includeDeps,
    items,
    missingDependencies: missing.sort((a, b) => (a.id < b.id ? -1 : 1)),
  };
  const checkpointFiles = await checkpointPackFiles(ctx, anchor.id);
  const docs = {
    anchorDoc: anchorDocument(anchor),
    checkpointFiles,
    indexDoc: Buffer.from(canonicalJson(index)),
    rootpackDoc: Buffer.from(canonicalJson(rootpack)),
  };
  const result = await writePack(ctx, dest, q, anchor, docs, items, proofs);
  await audit(ctx.db, {
    tenant: q.tenant,
    actor: q.actor,
    action: 'evidence.export',
    target: q.digest,
    details: { items: items.length, includeDeps: q.includeDeps, anchorId: anchor.id, manifestSha256: result.manifestSha256 },
  });
  return { manifestSha256: result.manifestSha256, items: items.length, missing: missing.length, anchorId: anchor.id, logSize: anchor.logSize };
}

/** The artifact's items and, with includeDeps, transitively the items they reference (child -> parent edges). */
async function gatherItems(ctx: AppContext, q: PackQuery): Promise<{ rows: PackItemRow[]; via: Via; missing: Missing }> {
  const direct = await itemIdsForArtifact(ctx.db, q.tenant, q.digest);
  if (!direct.length) throw notFound(`no evidence for artifact ${q.digest}`);
  const via: Via = new Map(direct.map((id) => [id, 'subject']));
  const missing: Missing = [];
  let rows: PackItemRow[] = await packItems(ctx.db, q.tenant, [...via.keys()]);
  if (!q.includeDeps) return { rows, via, missing };
  let frontier = rows.flatMap((r) => r.parents.map((p) => p.id)).filter((id) => !via.has(id));
  while (frontier.length) {
    const ids = [...new Set(frontier)];
    for (const id of ids) via.set(id, 'dependency');
    const more = await packItems(ctx.db, q.tenant, ids);
    const found = new Set(more.map((r) => r.id));
    for (const id of ids) if (!found.has(id)) missing.push({ id, reason: 'not in the locker' });
    rows = rows.concat(more);
    frontier = more.flatMap((r) => r.parents.map((p) => p.id)).filter((id) => !via.has(id));
  }
  return { rows, via, missing };
}

/** Only items whose bytes are present and trusted go in (the rest are named in `missing`); each must have its log leaf. Sorted by id. */
function loggedItems(rows: PackItemRow[], via: Via, missing: Missing, digest: string): LoggedRow[] {
  const usable = rows.filter((r) => {
    if (r.state === 'present') return true;
    missing.push({ id: r.id, reason: `state ${r.state}${r.stateReason ? ` (${r.stateReason})` : ''}` });
    return false;
  });
  const direct = usable.filter((r) => via.get(r.id) === 'subject');
  if (!direct.length) throw conflict(`no present evidence for artifact ${digest} (${missing.map((m) => `${m.id}: ${m.reason}`).join('; ')})`);
  const logged = usable.map((r) => {
    if (r.seq == null || !r.leaf || !r.leafHash) throw integrity(`evidence ${r.id} has no Merkle log leaf; run stella evidence index status`);
    return { ...r, seq: r.seq, leaf: r.leaf, leafHash: r.leafHash };
  });
  return logged.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The newest live anchor covering every item (anchors archived by a point-in-time restore are skipped). */
async function coveringAnchor(ctx: AppContext, digest: string, maxSeq: number): Promise<PackAnchor> {
  const anchor = (await newestActiveAnchorCovering(ctx.db, maxSeq)) ?? (await latestAnchor(ctx, { jws: true }));
  if (!anchor || anchor.logSize <= maxSeq) {
    throw conflict(
      `evidence for ${digest} is not anchored yet (newest leaf ${maxSeq}, latest anchor covers ${anchor?.logSize ?? 0} leaves); run stella evidence anchor create, then export again`,
    );
  }
  return anchor;
}

/** Index entries and canonical inclusion proofs (by item hex) under the anchor; never hands out a proof that does not verify. */
async function provenItems(ctx: AppContext, logged: LoggedRow[], via: Via, anchor: PackAnchor): Promise<{ items: PackItem[]; proofs: Map<string, Buffer> }> {
  const source = new PgSubtreeSource(ctx.db);
  const root = hashFromHex(anchor.rootHash);
  const items: PackItem[] = [];
  const proofs = new Map<string, Buffer>();
  for (const r of logged) {
    const seq = r.seq;
    const proof = await inclusionProofFromSource(source, seq, anchor.logSize, PROOF_OPTS);
    if (!verifyInclusion(r.leafHash, seq, anchor.logSize, proof, root))
      throw integrity(`inclusion proof for ${r.id} (leaf ${seq}) does not verify against anchor ${anchor.id}; run stella evidence anchor verify --all`);
    const hex = r.id.slice(7);
    items.push({
      id: r.id,
      kind: r.kind,
      mediaType: r.mediaType,
      predicateType: r.predicateType,
      size: r.size,
      subjects: r.subjects,
      parents: r.parents,
      createdAt: new Date(r.createdAt).toISOString(),
      logSeq: seq,
      leaf: r.leaf.toString('base64'),
      leafHash: r.leafHash.toString('hex'),
      path: `items/${hex}`,
      via: via.get(r.id) ?? 'dependency',
    });
    const doc = {
      id: r.id,
      leafIndex: seq,
      treeSize: anchor.logSize,
      leafHash: r.leafHash.toString('hex'),
      proof: proof.map((h) => Buffer.from(h).toString('hex')),
    };
    proofs.set(hex, Buffer.from(canonicalJson(doc)));
  }
  return { items, proofs };
}

function anchorDocument(anchor: PackAnchor): Buffer {
  return Buffer.from(
    canonicalJson({
      id: anchor.id,
      chainId: anchor.chainId,
      seq: anchor.seq,
      logSize: anchor.logSize,
      rootHash: anchor.rootHash,
      kid: anchor.kid,
      createdAt: anchor.createdAt,
      jws: anchor.jws,
      payload: decodeAnchorUnverified(anchor.jws!),
    }),
  );
}

function writePack(
  ctx: AppContext,
  dest: string,
  q: PackQuery,
  anchor: PackAnchor,
  docs: { anchorDoc: Buffer; checkpointFiles: CheckpointFile[]; indexDoc: Buffer; rootpackDoc: Buffer },
  items: PackItem[],
  proofs: Map<string, Buffer>,
) {
  const { anchorDoc, indexDoc, rootpackDoc } = docs;
  return writeManifestArchiveFile(
    dest,
    {
      kind: PACK_KIND,
      createdAt: anchor.createdAt,
      compression: compressionFor(dest),
      meta: { format: PACK_FORMAT, artifact: q.digest, includeDeps: q.includeDeps, items: items.length, anchorId: anchor.id, logSize: anchor.logSize },
    },
    async (w) => {
      // Strictly increasing path order: anchor.json < checkpoint/ < index.json < items/ < proofs/ < rootpack.json
      await w.addFile('anchor.json', anchorDoc.length, anchorDoc, { mediaType: 'application/json' });
      for (const f of docs.checkpointFiles) await w.addFile(f.path, f.bytes.length, f.bytes, { mediaType: f.mediaType });
      await w.addFile('index.json', indexDoc.length, indexDoc, { mediaType: 'application/json' });
      for (const it of items) {
        await w.addFile(it.path, it.size, await ctx.blobs.primary.get(it.id), { sha256: it.id, mediaType: it.mediaType, meta: { id: it.id, kind: it.kind } });
      }
      for (const it of items) {
        const p = proofs.get(it.id.slice(7))!;
        await w.addFile(`proofs/${it.id.slice(7)}.json`, p.length, p, { mediaType: 'application/json', meta: { id: it.id } });
      }
      await w.addFile('rootpack.json', rootpackDoc.length, rootpackDoc, { mediaType: 'application/json' });
    },
  );
}

export type PackFormat = 'tar' | 'gz' | 'zst';

export interface PackFile {
  file: string;
  size: number;
  contentType: string;
  manifestSha256: string;
  items: number;
  anchorId: string;
}

/**
 * `GET /evidence/export`: the pack written to a temporary file under `<dataDir>/tmp` (removed
 * again on failure); the caller streams it and removes it when done.
 */
export async function exportEvidencePackFile(
  ctx: AppContext,
  q: { tenant: string; digest: string; includeDeps: boolean; actor: string },
  format: PackFormat = 'gz',
): Promise<PackFile> {
  validateDigest(q.digest, 'artifact digest');
  const ext = format === 'tar' ? 'tar' : format === 'zst' ? 'tar.zst' : 'tar.gz';
  const tmpDir = join(ctx.cfg.dataDir, 'tmp');
  await fsp.mkdir(tmpDir, { recursive: true });
  const file = join(tmpDir, `pack-${randomUUID()}.${ext}`);
  try {
    const r = await exportEvidencePack(ctx, q, file);
    const { size } = await fsp.stat(file);
    const contentType = format === 'tar' ? 'application/x-tar' : format === 'zst' ? 'application/zstd' : 'application/gzip';
    return { file, size, contentType, manifestSha256: r.manifestSha256, items: r.items, anchorId: r.anchorId };
  } catch (e) {
    await fsp.rm(file, { force: true });
    throw e;
  }
}
