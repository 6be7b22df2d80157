/**
 * The one place `evidence_items.state` (and the tier that goes with a revival) changes.
 * Every feature that moves an item between present / corrupted / quarantined / purged calls
 * this, inside its own transaction when it has one, so the rules live here only.
 */
import type pg from 'pg';

export type ItemState = 'present' | 'corrupted' | 'quarantined' | 'purged';

/** Anything that runs a query: the pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export interface Transition {
  /** States the item may be in for the change to apply; items in other states are left alone. */
  from: readonly ItemState[];
  to: ItemState;
  /** Why (stored as state_reason, cut to 500 chars); null clears it (e.g. back to present). */
  reason: string | null;
}

/**
 * Moves the named items of one tenant from any of `t.from` to `t.to`; returns the ids that
 * changed. An item revived to `present` from `purged` is hot again (its blob was just written
 * to the hot store), so a purged cold item never comes back marked cold.
 */
export async function transitionItems(q: Queryable, tenant: string, ids: readonly string[], t: Transition): Promise<string[]> {
  if (!ids.length) return [];
  const r = await q.query<{ id: string }>(
    `UPDATE evidence_items SET state = $3, state_reason = left($4, 500), state_changed_at = now(),
            tier = CASE WHEN $3 = 'present' AND state = 'purged' THEN 'hot' ELSE tier END
      WHERE tenant_id = $1 AND id = ANY ($2::text[]) AND state = ANY ($5::text[])
      RETURNING id`,
    [tenant, ids, t.to, t.reason, t.from],
  );
  return r.rows.map((row) => row.id);
}
