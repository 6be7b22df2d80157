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
import { checkpointProblem } from './checkpoint';
import { checkTimestamps } from './timestamp';
import { storedCosignatures, validWitnesses, witnessKeys } from './witness';
import { logRowCount } from '../evidence/queries/anchoring';

export type BreakReason =
  | 'signature'
  | 'link'
  | 'root-mismatch'
  | 'consistency'
  | 'sequence'
  | 'row-mismatch'
  | 'key-window'
  | 'chain-id'
  | 'chain-link'
  | 'checkpoint'
  | 'forked-checkpoint'
  | 'truncated-log';

/** The tampering a break points to, named for the operator (issue 18). */
export type Tamper = 'rewritten-leaf' | 'truncated-log' | 'forked-checkpoint';

const TAMPER: Partial<Record<BreakReason, Tamper>> = {
  'root-mismatch': 'rewritten-leaf',
  'truncated-log': 'truncated-log',
  'forked-checkpoint': 'forked-checkpoint',
};

export interface AnchorBreak {
  chainId: string;
  anchorId: string;
  seq: number | null;
  reason: BreakReason;
  detail: string;
  tamper?: Tamper;
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
  /** Anchors in scope whose C2SP checkpoint verified (older anchors have none). */
  checkpoints: { checked: number; without: number };
  /** Stored RFC 3161 tokens re-verified; a failing token fails verification. */
  timestamps: { anchorId: string; ok: boolean; genTime: string | null; problem: string | null }[];
  /** The k-of-n witness policy: anchors with a checkpoint but fewer than `quorum` valid cosignatures do not count as verified. */
  witness: { quorum: number; configured: number; unwitnessed: { anchorId: string; valid: number }[] };
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

/** One verification run: what it trusts, where roots come from, and what it found so far. */
interface Run {
  ctx: AppContext;
  logRows: number;
  checkpoints: { checked: number; without: number };
  trust: Awaited<ReturnType<typeof anchorTrust>>;
  chains: ChainView[];
  byChain: Map<string, Row[]>;
  replay: LogReplayer;
  stored: PgSubtreeSource;
  steps: AnchorVerifyResult['steps'];
  reports: ChainReport[];
  breaks: AnchorBreak[];
  /** Anchors that passed every check. */
  checked: number;
}

type Fail = (row: Row, reason: BreakReason, detail: string, seq?: number | null) => void;
type AnchorOutcome = { v: VerifiedAnchor } | { reason: BreakReason; detail: string; seq?: number | null };

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
  const { chains, all, byChain } = await loadChains(ctx);
  const replay = new LogReplayer(ctx, (n) => opts.onProgress?.({ leaves: n, anchors: run.checked }));
  const logRows = await logRowCount(ctx.db);
  const run: Run = {
    ctx,
    logRows,
    checkpoints: { checked: 0, without: 0 },
    trust,
    chains,
    byChain,
    replay,
    stored: new PgSubtreeSource(ctx.db),
    steps: [],
    reports: [],
    breaks: [],
    checked: 0,
  };

  const active = chains.filter((c) => c.status === 'active');
  const inScope: ChainView[] = opts.scope === 'all' ? chains : active.length ? active : chains.slice(-1);
  for (const chain of inScope) await verifyChain(run, chain, opts.scope);
  forkedCheckpoints(run, inScope);

  acknowledgeLogRows(run);
  const scopedRows = inScope.flatMap((c) => {
    const rows = byChain.get(c.id) ?? [];
    return opts.scope === 'all' ? rows : rows.slice(-1);
  });
  const latestRow = active.length ? (byChain.get(active[0]!.id) ?? []).slice(-1)[0] : all[all.length - 1];
  const total = opts.scope === 'all' ? all.length : run.reports.reduce((a, r) => a + Math.min(r.anchors, 1), 0);
  const result = summarize(run, opts.scope, total, latestRow, await timestampReport(ctx, scopedRows), await witnessReport(ctx, scopedRows));
  if (opts.record !== false) await recordVerification(ctx, result);
  return result;
}

/** Every chain, and every anchor row grouped by chain in chain order. */
async function loadChains(ctx: AppContext): Promise<{ chains: ChainView[]; all: Row[]; byChain: Map<string, Row[]> }> {
  const chains = await listChains(ctx.db);
  const all = (await ctx.db.query('SELECT a.* FROM anchors a JOIN anchor_chains c ON c.id = a.chain_id ORDER BY c.started_at, c.id, a.seq')).rows;
  const byChain = new Map<string, Row[]>(chains.map((c) => [c.id, []]));
  for (const r of all) byChain.get(r.chain_id)!.push(r);
  return { chains, all, byChain };
}

