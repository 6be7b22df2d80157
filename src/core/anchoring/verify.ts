import { trustedRootPack } from '../attest/attest';
import {
  MerkleFrontier,
  anchorHash,
  consistencyProofFromSource,
  decodeAnchorUnverified,
  hashFromHex,
  rootFromSource,
  verifyAnchor,
  verifyAnchorChain,
  verifyConsistency,
  type VerifiedAnchor,
} from '../../merkle';
import { importRootPack, loadRootPack, type RootPack } from '../../crypto/rootpack';
import { badInput } from '../../lib/errors';
import type { AppContext } from '../context';
import { PROOF_OPTS, PgSubtreeSource, leafRowProblem, streamLog } from './source';
import { chainIdFor, listChains, toAnchorView, type AnchorView, type ArchivedVerify, type ChainView } from './store';
import { anchorTrust } from './trust';
import { startNewChain, type NewChainResult } from './create';

export type BreakReason = 'signature' | 'link' | 'root-mismatch' | 'consistency' | 'sequence' | 'row-mismatch' | 'key-window' | 'chain-id' | 'chain-link';

export interface AnchorBreak {
  chainId: string;
  anchorId: string;
  seq: number | null;
  reason: BreakReason;
  detail: string;
  /** Recorded when new-chain archived this chain: reported, but not a failure. */
  acknowledged?: boolean;
}

export interface LogRowBreak {
  seq: number;
  tenant: string;
  itemId: string;
  detail: string;
  acknowledged?: boolean;
}

export interface ChainReport {
  id: string;
  status: 'active' | 'archived';
  reason: string;
  anchors: number;
  checked: number;
  ok: boolean;
  firstBreak: AnchorBreak | null;
}

export interface AnchorVerifyResult {
  ok: boolean;
  scope: 'latest' | 'all';
  /** Anchors that passed every check. */
  checked: number;
  total: number;
  /** The first unacknowledged break, in chain order. */
  firstBreak: AnchorBreak | null;
  breaks: AnchorBreak[];
  logRows: LogRowBreak[];
  chains: ChainReport[];
  latest: AnchorView | null;
  leavesHashed: number;
  verifiedAt: string;
  /** One line per checked anchor (for --verbose). */
  steps: { anchorId: string; chainId: string; seq: number; logSize: number; ok: boolean; detail: string }[];
}

export interface AnchorVerifyOptions {
  scope: 'latest' | 'all';
  /** Extra trusted keys (e.g. from before a key-store migration). */
  rootPack?: RootPack;
  /** Store the outcome (feeds stella_merkle_anchor_chain_ok). Default true. */
  record?: boolean;
  onProgress?: (p: { leaves: number; anchors: number }) => void;
}

const MAX_LOG_ROWS = 100;

/**
 * Recomputes roots from evidence_log itself (never from the stored subtrees, which an
 * attacker could have rewritten alongside the log): one streaming pass over the leaves,
 * stopping at each anchor's log size. Rows whose leaf_hash no longer matches their leaf
 * bytes are collected on the way.
 */
class LogReplayer {
  private frontier = new MerkleFrontier();
  readonly logRows: LogRowBreak[] = [];
  hashed = 0;
  constructor(
    private readonly ctx: AppContext,
    private readonly onProgress?: (n: number) => void,
  ) {}

  async rootAt(size: number): Promise<Uint8Array> {
    if (size < this.frontier.size) return rootFromSource(new PgSubtreeSource(this.ctx.db, { storedNodes: false }), size, PROOF_OPTS);
    for await (const rows of streamLog(this.ctx.db, this.frontier.size, size)) {
      for (const row of rows) {
        const p = leafRowProblem(row);
        if (p && this.logRows.length < MAX_LOG_ROWS) this.logRows.push({ seq: row.seq, tenant: row.tenant, itemId: row.itemId, detail: p });
        this.frontier.append(row.leafHash);
      }
      this.hashed += rows.length;
      this.onProgress?.(this.hashed);
    }
    return this.frontier.root();
  }
}

