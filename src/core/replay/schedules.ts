/** The replay feature's Temporal Schedule: nightly verification of the latest N manifests per tenant (runbook §2.2). */
import { SCHEDULE_IDS } from '../../temporal/names';
import type { ScheduleSource } from '../../temporal/schedules';

// The workflow type is the name of workflows/replay.ts#replayVerifyNightly (core never imports workflows).
export const replaySchedules: ScheduleSource = (cfg) => [
  {
    id: SCHEDULE_IDS.replayNightly,
    description: 'Nightly verification of the latest replay manifests per tenant',
    workflowType: 'replayVerifyNightly',
    args: [{ latestN: cfg.schedules.replayLatestN, concurrency: 4 }],
    cron: ['30 3 * * *'],
  },
];
