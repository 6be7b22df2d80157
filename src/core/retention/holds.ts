import { randomUUID } from 'node:crypto';
import type { Db } from '../../db/pool';
import { withTransaction } from '../../db/pool';
import type { AppContext } from '../context';
import { audit, auditTrailOf, timelineEvent } from '../audit';
import { badInput, conflict, notFound } from '../../lib/errors';
import { validateDigest, validateKind } from '../evidence';
import { itemHoldFacts } from '../evidence/queries/retention';
import type { Queryable } from '../evidence/state';
import { type ActiveHold, HOLD_SCOPES, type HoldScope, holdsCovering } from './decide';

/**
 * Legal holds (replay runbook §2.3, §3 step 2/7). While a hold is active (released_at null)
 * no matching item is purged by retention or deleted after archiving, whatever its age.
 * Scopes: items (evidence ids), artifact (subject artifact digests: all their evidence),
 * tenant (everything of the tenant), bundle_type (evidence kinds).
 */
export { HOLD_SCOPES, type HoldScope };

export interface HoldInput {
  tenant: string;
  scope: HoldScope | 'bundle-type';
  values?: string[];
  reason: string;
  incidentTicket?: string | null;
  actor: string;
}

export interface Hold {
  id: string;
  tenant: string;
  scope: HoldScope;
  values: string[];
  reason: string;
  incidentTicket: string | null;
  createdBy: string;
  createdAt: string;
  releasedBy: string | null;
  releasedAt: string | null;
  releaseReason: string | null;
  active: boolean;
}

function toHold(r: Record<string, any>): Hold {
  return {
    id: r.id,
    tenant: r.tenant_id,
    scope: r.scope,
    values: r.scope_values,
    reason: r.reason,
    incidentTicket: r.incident_ticket,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
    releasedBy: r.released_by,
    releasedAt: r.released_at ? new Date(r.released_at).toISOString() : null,
    releaseReason: r.release_reason,
    active: !r.released_at,
  };
}

export function normalizeHold(input: HoldInput): { scope: HoldScope; values: string[] } {
  const scope = (input.scope === 'bundle-type' ? 'bundle_type' : input.scope) as HoldScope;
  if (!HOLD_SCOPES.includes(scope)) throw badInput(`unknown hold scope ${JSON.stringify(input.scope)}: expected one of ${HOLD_SCOPES.join(', ')}`);
  const values = [...new Set((input.values ?? []).map((v) => String(v).trim()).filter(Boolean))].sort();
  if (scope === 'tenant') {
    if (values.length && !(values.length === 1 && values[0] === input.tenant))
      throw badInput('a tenant hold takes no values (it holds the whole tenant it is created for)');
    return { scope, values: [] };
  }
  if (!values.length) throw badInput(`a ${scope} hold needs at least one value`);
  if (values.length > 10_000) throw badInput('a hold names at most 10000 values');
  for (const v of values) {
    if (scope === 'items') validateDigest(v, 'evidence id');
    if (scope === 'artifact') validateDigest(v, 'artifact digest');
    if (scope === 'bundle_type') validateKind(v);
  }
  return { scope, values };
}

/** Creates a hold; audited, and a `replay.hold.created` timeline event in the same transaction. */
export async function createHold(ctx: Pick<AppContext, 'db'>, input: HoldInput): Promise<Hold> {
  const { scope, values } = normalizeHold(input);
  const reason = (input.reason ?? '').trim();
  if (!reason) throw badInput('a hold needs a reason');
  if (reason.length > 2000) throw badInput('reason is longer than 2000 characters');
  const ticket = input.incidentTicket?.trim() || null;
  if (ticket && ticket.length > 200) throw badInput('incident ticket is longer than 200 characters');
  const id = `hold-${randomUUID()}`;
  return withTransaction(ctx.db as Db, async (tx) => {
    const r = await tx.query(
      `INSERT INTO legal_holds (id, tenant_id, scope, scope_values, reason, incident_ticket, created_by) VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING *`,
      [id, input.tenant, scope, values, reason, ticket, input.actor],
    );
    const hold = toHold(r.rows[0]);
    await audit(tx, {
      tenant: input.tenant,
      actor: input.actor,
      action: 'evidence.hold.created',
      target: id,
      reason,
      details: { scope, values, incidentTicket: ticket },
    });
    await timelineEvent(tx, input.tenant, 'replay.hold.created', id, { holdId: id, scope, values, reason, incidentTicket: ticket, createdBy: input.actor });
    return hold;
  });
}