type Row = Record<string, any>;

/** Columns that must equal the signed payload: a mismatch means the row was edited. */
function rowProblem(row: Row, v: VerifiedAnchor): string | undefined {
  const p = v.payload;
  const bad: string[] = [];
  if (row.id !== v.hash) bad.push(`id ${row.id.slice(0, 12)} ≠ hash of its JWS ${v.hash.slice(0, 12)}`);
  if (row.chain_id !== p.chainId) bad.push(`chain_id ${row.chain_id} ≠ signed ${p.chainId}`);
  if (Number(row.seq) !== p.seq) bad.push(`seq ${row.seq} ≠ signed ${p.seq}`);
  if (Number(row.log_size) !== p.logSize) bad.push(`log_size ${row.log_size} ≠ signed ${p.logSize}`);
  if (row.root_hash !== p.rootHash) bad.push(`root_hash ${String(row.root_hash).slice(0, 16)}… ≠ signed ${p.rootHash.slice(0, 16)}…`);
  if ((row.prev_anchor_hash ?? null) !== p.prevAnchorHash)
    bad.push(`prev_anchor_hash ${String(row.prev_anchor_hash).slice(0, 16)} ≠ signed ${String(p.prevAnchorHash).slice(0, 16)}`);
  if (row.kid !== p.kid) bad.push(`kid ≠ signed kid`);
  if (new Date(row.created_at).getTime() !== Date.parse(p.createdAt)) bad.push(`created_at ≠ signed ${p.createdAt}`);
  return bad.length ? `row columns disagree with the signed anchor: ${bad.join('; ')}` : undefined;
}

/**
 * `anchor verify`: every signature (key store + RootPack, retired keys within their window),
 * every column against its signed payload, every link, each root recomputed from the log,
 * consistency between neighbours (also across a new-chain hand-over), and each chain's id
 * against its recorded start. Reports the first break per chain; a break new-chain recorded
 * when it archived that chain is acknowledged rather than failed.
 */
