import { join } from 'node:path';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import type { JWK } from 'jose';
import type { Db, DbClient } from '../../db/pool';
import type { AppContext } from '../context';
import { canonicalJson } from '../../lib/canonical';
import { sha256Hex } from '../../lib/hash';
import { badInput, notFound } from '../../lib/errors';
import { SIGNING_PURPOSE } from '../keys';

/** One anchor as the API and CLI show it (the JWS is authoritative; these mirror its payload). */
export interface AnchorView {
  id: string;
  chainId: string;
  seq: number;
  logSize: number;
  rootHash: string;
  prevAnchorHash: string | null;
  kid: string;
  createdAt: string;
  status: 'active' | 'archived';
  reason: string | null;
  jws?: string;
}

export interface ChainView {
  id: string;
  startedAt: string;
  reason: string;
  status: 'active' | 'archived';
  archivedAt: string | null;
  prevChainId: string | null;
  prevChainHeadHash: string | null;
  archivedVerify: ArchivedVerify | null;
}

/** What verification found in a chain when new-chain archived it (breaks recorded here are acknowledged). */
export interface ArchivedVerify {
  ok: boolean;
  firstBreak: { anchorId: string; reason: string; detail: string; seq: number | null } | null;
  logRows: number[];
}

type Row = Record<string, any>;
const iso = (d: unknown): string => new Date(d as string).toISOString();

export function toAnchorView(r: Row, withJws = false): AnchorView {
  return {
    id: r.id,
    chainId: r.chain_id,
    seq: Number(r.seq),
    logSize: Number(r.log_size),
    rootHash: r.root_hash,
    prevAnchorHash: r.prev_anchor_hash ?? null,
    kid: r.kid,
    createdAt: iso(r.created_at),
    status: r.status,
    reason: r.reason ?? null,
    ...(withJws ? { jws: r.jws } : {}),
  };
}

export function toChainView(r: Row): ChainView {
  return {
    id: r.id,
    startedAt: iso(r.started_at),
    reason: r.reason,
    status: r.status,
    archivedAt: r.archived_at ? iso(r.archived_at) : null,
    prevChainId: r.prev_chain_id ?? null,
    prevChainHeadHash: r.prev_chain_head_hash ?? null,
    archivedVerify: r.archived_verify ?? null,
  };
}

/**
 * A chain's id commits to how it started, and every anchor signs its chainId: so the hand-over
 * from the archived chain (its head hash) and the reason are covered by the new chain's signatures.
 */
export function chainIdFor(c: { prevChainId: string | null; prevChainHeadHash: string | null; reason: string; startedAt: string }): string {
  return `ch-${sha256Hex(canonicalJson({ v: 1, prevChainId: c.prevChainId, prevChainHeadHash: c.prevChainHeadHash, reason: c.reason, startedAt: c.startedAt }))}`;
}

const ID_RE = /^[0-9a-f]{8,64}$/;

/** Anchor by id (64 hex) or a unique prefix of at least 8 hex characters, like git. */
export async function anchorById(ctx: Pick<AppContext, 'db'>, id: string, opts: { jws?: boolean } = {}): Promise<AnchorView> {
  const want = id.trim().toLowerCase();
  if (!ID_RE.test(want)) throw badInput(`malformed anchor id ${JSON.stringify(id)}: expected 8-64 hex characters`);
  const r = await ctx.db.query('SELECT * FROM anchors WHERE id LIKE $1 ORDER BY id LIMIT 2', [`${want}%`]);
  if (!r.rowCount) throw notFound(`anchor ${id} not found (stella evidence anchor list)`);
  if (r.rowCount! > 1) throw badInput(`anchor id prefix ${id} is ambiguous; give more characters`);
  return toAnchorView(r.rows[0], opts.jws);
}

/** The newest anchor of the active chain (null when nothing was anchored yet). */
export async function latestAnchor(ctx: Pick<AppContext, 'db'>, opts: { jws?: boolean } = {}): Promise<AnchorView | null> {
  const r = await ctx.db.query(`SELECT a.* FROM anchors a JOIN anchor_chains c ON c.id = a.chain_id WHERE c.status = 'active' ORDER BY a.seq DESC LIMIT 1`);
  if (r.rowCount) return toAnchorView(r.rows[0], opts.jws);
  // No active chain anchor (e.g. right after an archival): the newest anchor of any chain.
  const any = await ctx.db.query('SELECT * FROM anchors ORDER BY created_at DESC, seq DESC LIMIT 1');
  return any.rowCount ? toAnchorView(any.rows[0], opts.jws) : null;
}

