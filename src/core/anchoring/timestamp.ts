/** Optional RFC 3161 timestamps on anchors: requested from the configured TSA over the signed checkpoint, stored, re-verified. */
import { readFile } from 'node:fs/promises';
import { timestampRequest, tokenFromResponse, verifyTimestampToken, type TokenCheck } from '../../crypto/rfc3161';
import { badInput, notFound, unavailable } from '../../lib/errors';
import type { AppContext } from '../context';

export interface AnchorTimestamp {
  anchorId: string;
  tsaUrl: string;
  genTime: string;
  /** base64 of the DER TimeStampToken. */
  token: string;
}

async function tsaCa(ctx: Pick<AppContext, 'cfg'>): Promise<string | undefined> {
  const f = ctx.cfg.anchoring.tsaCaFile;
  return f ? readFile(f, 'utf8') : undefined;
}

/**
 * Ask the TSA for a token over the anchor's checkpoint note (the bytes `openssl ts -verify -data`
 * checks), verify it, and store it. No-op without a TSA URL or a checkpoint.
 */
export async function timestampAnchor(ctx: Pick<AppContext, 'cfg' | 'db'>, anchorId: string): Promise<AnchorTimestamp | null> {
  const url = ctx.cfg.anchoring.tsaUrl;
  if (!url) return null;
  const r = await ctx.db.query('SELECT checkpoint FROM anchors WHERE id = $1', [anchorId]);
  if (!r.rowCount) throw notFound(`anchor ${anchorId} not found`);
  const checkpoint: string | null = r.rows[0].checkpoint;
  if (!checkpoint) throw badInput(`anchor ${anchorId.slice(0, 12)} predates checkpoints; nothing to timestamp`);
  const data = Buffer.from(checkpoint, 'utf8');
  const { der, nonce } = timestampRequest(data);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/timestamp-query' }, body: der, signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    throw unavailable(`TSA ${url} is unreachable: ${(e as Error).message}`);
  }
  if (!res.ok) throw unavailable(`TSA ${url} answered HTTP ${res.status}`);
  const got = tokenFromResponse(new Uint8Array(await res.arrayBuffer()));
  if ('problem' in got) throw unavailable(`TSA ${url}: ${got.problem}`);
  const check = verifyTimestampToken(got.token, data, await tsaCa(ctx), nonce);
  if (!check.ok) throw unavailable(`TSA ${url} returned a token that does not verify: ${check.problem}`);
  await ctx.db.query(
    `INSERT INTO anchor_timestamps (anchor_id, tsa_url, token, gen_time) VALUES ($1,$2,$3,$4)
     ON CONFLICT (anchor_id) DO UPDATE SET tsa_url = EXCLUDED.tsa_url, token = EXCLUDED.token, gen_time = EXCLUDED.gen_time, created_at = now()`,
    [anchorId, url, got.token, check.genTime],
  );
  return { anchorId, tsaUrl: url, genTime: check.genTime!, token: got.token.toString('base64') };
}

/** The stored token of an anchor, or null. */
export async function anchorTimestamp(ctx: Pick<AppContext, 'db'>, anchorId: string): Promise<AnchorTimestamp | null> {
  const r = await ctx.db.query('SELECT anchor_id, tsa_url, token, gen_time FROM anchor_timestamps WHERE anchor_id = $1', [anchorId]);
  if (!r.rowCount) return null;
  const row = r.rows[0];
  return { anchorId: row.anchor_id, tsaUrl: row.tsa_url, genTime: new Date(row.gen_time).toISOString(), token: (row.token as Buffer).toString('base64') };
}

/** Re-verify stored tokens of the given anchors against their checkpoints (for `anchor verify`). */
export async function checkTimestamps(
  ctx: Pick<AppContext, 'db' | 'cfg'>,
  anchors: { id: string; checkpoint: string | null }[],
): Promise<{ anchorId: string; check: TokenCheck }[]> {
  const ids = anchors.filter((a) => a.checkpoint).map((a) => a.id);
  if (!ids.length) return [];
  const r = await ctx.db.query('SELECT anchor_id, token FROM anchor_timestamps WHERE anchor_id = ANY($1)', [ids]);
  const ca = await tsaCa(ctx).catch(() => undefined);
  const byId = new Map(anchors.map((a) => [a.id, a.checkpoint!]));
  return r.rows.map((row) => ({ anchorId: row.anchor_id, check: verifyTimestampToken(row.token, Buffer.from(byId.get(row.anchor_id)!, 'utf8'), ca) }));
}
