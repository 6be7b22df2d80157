import type { AppContext } from '../../src/core/context';

/** What a restore must reproduce exactly: items, Merkle log, anchors, edges. */
export async function lockerSnapshot(db: AppContext['db']) {
  const q = async (sql: string) => (await db.query(sql)).rows;
  return {
    items: await q(`SELECT tenant_id, id, kind, size_bytes, state, created_at::text AS t FROM evidence_items ORDER BY tenant_id, id`),
    log: await q(`SELECT seq, item_id, encode(leaf_hash, 'hex') AS h FROM evidence_log ORDER BY seq`),
    anchors: await q(`SELECT id, seq, log_size, root_hash, status FROM anchors ORDER BY chain_id, seq`),
    edges: await q(`SELECT * FROM evidence_edges ORDER BY child_id, parent_id`),
  };
}
