import { trustedRootPack } from '../attest/attest';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  anchorHash,
  decodeLeaf,
  exportAnchor,
  hashEquals,
  hashFromHex,
  inclusionProofFromSource,
  rootFromSource,
  verifyAnchor,
  type ExportedAnchor,
  type VerifiedAnchor,
} from '../../merkle';
import type { AppContext } from '../context';
import { withTransaction } from '../../db/pool';
import { audit } from '../audit';
import { badInput, conflict, integrity, notFound } from '../../lib/errors';
import { validateDigest } from '../evidence';
import { logEntryOf, logSize as logSizeOf } from '../evidence/queries/anchoring';
import { PROOF_OPTS, PgSubtreeSource } from './source';
import { anchorById, backupDir, latestAnchor, signingJwk, toAnchorView, type AnchorView } from './store';
import { anchorTrust } from './trust';
import { PROOF_FORMAT, type InclusionProofFile } from './offline';

/** `anchor export`: self-contained, verifiable offline with the public key alone. */
export async function exportAnchorById(ctx: AppContext, id: string | 'latest'): Promise<ExportedAnchor> {
  const a = id === 'latest' ? await latestAnchor(ctx, { jws: true }) : await anchorById(ctx, id, { jws: true });
  if (!a) throw notFound('no anchor yet (stella evidence anchor create)');
  try {
    return await exportAnchor({ anchor: a.jws!, publicJwk: await signingJwk(ctx, a.kid) });
  } catch (e) {
    throw integrity(`anchor ${a.id} does not verify and is not exported: ${(e as Error).message} (stella evidence anchor verify --all)`);
  }
}

/**
 * `evidence proof`: inclusion of an item's leaf in an anchored tree, for offline checking.
 * Default anchor: the newest active anchor covering the item's log position.
 */
export async function inclusionProofFor(ctx: AppContext, tenant: string, evidenceId: string, anchorId?: string): Promise<InclusionProofFile> {
  validateDigest(evidenceId, 'evidence id');
  const entry = await logEntryOf(ctx.db, tenant, evidenceId);
  if (!entry) throw notFound(`evidence ${evidenceId} is not in the log of tenant ${tenant}`);
  const { seq, leaf } = entry;
  let a: AnchorView;
  if (anchorId) {
    a = await anchorById(ctx, anchorId, { jws: true });
    if (a.logSize <= seq) throw badInput(`anchor ${a.id.slice(0, 12)} covers ${a.logSize} leaves; ${evidenceId} is leaf ${seq} (pick a later anchor)`);
  } else {
    const r = await ctx.db.query(`SELECT * FROM anchors WHERE status = 'active' AND log_size > $1 ORDER BY created_at DESC, seq DESC LIMIT 1`, [seq]);
    if (!r.rowCount) throw conflict(`evidence ${evidenceId} (leaf ${seq}) is not anchored yet; run stella evidence anchor create`);
    a = toAnchorView(r.rows[0], true);
  }
  const proof = await inclusionProofFromSource(new PgSubtreeSource(ctx.db), seq, a.logSize, PROOF_OPTS);
  let exported: ExportedAnchor;
  try {
    exported = await exportAnchor({ anchor: a.jws!, publicJwk: await signingJwk(ctx, a.kid), inclusion: { leafIndex: seq, proof, leaf } });
  } catch (e) {
    throw integrity(`cannot prove ${evidenceId} in anchor ${a.id.slice(0, 12)}: ${(e as Error).message} (stella evidence anchor verify --all)`);
  }
  if (!exported.inclusion) throw integrity(`anchor ${a.id.slice(0, 12)} was exported without the inclusion of ${evidenceId}`);
  return {
    ...exported,
    inclusion: exported.inclusion,
    proofFormat: PROOF_FORMAT,
    evidence: { id: evidenceId, tenant, leafIndex: seq, leaf: leaf.toString('base64'), decoded: decodeLeaf(leaf) },
  };
}

interface BackupDoc {
  jws: string;
  source: string;
}

async function readBackup(ctx: AppContext, id: string, source: string): Promise<BackupDoc> {
  const path = source === 'backup' ? backupDir(ctx) : source;
  const st = await stat(path).catch(() => null);
  if (!st) throw notFound(`backup source ${path} does not exist`);
  const files = st.isDirectory() ? [join(path, `${id}.json`), join(path, 'anchors.jsonl')] : [path];
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => null);
    if (text === null) continue;
    // One JSON document (a backup file or an `anchor export`), or JSON lines of them.
    const docs = text.trim().startsWith('{') && !text.trim().includes('\n{') ? [text] : text.split('\n').filter((l) => l.trim());
    for (const d of docs) {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(d);
      } catch {
        continue;
      }
      const jws = typeof o.jws === 'string' ? o.jws : typeof o.anchor === 'string' ? o.anchor : undefined;
      if (jws && anchorHash(jws) === id) return { jws, source: f };
    }
  }
  throw notFound(`no backup of anchor ${id} in ${path}`);
}