/** Verifies one chain's anchors in scope, in order, up to its first break. */
async function verifyChain(run: Run, chain: ChainView, scope: AnchorVerifyOptions['scope']): Promise<void> {
  const rows = run.byChain.get(chain.id) ?? [];
  const start = scope === 'latest' ? Math.max(0, rows.length - 1) : 0;
  const report: ChainReport = { id: chain.id, status: chain.status, reason: chain.reason, anchors: rows.length, checked: 0, ok: true, firstBreak: null };
  run.reports.push(report);
  const fail = breakRecorder(run, chain, report);

  // The link target of the first anchor in scope: verified on its own (signature + columns).
  let previous: VerifiedAnchor | undefined;
  if (start > 0) {
    previous = await linkTarget(run, rows[start - 1]!, fail);
    if (!previous) return;
  }
  for (let i = start; i < rows.length; i++) {
    const row = rows[i]!;
    const outcome = await checkAnchor(run, chain, row, previous);
    if (!('v' in outcome)) {
      fail(row, outcome.reason, outcome.detail, outcome.seq);
      return;
    }
    const v = outcome.v;
    previous = v;
    run.checked++;
    report.checked++;
    run.steps.push({
      anchorId: row.id,
      chainId: chain.id,
      seq: v.payload.seq,
      logSize: v.payload.logSize,
      ok: true,
      detail: `signature (${v.alg}, kid ${v.payload.kid.slice(0, 8)}), link, root over ${v.payload.logSize} leaves, consistency: ok`,
    });
  }
}

/** Records a chain's break (acknowledged when new-chain recorded the same one on archiving it). */
function breakRecorder(run: Run, chain: ChainView, report: ChainReport): Fail {
  return (row, reason, detail, seq) => {
    const claimed = decodeAnchorUnverified(row.jws)?.seq;
    const b: AnchorBreak = {
      chainId: chain.id,
      anchorId: row.id,
      seq: seq ?? (Number.isSafeInteger(claimed) ? (claimed as number) : Number(row.seq)),
      reason,
      detail,
      ...(TAMPER[reason] ? { tamper: TAMPER[reason] } : {}),
    };
    const rec = chain.archivedVerify?.firstBreak;
    if (rec && rec.anchorId === b.anchorId && rec.reason === b.reason) b.acknowledged = true;
    report.ok = false;
    report.firstBreak = b;
    run.breaks.push(b);
    run.steps.push({ anchorId: row.id, chainId: chain.id, seq: Number(row.seq), logSize: Number(row.log_size), ok: false, detail: `${reason}: ${detail}` });
  };
}

/** The anchor before the scope, checked on its own (signature + columns); undefined after recording its break. */
async function linkTarget(run: Run, row: Row, fail: Fail): Promise<VerifiedAnchor | undefined> {
  try {
    const previous = await verifyAnchor(row.jws, run.trust.resolver);
    const rp = rowProblem(row, previous);
    if (rp) {
      fail(row, 'row-mismatch', rp);
      return undefined;
    }
    return previous;
  } catch (e) {
    fail(row, 'signature', (e as Error).message);
    return undefined;
  }
}

/** One anchor after `previous`: signature, link, root and consistency; then key window, row columns and, for a chain's first anchor, its genesis. */
async function checkAnchor(run: Run, chain: ChainView, row: Row, previous: VerifiedAnchor | undefined): Promise<AnchorOutcome> {
  if (Number(row.log_size) > run.logRows) {
    return { reason: 'truncated-log', detail: `truncated log: the anchor commits to ${row.log_size} leaves but evidence_log holds ${run.logRows}` };
  }
  const r = await verifyAnchorChain([row.jws], {
    keyResolver: run.trust.resolver,
    previous,
    recomputeRoot: (n) => run.replay.rootAt(n),
    consistency: (m, n) => consistencyProofFromSource(run.stored, m, n, PROOF_OPTS),
  });
  if (!r.ok) {
    const fb = r.firstBreak!;
    // Two signed roots for one size is a fork, whatever check saw it first.
    const fork = fb.reason === 'consistency' && previous && previous.payload.logSize === Number(row.log_size);
    if (fork) return { reason: 'forked-checkpoint', detail: `forked checkpoint: ${fb.detail}`, seq: fb.seq };
    const detail = fb.reason === 'root-mismatch' ? `rewritten leaf: ${fb.detail}` : fb.detail;
    return { reason: fb.reason, detail, seq: fb.seq };
  }
  const v = r.head!;
  const wp = run.trust.windowProblem(v.payload.kid, new Date(v.payload.createdAt));
  if (wp) return { reason: 'key-window', detail: wp };
  const rp = rowProblem(row, v);
  if (rp) return { reason: 'row-mismatch', detail: rp };
  const cp = await checkpointOutcome(run, row, v);
  if (cp) return cp;
  if (v.payload.seq === 0) {
    const problem = await genesisProblem(chain, v, run.chains, run.byChain, run.stored);
    if (problem) return problem;
  }
  return { v };
}

/** Rows a new-chain archival already recorded are acknowledged. */
function acknowledgeLogRows(run: Run): void {
  const ackRows = new Set(run.chains.flatMap((c) => c.archivedVerify?.logRows ?? []));
  for (const lr of run.replay.logRows) if (ackRows.has(lr.seq)) lr.acknowledged = true;
}