export async function getHold(db: Db, tenant: string, id: string): Promise<Hold> {
  const r = await db.query('SELECT * FROM legal_holds WHERE tenant_id=$1 AND id=$2', [tenant, id]);
  if (!r.rowCount) throw notFound(`hold ${id} not found`);
  return toHold(r.rows[0]);
}

export async function listHolds(db: Db, tenant: string, opts: { includeReleased?: boolean } = {}): Promise<Hold[]> {
  const r = await db.query(`SELECT * FROM legal_holds WHERE tenant_id=$1 ${opts.includeReleased ? '' : 'AND released_at IS NULL'} ORDER BY created_at, id`, [
    tenant,
  ]);
  return r.rows.map(toHold);
}

/** Releases an active hold; audited, with a `replay.hold.released` timeline event. */
export async function releaseHold(ctx: Pick<AppContext, 'db'>, q: { tenant: string; id: string; actor: string; reason?: string }): Promise<Hold> {
  return withTransaction(ctx.db as Db, async (tx) => {
    const cur = await tx.query('SELECT * FROM legal_holds WHERE tenant_id=$1 AND id=$2 FOR UPDATE', [q.tenant, q.id]);
    if (!cur.rowCount) throw notFound(`hold ${q.id} not found`);
    if (cur.rows[0].released_at)
      throw conflict(`hold ${q.id} was already released by ${cur.rows[0].released_by} at ${new Date(cur.rows[0].released_at).toISOString()}`);
    const reason = q.reason?.trim() || 'released';
    const r = await tx.query(`UPDATE legal_holds SET released_by=$3, released_at=now(), release_reason=$4 WHERE tenant_id=$1 AND id=$2 RETURNING *`, [
      q.tenant,
      q.id,
      q.actor,
      reason,
    ]);
    const hold = toHold(r.rows[0]);
    await audit(tx, {
      tenant: q.tenant,
      actor: q.actor,
      action: 'evidence.hold.released',
      target: q.id,
      reason,
      details: { scope: hold.scope, values: hold.values, incidentTicket: hold.incidentTicket },
    });
    await timelineEvent(tx, q.tenant, 'replay.hold.released', q.id, {
      holdId: q.id,
      scope: hold.scope,
      values: hold.values,
      reason,
      releasedBy: q.actor,
      incidentTicket: hold.incidentTicket,
    });
    return hold;
  });
}

/** A tenant's active holds, oldest first: the facts retention decisions use. */
export async function activeHolds(db: Queryable, tenant: string): Promise<ActiveHold[]> {
  const r = await db.query('SELECT id, scope, scope_values FROM legal_holds WHERE tenant_id=$1 AND released_at IS NULL ORDER BY created_at, id', [tenant]);
  return r.rows.map((x) => ({ id: x.id as string, scope: x.scope as HoldScope, values: x.scope_values as string[] }));
}

export async function countActiveHolds(db: Db, tenant: string): Promise<number> {
  const r = await db.query('SELECT count(*)::int AS n FROM legal_holds WHERE tenant_id=$1 AND released_at IS NULL', [tenant]);
  return r.rows[0].n as number;
}

/** Active holds covering one item (for inspect / error messages); an item not indexed yet is matched by id and tenant holds. */
export async function holdsFor(db: Queryable, tenant: string, itemId: string): Promise<string[]> {
  const item = (await itemHoldFacts(db, tenant, itemId)) ?? { id: itemId, kind: null, subjects: [] };
  return holdsCovering(item, await activeHolds(db, tenant));
}

/** Is this item under an active legal hold? */
export async function isHeld(db: Queryable, tenant: string, itemId: string): Promise<boolean> {
  return (await holdsFor(db, tenant, itemId)).length > 0;
}

export interface HoldTimelineEntry {
  at: string;
  actor: string;
  action: string;
  reason: string | null;
  details: Record<string, unknown>;
}

/** `stella evidence hold timeline <id>`: the hold and everything audited about it, oldest first (within the tenant). */
export async function holdTimeline(db: Db, tenant: string, id: string): Promise<{ hold: Hold; events: HoldTimelineEntry[] }> {
  const hold = await getHold(db, tenant, id);
  const trail = await auditTrailOf(db, tenant, id);
  return {
    hold,
    events: trail.map((e) => ({ at: new Date(e.at).toISOString(), actor: e.actor, action: e.action, reason: e.reason, details: e.details ?? {} })),
  };
}