export interface ListAnchorsQuery {
  before?: string;
  limit?: number;
  chainId?: string;
  showLinks?: boolean;
}
export interface ListedAnchor extends AnchorView {
  link?: 'ok' | 'genesis' | 'broken' | 'unknown';
  linkDetail?: string;
}

/** Anchors newest first; with showLinks, each row says whether its prev_anchor_hash matches the stored predecessor. */
export async function listAnchors(ctx: Pick<AppContext, 'db'>, q: ListAnchorsQuery = {}): Promise<{ anchors: ListedAnchor[]; chains: ChainView[] }> {
  const params: unknown[] = [];
  const where: string[] = [];
  if (q.before) {
    const t = Date.parse(q.before);
    if (Number.isNaN(t)) throw badInput(`--before ${JSON.stringify(q.before)} is not a timestamp (ISO-8601, e.g. 2026-01-17T12:00:00Z)`);
    params.push(new Date(t).toISOString());
    where.push(`a.created_at < $${params.length}`);
  }
  if (q.chainId) {
    params.push(q.chainId);
    where.push(`a.chain_id = $${params.length}`);
  }
  const limit = Math.min(Math.max(q.limit ?? 50, 1), 1000);
  params.push(limit);
  const r = await ctx.db.query(
    `SELECT a.*, p.id AS p_id, p.jws AS p_jws FROM anchors a LEFT JOIN anchors p ON p.chain_id = a.chain_id AND p.seq = a.seq - 1
     ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY a.created_at DESC, a.seq DESC LIMIT $${params.length}`,
    params,
  );
  const anchors = r.rows.map((row) => {
    const v: ListedAnchor = toAnchorView(row);
    if (q.showLinks) {
      if (v.seq === 0) {
        v.link = v.prevAnchorHash === null ? 'genesis' : 'broken';
        if (v.link === 'broken') v.linkDetail = 'seq 0 carries a prev_anchor_hash';
      } else if (!row.p_id) {
        v.link = 'broken';
        v.linkDetail = `no stored anchor seq ${v.seq - 1} in this chain`;
      } else {
        const prevHash = sha256Hex(Buffer.from(row.p_jws, 'utf8'));
        v.link = v.prevAnchorHash === prevHash ? 'ok' : 'broken';
        if (v.link === 'broken') v.linkDetail = `prev_anchor_hash ${v.prevAnchorHash?.slice(0, 12)} ≠ hash of seq ${v.seq - 1} (${prevHash.slice(0, 12)})`;
      }
    }
    return v;
  });
  const chains = await ctx.db.query('SELECT * FROM anchor_chains ORDER BY started_at');
  return { anchors, chains: chains.rows.map(toChainView) };
}

export async function listChains(db: Db | DbClient): Promise<ChainView[]> {
  return (await db.query('SELECT * FROM anchor_chains ORDER BY started_at, id')).rows.map(toChainView);
}

/** Public JWK of a signing key (active or retired) by kid, for exports. */
export async function signingJwk(ctx: Pick<AppContext, 'keys'>, kid: string): Promise<JWK> {
  const rec = (await ctx.keys.list()).find((k) => k.kid === kid);
  if (!rec) throw notFound(`signing key ${kid} is not in the key store`);
  if (rec.purpose !== SIGNING_PURPOSE) throw badInput(`key ${kid} is not a signing key`);
  return rec.publicJwk;
}

export const BACKUP_FORMAT = 'stella.anchor-backup.v1';

export function backupDir(ctx: Pick<AppContext, 'cfg'>): string {
  return join(ctx.cfg.dataDir, 'backups', 'anchors');
}

/**
 * One file per anchor, <dataDir>/backups/anchors/<id>.json, written after every anchor commit
 * (atomic rename). Backups of the data dir carry them; `anchor recover --source backup` reads them.
 */
export async function writeAnchorBackup(ctx: Pick<AppContext, 'cfg' | 'keys'>, a: AnchorView & { jws: string }): Promise<string> {
  const dir = backupDir(ctx);
  await mkdir(dir, { recursive: true });
  const publicJwk = await signingJwk(ctx, a.kid).catch(() => null);
  const file = join(dir, `${a.id}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ format: BACKUP_FORMAT, ...a, publicJwk }, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, file);
  return file;
}
