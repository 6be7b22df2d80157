import { withTransaction, type DbClient } from '../../db/pool';
import { MerkleFrontier, anchorHash, signAnchor, type CompletedSubtree } from '../../merkle';
import type { AppContext } from '../context';
import { audit } from '../audit';
import { badInput, integrity } from '../../lib/errors';
import { SIGNING_PURPOSE } from '../keys';
import { logSize as logSizeOf } from '../evidence/queries/anchoring';
import { STORE_MIN_LEVEL, leafRowProblem, storeNodes, streamLog } from './source';
import { signCheckpoint } from './checkpoint';
import { timestampAnchor } from './timestamp';
import { chainIdFor, toAnchorView, writeAnchorBackup, type AnchorView, type ArchivedVerify } from './store';

export interface CreateAnchorInput {
  reason?: string;
  /** Anchor even when the log has not grown since the last anchor. */
  force?: boolean;
  /** Idempotency key (the workflow run): a retry returns the anchor this request already made. */
  requestId?: string;
  actor?: string;
  /** Called after each chunk of new leaves (activities heartbeat here). */
  onProgress?: (p: { leavesRead: number; total: number }) => void;
}

export interface CreateAnchorResult {
  status: 'created' | 'skipped' | 'existing';
  message: string;
  anchor: AnchorView | null;
  /** Leaves read from evidence_log by this call: k new leaves, never the whole log. */
  leavesRead: number;
  logSize: number;
}

/** Process-wide count of leaves read by anchoring (tests assert the O(k) claim with it). */
export const anchorStats = { leavesRead: 0 };

const nowIso = () => new Date().toISOString();

async function lockFrontier(tx: DbClient): Promise<MerkleFrontier> {
  const r = await tx.query('SELECT size, frontier FROM merkle_frontier WHERE id FOR UPDATE');
  if (!r.rowCount) throw integrity('merkle_frontier row is missing (migration 030 not applied?)');
  return MerkleFrontier.fromJSON(r.rows[0].frontier);
}

async function activeChain(tx: DbClient): Promise<{ id: string } | null> {
  const r = await tx.query(`SELECT id FROM anchor_chains WHERE status = 'active' FOR UPDATE`);
  return r.rowCount ? { id: r.rows[0].id } : null;
}

async function insertChain(tx: DbClient, c: { reason: string; prevChainId: string | null; prevChainHeadHash: string | null }): Promise<string> {
  const startedAt = nowIso();
  const id = chainIdFor({ ...c, startedAt });
  await tx.query(`INSERT INTO anchor_chains (id, started_at, reason, status, prev_chain_id, prev_chain_head_hash) VALUES ($1,$2,$3,'active',$4,$5)`, [
    id,
    startedAt,
    c.reason,
    c.prevChainId,
    c.prevChainHeadHash,
  ]);
  return id;
}

/** Append leaves [frontier.size, logSize) to the frontier, checking each row; returns completed subtrees to store. */
async function extend(
  tx: DbClient,
  frontier: MerkleFrontier,
  logSize: number,
  onProgress?: CreateAnchorInput['onProgress'],
): Promise<{ nodes: CompletedSubtree[]; read: number }> {
  const nodes: CompletedSubtree[] = [];
  const from = frontier.size;
  let read = 0;
  for await (const rows of streamLog(tx, from, logSize)) {
    for (const row of rows) {
      const problem = leafRowProblem(row);
      // Never sign over a row that is already inconsistent: that would bless the tampering.
      if (problem) throw integrity(`evidence log seq ${row.seq} (${row.itemId}): ${problem}; not anchoring (stella evidence anchor verify --all)`);
      for (const s of frontier.append(row.leafHash)) if (s.level >= STORE_MIN_LEVEL) nodes.push(s);
    }
    read += rows.length;
    anchorStats.leavesRead += rows.length;
    onProgress?.({ leavesRead: read, total: logSize - from });
  }
  return { nodes, read };
}

