import type { AppContext } from '../context';
import { audit } from '../audit';
import { createHold } from '../retention/holds';
import { getRun } from './runs';

/**
 * Locks the bundles of a replay that failed verification (runbook §3 step 2): a legal hold on
 * the four items, with an audit entry naming the failure codes.
 */
export async function holdFailedReplay(ctx: AppContext, tenant: string, scanId: string, codes: string[], incident: string | null): Promise<string | null> {
  const run = await getRun(ctx, tenant, scanId);
  const items = [run.manifestDigest, run.envelopeDigest, run.inputDigest, run.outputDigest];
  const reason = `replay verification failed: ${codes.join(', ')}`;
  // The hold store writes the replay.hold.created timeline event itself.
  const hold = await createHold(ctx, {
    tenant,
    scope: 'items',
    values: items,
    reason,
    incidentTicket: incident ?? `replay-${scanId}`,
    actor: 'replay-nightly',
  });
  const holdId = hold.id;
  await audit(ctx.db, { tenant, actor: 'replay-nightly', action: 'replay.verify.failed', target: scanId, reason, details: { codes, items, holdId } });
  return holdId;
}
