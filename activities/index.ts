import type { AppContext } from '../src/core/context';
import { createEvidenceActivities } from './evidence';
import { createVerifyActivities } from './verify';
import { createReplayActivities } from './replay';
import { createRetentionActivities } from './retention';
import { createLockerActivities } from './locker';
import { createPromotionActivities } from './promotion';
import { createAnchoringActivities } from './anchoring';
import { createScanActivities } from './scan';
import { createBackupActivities } from './backup';
import { createOciAttestActivities } from './oci-attest';

/** Every activity the worker registers; workflows type their proxies from this. */
export function createActivities(ctx: AppContext) {
  return {
    ...createEvidenceActivities(ctx),
    ...createVerifyActivities(ctx),
    ...createReplayActivities(ctx),
    ...createRetentionActivities(ctx),
    ...createLockerActivities(ctx),
    ...createPromotionActivities(ctx),
    ...createAnchoringActivities(ctx),
    ...createScanActivities(ctx),
    ...createBackupActivities(ctx),
    ...createOciAttestActivities(ctx),
  };
}

export type Activities = ReturnType<typeof createActivities>;
