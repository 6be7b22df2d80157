/**
 * Who may approve, abort or retry a promotion: the API mints a signed action token from the
 * caller's verified identity; the workflow hands every approve/abort/retry (update or signal)
 * to `verifyPromotionAction` (an activity), which verifies the token, decides with the pure
 * `decideAction`, and audits the outcome, accepted or rejected, with the identity behind it.
 */
import { type ActionClaims, type PromotionAction, type VerifiedAction, mintActionToken, verifyActionToken } from '../../crypto/action-tokens';
import type { KeyStore } from '../../crypto/keys';
import { TokenError } from '../../crypto/tokens';
import type { Db } from '../../db/pool';
import { audit } from '../audit';
import { promotionRequester } from '../audit/queries/promotion';
import { TOKEN_PURPOSE } from '../keys';
import { liveTokenJwks } from '../identity/revocation';
import type { PromotionStateName } from './types';
import { FINAL_STATES } from './types';

/** What the workflow knows when an action arrives: the request as sent, and the promotion's state. */
export interface ActionRequest {
  op: PromotionAction;
  channel: 'update' | 'signal';
  /** As sent: anything (a UI user may type any JSON). */
  token?: unknown;
  claimedBy?: unknown;
  note?: string;
  tenant: string;
  promotionId: string;
  workflowId: string;
  /** Absent in requests from workflows started before it was passed. */
  artifactDigest?: string;
  requestedBy: string;
  state: PromotionStateName;
  approvers: string[];
}

export type ActionVerdict = { ok: true; by: string; jti: string } | { ok: false; code: 'FORBIDDEN' | 'CONFLICT'; reason: string; verifiedAs?: string };

/** Mints the token for one action by `claims.sub` (the API caller), signed with the API-token key. */
export async function mintPromotionActionToken(keys: KeyStore, claims: ActionClaims): Promise<string> {
  return mintActionToken(await keys.signer((await keys.active(TOKEN_PURPOSE)).kid), claims);
}

/** Pure: whether a verified token authorises this action on this promotion now. */
export function decideAction(v: VerifiedAction, r: ActionRequest): ActionVerdict {
  const no = (code: 'FORBIDDEN' | 'CONFLICT', reason: string): ActionVerdict => ({ ok: false, code, reason, verifiedAs: v.sub });
  if (v.tenant !== r.tenant || v.promotionId !== r.promotionId || v.workflowId !== r.workflowId)
    return no('FORBIDDEN', `action token is for promotion ${v.promotionId} of tenant ${v.tenant}, not ${r.promotionId}`);
  if (v.action !== r.op) return no('FORBIDDEN', `action token is for ${v.action}, not ${r.op}`);
  if (typeof r.claimedBy === 'string' && r.claimedBy !== v.sub) return no('FORBIDDEN', `claimed approver ${r.claimedBy} is not the token's subject ${v.sub}`);
  if (r.channel === 'signal' && r.op !== 'retry')
    return no('FORBIDDEN', `${r.op} by signal is not accepted (a signal has no answer and no check); use stella promotion ${r.op}`);
  if ((FINAL_STATES as readonly string[]).includes(r.state)) return no('CONFLICT', `promotion ${r.workflowId} is already ${r.state}`);
  if (r.op === 'approve') {
    if (r.state !== 'waiting-approval') return no('CONFLICT', `promotion ${r.workflowId} is ${r.state}, not waiting for approval`);
    if (v.sub === r.requestedBy) return no('FORBIDDEN', `${v.sub} requested promotion ${r.workflowId} and cannot approve it`);
    if (r.approvers.includes(v.sub)) return no('CONFLICT', `${v.sub} has already approved promotion ${r.workflowId}`);
  }
  return { ok: true, by: v.sub, jti: v.jti };
}

/** The activity: verify the token (signature, expiry, binding), decide, audit either way. */
export async function verifyPromotionAction(ctx: { db: Db; keys: KeyStore }, r: ActionRequest): Promise<ActionVerdict> {
  let verdict: ActionVerdict;
  try {
    const v = await verifyActionToken(r.token, (await liveTokenJwks(ctx)) as never);
    verdict = decideAction(v, r);
    if (verdict.ok && r.op === 'approve') verdict = (await notRequestedThroughStella(ctx.db, r, v.sub)) ?? verdict;
  } catch (e) {
    if (!(e instanceof TokenError)) throw e;
    verdict = { ok: false, code: 'FORBIDDEN', reason: `${r.op} refused: ${e.message} (send it through the stella API: stella promotion ${r.op})` };
  }
  await auditAction(ctx.db, r, verdict);
  return verdict;
}

/**
 * An approval counts only for a promotion requested through the stella API by the requester the
 * workflow names: a workflow started straight through Temporal with a made-up requester cannot be
 * approved by the person who started it.
 */
async function notRequestedThroughStella(db: Db, r: ActionRequest, sub: string): Promise<ActionVerdict | null> {
  const requester = r.artifactDigest ? await promotionRequester(db, r.tenant, r.artifactDigest, r.promotionId) : null;
  const no = (reason: string): ActionVerdict => ({ ok: false, code: 'FORBIDDEN', reason, verifiedAs: sub });
  if (requester === null) return no(`promotion ${r.workflowId} was not requested through stella; it cannot be approved`);
  if (requester !== r.requestedBy) return no(`promotion ${r.workflowId} names ${r.requestedBy} as requester but was requested by ${requester}`);
  return null;
}

/** One audit entry per action: accepted under the verified subject; rejected under it, or under what was claimed, marked unverified. */
export async function auditAction(
  db: Db,
  r: Pick<ActionRequest, 'op' | 'channel' | 'claimedBy' | 'note' | 'tenant' | 'promotionId' | 'workflowId' | 'state'>,
  verdict: ActionVerdict,
): Promise<void> {
  const claimed = typeof r.claimedBy === 'string' ? r.claimedBy.slice(0, 200) : null;
  const base = { promotionId: r.promotionId, channel: r.channel, state: r.state };
  if (verdict.ok) {
    await audit(db, {
      tenant: r.tenant,
      actor: verdict.by,
      action: `promotion.${r.op}`,
      target: r.workflowId,
      reason: r.note,
      details: { ...base, verified: true, jti: verdict.jti },
    });
    return;
  }
  const verified = verdict.verifiedAs !== undefined;
  await audit(db, {
    tenant: r.tenant,
    actor: verified ? verdict.verifiedAs! : `unverified:${claimed ?? 'unknown'}`,
    action: `promotion.${r.op}.rejected`,
    target: r.workflowId,
    reason: verdict.reason,
    details: { ...base, verified, claimed, ...(r.note ? { note: r.note.slice(0, 1000) } : {}) },
  });
}