async function signAndInsert(
  ctx: AppContext,
  tx: DbClient,
  a: { chainId: string; seq: number; prevAnchorHash: string | null; logSize: number; root: Buffer; reason: string | null; requestId: string | null },
): Promise<AnchorView & { jws: string }> {
  const rec = await ctx.keys.active(SIGNING_PURPOSE);
  const signer = await ctx.keys.signer(rec.kid);
  const createdAt = nowIso();
  const jws = await signAnchor(
    { chainId: a.chainId, seq: a.seq, logSize: a.logSize, rootHash: a.root, prevAnchorHash: a.prevAnchorHash, createdAt },
    { key: signer.privateKey, kid: rec.kid },
  );
  const id = anchorHash(jws);
  // The same tree head as a C2SP checkpoint, so standard tlog tooling can verify it (issue 18).
  const cp = await signCheckpoint(ctx, a.logSize, a.root);
  const r = await tx.query(
    `INSERT INTO anchors (id, chain_id, seq, log_size, root_hash, prev_anchor_hash, jws, kid, created_at, status, reason, request_id, checkpoint, checkpoint_kid)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,'active',$10,$11,$12,$13) RETURNING *`,
    [id, a.chainId, a.seq, a.logSize, a.root.toString('hex'), a.prevAnchorHash, jws, rec.kid, createdAt, a.reason, a.requestId, cp.note, cp.kid],
  );
  return toAnchorView(r.rows[0], true) as AnchorView & { jws: string };
}

/**
 * SP-003 step 1. Incremental: reads only the leaves appended since the persisted frontier
 * (O(k + log N)), stores the subtrees they complete and the new frontier, signs an anchor
 * linked to the previous anchor of the active chain, all in one transaction under the
 * frontier row lock. When the log has not grown since the last anchor nothing is signed
 * (status 'skipped', "no new leaves") unless force is set: an unchanged tree needs no new
 * commitment, and the schedule must not pile up identical anchors.
 */
export async function createAnchor(ctx: AppContext, input: CreateAnchorInput = {}): Promise<CreateAnchorResult> {
  if (input.reason !== undefined && (typeof input.reason !== 'string' || input.reason.length > 500))
    throw badInput('reason must be a string of at most 500 characters');
  const res = await withTransaction(ctx.db, async (tx) => {
    const frontier = await lockFrontier(tx);
    if (input.requestId) {
      const done = await tx.query('SELECT * FROM anchors WHERE request_id = $1', [input.requestId]);
      if (done.rowCount) {
        const a = toAnchorView(done.rows[0], true);
        return { status: 'existing' as const, message: `anchor ${a.id} already created by this request`, anchor: a, leavesRead: 0, logSize: a.logSize };
      }
    }
    const chain = await activeChain(tx);
    const chainId = chain?.id ?? (await insertChain(tx, { reason: 'genesis', prevChainId: null, prevChainHeadHash: null }));
    const lastR = await tx.query('SELECT * FROM anchors WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1', [chainId]);
    const last = lastR.rowCount ? toAnchorView(lastR.rows[0]) : null;
    const logSize = await logSizeOf(tx);
    if (frontier.size > logSize) throw integrity(`the Merkle frontier covers ${frontier.size} leaves but the log has only ${logSize}`);
    if (last && last.logSize === logSize && frontier.size === logSize && !input.force) {
      return {
        status: 'skipped' as const,
        message: `no new leaves since anchor ${last.id.slice(0, 12)} (log size ${logSize}); use --force to anchor anyway`,
        anchor: last,
        leavesRead: 0,
        logSize,
      };
    }
    const { nodes, read } = await extend(tx, frontier, logSize, input.onProgress);
    await storeNodes(tx, nodes);
    await tx.query('UPDATE merkle_frontier SET size = $1, frontier = $2, updated_at = now() WHERE id', [frontier.size, JSON.stringify(frontier.toJSON())]);
    const anchor = await signAndInsert(ctx, tx, {
      chainId,
      seq: last ? last.seq + 1 : 0,
      prevAnchorHash: last ? last.id : null,
      logSize,
      root: frontier.root(),
      reason: input.reason ?? null,
      requestId: input.requestId ?? null,
    });
    await audit(tx, {
      tenant: '*',
      actor: input.actor ?? 'system',
      action: 'evidence.anchor.create',
      target: anchor.id,
      reason: input.reason,
      details: { chainId, seq: anchor.seq, logSize, newLeaves: read },
    });
    return {
      status: 'created' as const,
      message: `anchor ${anchor.id.slice(0, 12)} seq ${anchor.seq} over ${logSize} leaves (${read} new)`,
      anchor,
      leavesRead: read,
      logSize,
    };
  });
  // After commit (a retry re-writes it): the backup copy `anchor recover --source backup` uses.
  if (res.anchor && res.status !== 'skipped') await writeAnchorBackup(ctx, res.anchor as AnchorView & { jws: string });
  if (res.anchor && res.status === 'created') await timestampQuietly(ctx, res.anchor.id);
  if (res.anchor) delete res.anchor.jws;
  return res;
}