function summarize(
  run: Run,
  scope: AnchorVerifyOptions['scope'],
  total: number,
  latestRow: Row | undefined,
  timestamps: AnchorVerifyResult['timestamps'],
  witness: AnchorVerifyResult['witness'],
): AnchorVerifyResult {
  const open = run.breaks.filter((b) => !b.acknowledged);
  const openRows = run.replay.logRows.filter((r) => !r.acknowledged);
  return {
    ok: open.length === 0 && openRows.length === 0 && timestamps.every((t) => t.ok) && witness.unwitnessed.length === 0,
    checkpoints: run.checkpoints,
    timestamps,
    witness,
    scope,
    checked: run.checked,
    total,
    firstBreak: open[0] ?? null,
    breaks: run.breaks,
    logRows: run.replay.logRows,
    chains: run.reports,
    latest: latestRow ? toAnchorView(latestRow) : null,
    leavesHashed: run.replay.hashed,
    verifiedAt: new Date().toISOString(),
    steps: run.steps,
  };
}

/** Stores the outcome (feeds stella_merkle_anchor_chain_ok). */
async function recordVerification(ctx: AppContext, result: AnchorVerifyResult): Promise<void> {
  await ctx.db.query('INSERT INTO anchor_verifications (scope, ok, checked, first_break, result) VALUES ($1,$2,$3,$4,$5)', [
    result.scope,
    result.ok,
    result.checked,
    result.firstBreak ? JSON.stringify(result.firstBreak) : null,
    JSON.stringify({ ...result, steps: undefined }),
  ]);
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

/** An anchor's checkpoint: signed by the checkpoint key and committing to the anchor's own size and root. */
async function checkpointOutcome(run: Run, row: Row, v: VerifiedAnchor): Promise<AnchorOutcome | undefined> {
  if (!row.checkpoint) {
    run.checkpoints.without++;
    return undefined;
  }
  const p = await checkpointProblem(run.ctx, {
    checkpoint: row.checkpoint,
    checkpointKid: row.checkpoint_kid,
    logSize: v.payload.logSize,
    rootHash: v.payload.rootHash,
  });
  if (!p) {
    run.checkpoints.checked++;
    return undefined;
  }
  // A locker restored into a new stack holds its own checkpoint key, not the old one: the
  // anchor's JWS (verified against the trusted keys) still binds size and root, so the
  // checkpoint counts as not checked here rather than as a failure.
  if (p.kind === 'unknown-key') {
    run.checkpoints.without++;
    return undefined;
  }
  if (p.kind === 'mismatch' && p.checkpoint?.size === v.payload.logSize) return { reason: 'forked-checkpoint', detail: `forked checkpoint: ${p.detail}` };
  return { reason: 'checkpoint', detail: p.detail };
}

/**
 * Two anchors or checkpoints of chains that were not archived as broken that commit to the
 * same size with different roots: the log showed two histories (a split view).
 */
function forkedCheckpoints(run: Run, inScope: ChainView[]): void {
  const seen = new Map<number, Row>();
  for (const chain of inScope) {
    if (chain.archivedVerify?.ok === false) continue;
    const report = run.reports.find((r) => r.id === chain.id);
    for (const row of run.byChain.get(chain.id) ?? []) {
      const size = Number(row.log_size);
      const first = seen.get(size);
      if (!first) {
        seen.set(size, row);
        continue;
      }
      if (first.root_hash === row.root_hash || !report || report.firstBreak) continue;
      breakRecorder(run, chain, report)(
        row,
        'forked-checkpoint',
        `forked checkpoint: anchor ${row.id.slice(0, 12)} and anchor ${first.id.slice(0, 12)} both cover ${size} leaves with different roots`,
      );
    }
  }
}

async function timestampReport(ctx: AppContext, rows: Row[]): Promise<AnchorVerifyResult['timestamps']> {
  const checks = await checkTimestamps(
    ctx,
    rows.map((r) => ({ id: r.id, checkpoint: r.checkpoint ?? null })),
  );
  return checks.map((c) => ({ anchorId: c.anchorId, ok: c.check.ok, genTime: c.check.genTime ?? null, problem: c.check.problem ?? null }));
}

async function witnessReport(ctx: AppContext, rows: Row[]): Promise<AnchorVerifyResult['witness']> {
  const quorum = ctx.cfg.anchoring.witnessQuorum;
  const keys = quorum > 0 || ctx.cfg.anchoring.witnesses.length ? witnessKeys(ctx) : [];
  if (quorum === 0) return { quorum, configured: keys.length, unwitnessed: [] };
  const withCp = rows.filter((r) => r.checkpoint);
  const cosigs = await storedCosignatures(
    ctx,
    withCp.map((r) => r.id),
  );
  const unwitnessed = withCp
    .map((r) => ({ anchorId: r.id as string, valid: validWitnesses(r.checkpoint, cosigs.get(r.id) ?? [], keys).length }))
    .filter((u) => u.valid < quorum);
  return { quorum, configured: keys.length, unwitnessed };
}