export async function verifyAnchors(ctx: AppContext, opts: AnchorVerifyOptions): Promise<AnchorVerifyResult> {
  // Keys restored from a backup or imported RootPacks are trusted too (after DR the key store is new).
  const trust = await anchorTrust(ctx.keys, opts.rootPack ?? (await trustedRootPack(ctx)));
  const chains = await listChains(ctx.db);
  const all = (await ctx.db.query('SELECT a.* FROM anchors a JOIN anchor_chains c ON c.id = a.chain_id ORDER BY c.started_at, c.id, a.seq')).rows;
  const byChain = new Map<string, Row[]>(chains.map((c) => [c.id, []]));
  for (const r of all) byChain.get(r.chain_id)!.push(r);
  let anchorsDone = 0;
  const replay = new LogReplayer(ctx, (n) => opts.onProgress?.({ leaves: n, anchors: anchorsDone }));
  const stored = new PgSubtreeSource(ctx.db);
  const steps: AnchorVerifyResult['steps'] = [];
  const reports: ChainReport[] = [];
  const breaks: AnchorBreak[] = [];
  let checked = 0;

  const active = chains.filter((c) => c.status === 'active');
  const inScope: ChainView[] = opts.scope === 'all' ? chains : active.length ? active : chains.slice(-1);

  for (const chain of inScope) {
    const rows = byChain.get(chain.id) ?? [];
    const start = opts.scope === 'latest' ? Math.max(0, rows.length - 1) : 0;
    const report: ChainReport = { id: chain.id, status: chain.status, reason: chain.reason, anchors: rows.length, checked: 0, ok: true, firstBreak: null };
    reports.push(report);
    const fail = (row: Row, reason: BreakReason, detail: string, seq?: number | null) => {
      const claimed = decodeAnchorUnverified(row.jws)?.seq;
      const b: AnchorBreak = {
        chainId: chain.id,
        anchorId: row.id,
        seq: seq ?? (Number.isSafeInteger(claimed) ? (claimed as number) : Number(row.seq)),
        reason,
        detail,
      };
      const rec = chain.archivedVerify?.firstBreak;
      if (rec && rec.anchorId === b.anchorId && rec.reason === b.reason) b.acknowledged = true;
      report.ok = false;
      report.firstBreak = b;
      breaks.push(b);
      steps.push({ anchorId: row.id, chainId: chain.id, seq: Number(row.seq), logSize: Number(row.log_size), ok: false, detail: `${reason}: ${detail}` });
    };

    // The link target of the first anchor in scope: verified on its own (signature + columns).
    let previous: VerifiedAnchor | undefined;
    if (start > 0) {
      const pr = rows[start - 1]!;
      try {
        previous = await verifyAnchor(pr.jws, trust.resolver);
        const rp = rowProblem(pr, previous);
        if (rp) {
          fail(pr, 'row-mismatch', rp);
          continue;
        }
      } catch (e) {
        fail(pr, 'signature', (e as Error).message);
        continue;
      }
    }

    for (let i = start; i < rows.length; i++) {
      const row = rows[i]!;
      const r = await verifyAnchorChain([row.jws], {
        keyResolver: trust.resolver,
        previous,
        recomputeRoot: (n) => replay.rootAt(n),
        consistency: (m, n) => consistencyProofFromSource(stored, m, n, PROOF_OPTS),
      });
      if (!r.ok) {
        const fb = r.firstBreak!;
        fail(row, fb.reason, fb.detail, fb.seq);
        break;
      }
      const v = r.head!;
      const wp = trust.windowProblem(v.payload.kid, new Date(v.payload.createdAt));
      if (wp) {
        fail(row, 'key-window', wp);
        break;
      }
      const rp = rowProblem(row, v);
      if (rp) {
        fail(row, 'row-mismatch', rp);
        break;
      }
      if (v.payload.seq === 0) {
        const problem = await genesisProblem(chain, v, chains, byChain, stored);
        if (problem) {
          fail(row, problem.reason, problem.detail);
          break;
        }
      }
      previous = v;
      checked++;
      anchorsDone++;
      report.checked++;
      steps.push({
        anchorId: row.id,
        chainId: chain.id,
        seq: v.payload.seq,
        logSize: v.payload.logSize,
        ok: true,
        detail: `signature (${v.alg}, kid ${v.payload.kid.slice(0, 8)}), link, root over ${v.payload.logSize} leaves, consistency: ok`,
      });
    }
  }

  // Rows a new-chain archival already recorded are acknowledged.
  const ackRows = new Set(chains.flatMap((c) => c.archivedVerify?.logRows ?? []));
  for (const lr of replay.logRows) if (ackRows.has(lr.seq)) lr.acknowledged = true;

  const open = breaks.filter((b) => !b.acknowledged);
  const openRows = replay.logRows.filter((r) => !r.acknowledged);
  const latestRow = active.length ? (byChain.get(active[0]!.id) ?? []).slice(-1)[0] : all[all.length - 1];
  const total = opts.scope === 'all' ? all.length : reports.reduce((a, r) => a + Math.min(r.anchors, 1), 0);
  const result: AnchorVerifyResult = {
    ok: open.length === 0 && openRows.length === 0,
    scope: opts.scope,
    checked,
    total,
    firstBreak: open[0] ?? null,
    breaks,
    logRows: replay.logRows,
    chains: reports,
    latest: latestRow ? toAnchorView(latestRow) : null,
    leavesHashed: replay.hashed,
    verifiedAt: new Date().toISOString(),
    steps,
  };
  if (opts.record !== false) {
    await ctx.db.query('INSERT INTO anchor_verifications (scope, ok, checked, first_break, result) VALUES ($1,$2,$3,$4,$5)', [
      opts.scope,
      result.ok,
      checked,
      result.firstBreak ? JSON.stringify(result.firstBreak) : null,
      JSON.stringify({ ...result, steps: undefined }),
    ]);
  }
  return result;
}

