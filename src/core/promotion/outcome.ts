/**
 * record, the promotion's last step (the `promotionFinalize` activity): the final row, audit
 * entry and timeline event; for `promoted`, also whether the target environment publishes
 * stella's attestations to the image's registry, so the workflow runs its publish step only then.
 */
import type { AppContext } from '../context';
import { publishConfig, publishDecision } from '../oci-attest/auto';
import { type FinalizePromotion, finalizePromotion } from './store';

export interface RecordOutcome extends FinalizePromotion {
  /** The target environment and image (workflows that started before this field pass neither). */
  toEnv?: string;
  imageRef?: string | null;
}

/**
 * `publish` is set for `promoted` outcomes when the workflow passed the target: true when the
 * environment opted in (setting registry.publish) and the image names a registry — the same
 * decision the publish step makes. The settings read runs beside the transaction.
 */
export async function recordOutcome(ctx: AppContext, f: RecordOutcome): Promise<{ changed: boolean; publish?: boolean }> {
  const { toEnv, imageRef, ...final } = f;
  const asked = f.state === 'promoted' && toEnv !== undefined;
  const [r, cfg] = await Promise.all([finalizePromotion(ctx.db, final), asked ? publishConfig(ctx, f.tenant) : null]);
  return cfg && toEnv !== undefined ? { ...r, publish: publishDecision(cfg, toEnv, imageRef ?? null).publish } : r;
}