export interface NewChainInput {
  reason: string;
  actor?: string;
  archivedVerify: ArchivedVerify;
  onProgress?: CreateAnchorInput['onProgress'];
}

export interface NewChainResult {
  oldChainId: string | null;
  oldHeadHash: string | null;
  chainId: string;
  anchor: AnchorView;
  rebuiltNodes: number;
  logSize: number;
}

/**
 * INC-003: archive the active chain and start a new one whose first anchor (seq 0) covers
 * the whole log as it is now. The new chain's id commits to the old chain's head hash and
 * the reason, and is signed into each of its anchors. The frontier and stored subtrees are
 * rebuilt from the log (O(N), a recovery operation), so the new segment verifies against
 * the log as it stands; what the old chain's verification found is kept in archived_verify.
 */
export async function startNewChain(ctx: AppContext, input: NewChainInput): Promise<NewChainResult> {
  const reason = typeof input.reason === 'string' ? input.reason.trim() : '';
  if (!reason || reason.length > 500) throw badInput('new-chain needs --reason (1-500 characters)');
  const res = await withTransaction(ctx.db, async (tx) => {
    await lockFrontier(tx);
    const old = await activeChain(tx);
    let head: AnchorView | null = null;
    if (old) {
      const h = await tx.query('SELECT * FROM anchors WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1', [old.id]);
      head = h.rowCount ? toAnchorView(h.rows[0], true) : null;
      await tx.query(`UPDATE anchor_chains SET status = 'archived', archived_at = now(), archived_verify = $2 WHERE id = $1`, [
        old.id,
        JSON.stringify(input.archivedVerify),
      ]);
      await tx.query(`UPDATE anchors SET status = 'archived' WHERE chain_id = $1`, [old.id]);
    }
    const logSize = await logSizeOf(tx);
    const frontier = new MerkleFrontier();
    const nodes: CompletedSubtree[] = [];
    let read = 0;
    for await (const rows of streamLog(tx, 0, logSize)) {
      for (const row of rows) for (const s of frontier.append(row.leafHash)) if (s.level >= STORE_MIN_LEVEL) nodes.push(s);
      read += rows.length;
      input.onProgress?.({ leavesRead: read, total: logSize });
    }
    const rebuilt = await storeNodes(tx, nodes, true);
    await tx.query('UPDATE merkle_frontier SET size = $1, frontier = $2, updated_at = now() WHERE id', [frontier.size, JSON.stringify(frontier.toJSON())]);
    const oldHeadHash = head ? head.id : null;
    const chainId = await insertChain(tx, { reason, prevChainId: old?.id ?? null, prevChainHeadHash: oldHeadHash });
    const anchor = await signAndInsert(ctx, tx, {
      chainId,
      seq: 0,
      prevAnchorHash: null,
      logSize,
      root: frontier.root(),
      reason: `new-chain: ${reason}`,
      requestId: null,
    });
    await audit(tx, {
      tenant: '*',
      actor: input.actor ?? 'system',
      action: 'evidence.anchor.new-chain',
      target: chainId,
      reason,
      details: { oldChainId: old?.id ?? null, oldHeadHash, firstAnchor: anchor.id, logSize, rebuiltNodes: rebuilt, oldChainVerify: input.archivedVerify },
    });
    return { oldChainId: old?.id ?? null, oldHeadHash, chainId, anchor, rebuiltNodes: rebuilt, logSize };
  });
  await writeAnchorBackup(ctx, res.anchor);
  await timestampQuietly(ctx, res.anchor.id);
  const { jws: _jws, ...anchor } = res.anchor;
  return { ...res, anchor };
}

/** A TSA outage never fails anchoring: the anchor stands on its signatures; `anchor verify` lists it as untimestamped. */
async function timestampQuietly(ctx: AppContext, anchorId: string): Promise<void> {
  try {
    await timestampAnchor(ctx, anchorId);
  } catch (e) {
    ctx.log.warn({ anchorId, err: (e as Error).message }, 'anchor not timestamped');
  }
}