/** A stored anchor row that matches the verified backup in its JWS and every column signed in it. */
function isIntact(row: Record<string, unknown>, jws: string, id: string, p: VerifiedAnchor['payload']): boolean {
  return (
    row.jws === jws &&
    row.id === id &&
    row.chain_id === p.chainId &&
    Number(row.seq) === p.seq &&
    Number(row.log_size) === p.logSize &&
    row.root_hash === p.rootHash &&
    (row.prev_anchor_hash ?? null) === (p.prevAnchorHash ?? null) &&
    row.kid === p.kid
  );
}

/**
 * INC-003 "single broken link": restore one anchor row from a backup. The backup's JWS must
 * hash to the anchor id, verify under a trusted signing key, carry the root the log has now
 * at its size, and link to the stored predecessor; only then is the row replaced (audited).
 */
export async function recoverAnchor(
  ctx: AppContext,
  input: { id: string; source: string; actor?: string },
): Promise<{ anchor: AnchorView; source: string; replaced: boolean; before: AnchorView | null }> {
  const id = input.id.trim().toLowerCase();
  let fullId = id;
  if (id.length < 64) fullId = (await anchorById(ctx, id)).id;
  if (!/^[0-9a-f]{64}$/.test(fullId)) throw badInput('recover needs a full 64-hex anchor id or a unique prefix of a stored one');
  const b = await readBackup(ctx, fullId, input.source || 'backup');
  const trust = await anchorTrust(ctx.keys, await trustedRootPack(ctx));
  let v: VerifiedAnchor;
  try {
    v = await verifyAnchor(b.jws, trust.resolver);
  } catch (e) {
    throw integrity(`backup of ${fullId.slice(0, 12)} in ${b.source} does not verify: ${(e as Error).message}`);
  }
  const wp = trust.windowProblem(v.payload.kid, new Date(v.payload.createdAt));
  if (wp) throw integrity(`backup of ${fullId.slice(0, 12)}: ${wp}`);
  const p = v.payload;
  const logSize = await logSizeOf(ctx.db);
  if (p.logSize > logSize) throw integrity(`backup anchor covers ${p.logSize} leaves but the log has ${logSize}; restore the log first`);
  const root = await rootFromSource(new PgSubtreeSource(ctx.db, { storedNodes: false }), p.logSize, PROOF_OPTS);
  if (!hashEquals(root, hashFromHex(p.rootHash))) {
    throw integrity(
      `backup anchor root ${p.rootHash.slice(0, 16)}… does not match the log (${root.toString('hex').slice(0, 16)}…) at size ${p.logSize}; the log itself changed, not only the anchor`,
    );
  }
  const chain = await ctx.db.query('SELECT status FROM anchor_chains WHERE id = $1', [p.chainId]);
  if (!chain.rowCount) throw integrity(`backup anchor belongs to chain ${p.chainId}, which is not stored`);
  if (p.seq > 0) {
    const prev = await ctx.db.query('SELECT jws FROM anchors WHERE chain_id = $1 AND seq = $2', [p.chainId, p.seq - 1]);
    if (!prev.rowCount || anchorHash(prev.rows[0].jws) !== p.prevAnchorHash) {
      throw integrity(
        `backup anchor links to ${String(p.prevAnchorHash).slice(0, 12)}, which is not the stored anchor seq ${p.seq - 1}; recover that one first`,
      );
    }
  }
  return withTransaction(ctx.db, async (tx) => {
    const cur = await tx.query('SELECT * FROM anchors WHERE id = $1 OR (chain_id = $2 AND seq = $3) FOR UPDATE', [fullId, p.chainId, p.seq]);
    const before = cur.rowCount ? toAnchorView(cur.rows[0], true) : null;
    // The stored row is byte-for-byte the verified backup: intact, nothing to do (not audited as a restore).
    if (cur.rowCount === 1 && isIntact(cur.rows[0], b.jws, fullId, p)) return { anchor: toAnchorView(cur.rows[0]), source: b.source, replaced: false, before };
    const status = chain.rows[0].status;
    const vals = [fullId, p.chainId, p.seq, p.logSize, p.rootHash, p.prevAnchorHash, b.jws, p.kid, p.createdAt, status];
    const r = cur.rowCount
      ? await tx.query(
          `UPDATE anchors SET id=$1, chain_id=$2, seq=$3, log_size=$4, root_hash=$5, prev_anchor_hash=$6, jws=$7, kid=$8, created_at=$9, status=$10 WHERE id=$11 RETURNING *`,
          [...vals, cur.rows[0].id],
        )
      : await tx.query(
          `INSERT INTO anchors (id, chain_id, seq, log_size, root_hash, prev_anchor_hash, jws, kid, created_at, status) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING *`,
          vals,
        );
    await audit(tx, {
      tenant: '*',
      actor: input.actor ?? 'system',
      action: 'evidence.anchor.recover',
      target: fullId,
      reason: `restored from ${b.source}`,
      details: { before, chainId: p.chainId, seq: p.seq },
    });
    return { anchor: toAnchorView(r.rows[0]), source: b.source, replaced: !!before, before };
  });
}
