import type { AppContext } from '../src/core/context';
import { createEvidenceActivities } from './evidence';
import { createVerifyActivities } from './verify';
import { createRetentionActivities } from './retention';
import { createLockerActivities } from './locker';
import { createPromotionActivities } from './promotion';
import { createScanActivities } from './scan';
import { createAnchoringActivities } from './anchoring';
import { createBackupActivities } from './backup';

/** Every activity the worker registers; workflows type their proxies from this. */
export function createActivities(ctx: AppContext) {
  return {
    ...createEvidenceActivities(ctx),
    ...createVerifyActivities(ctx),
    ...createRetentionActivities(ctx),
    ...createLockerActivities(ctx),
    ...createPromotionActivities(ctx),
    ...createScanActivities(ctx),
    ...createAnchoringActivities(ctx),
    ...createBackupActivities(ctx),
  };
}

export type Activities = ReturnType<typeof createActivities>;