/** A chain's first anchor: the chain id must match its recorded start, and hand over from the archived chain. */
async function genesisProblem(
  chain: ChainView,
  v: VerifiedAnchor,
  chains: ChainView[],
  byChain: Map<string, Row[]>,
  stored: PgSubtreeSource,
): Promise<{ reason: BreakReason; detail: string } | undefined> {
  const expect = chainIdFor({ prevChainId: chain.prevChainId, prevChainHeadHash: chain.prevChainHeadHash, reason: chain.reason, startedAt: chain.startedAt });
  if (expect !== chain.id)
    return { reason: 'chain-id', detail: `chain ${chain.id} does not match its recorded start (reason, started_at or previous head were edited)` };
  if (!chain.prevChainId) return undefined;
  const prev = chains.find((c) => c.id === chain.prevChainId);
  if (!prev) return { reason: 'chain-link', detail: `previous chain ${chain.prevChainId} is missing` };
  const prevRows = byChain.get(prev.id) ?? [];
  const head = prevRows[prevRows.length - 1];
  const headHash = head ? anchorHash(head.jws) : null;
  if (headHash !== chain.prevChainHeadHash) {
    return {
      reason: 'chain-link',
      detail: `chain records previous head ${String(chain.prevChainHeadHash).slice(0, 12)} but chain ${prev.id.slice(0, 15)} ends at ${String(headHash).slice(0, 12)}`,
    };
  }
  // A hand-over from a chain archived as broken re-baselines on the log as it stood; only
  // an intact old chain must be consistent with the new one.
  if (!head || prev.archivedVerify?.ok === false) return undefined;
  const hp = decodeAnchorUnverified(head.jws);
  if (!hp || typeof hp.logSize !== 'number' || typeof hp.rootHash !== 'string') return { reason: 'chain-link', detail: 'previous chain head is unreadable' };
  const m = hp.logSize;
  const n = v.payload.logSize;
  if (n < m) return { reason: 'chain-link', detail: `log shrank from ${m} (previous chain head) to ${n}` };
  const proof = m === 0 || m === n ? [] : await consistencyProofFromSource(stored, m, n, PROOF_OPTS);
  if (!verifyConsistency(m, n, hashFromHex(hp.rootHash), hashFromHex(v.payload.rootHash), proof)) {
    return { reason: 'chain-link', detail: `new chain root at ${n} is not consistent with the previous chain head at ${m}` };
  }
  return undefined;
}

/**
 * An operator-supplied RootPack (e.g. from an offline kit), merged into the packs this locker
 * already trusts; anchors verify against both. A pack that does not load is bad input.
 */
export async function withOperatorRootPack(ctx: AppContext, raw: unknown): Promise<RootPack> {
  const extra = await loadRootPack(raw).catch((e: Error) => {
    throw badInput(`rootPack: ${e.message}`);
  });
  return (await importRootPack(await trustedRootPack(ctx), extra)).pack;
}

/** For the backup/DR engineer: full verification (restore runs it itself). */
export function anchorVerifyAll(ctx: AppContext, opts: Omit<AnchorVerifyOptions, 'scope'> = {}): Promise<AnchorVerifyResult> {
  return verifyAnchors(ctx, { ...opts, scope: 'all' });
}

/** `anchor new-chain`: record what the active chain's verification finds, then archive it and start anew. */
export async function newChain(ctx: AppContext, input: { reason: string; actor?: string }): Promise<NewChainResult & { oldChainVerify: ArchivedVerify }> {
  const v = await verifyAnchors(ctx, { scope: 'all', record: false });
  const activeReport = v.chains.find((c) => c.status === 'active');
  const fb = activeReport?.firstBreak ?? null;
  const archivedVerify: ArchivedVerify = {
    ok: !fb && v.logRows.every((r) => r.acknowledged),
    firstBreak: fb ? { anchorId: fb.anchorId, reason: fb.reason, detail: fb.detail, seq: fb.seq } : null,
    logRows: v.logRows.map((r) => r.seq),
  };
  const res = await startNewChain(ctx, { reason: input.reason, actor: input.actor, archivedVerify });
  return { ...res, oldChainVerify: archivedVerify };
}
