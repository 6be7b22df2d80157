import type { ScheduleSource } from '../../../temporal/schedules';
import { SCHEDULE_IDS } from '../../../temporal/names';

// SP-001: daily integrity check (quick by default, sampled).
export const lockerSchedules: ScheduleSource = (cfg) => [
  {
    id: SCHEDULE_IDS.integrityDaily,
    description: 'SP-001 daily integrity check of the Evidence Locker',
    workflowType: 'verifyEvidence',
    args: [{ runId: '', mode: cfg.schedules.verifyMode, sampleRate: cfg.schedules.verifySampleRate }],
    cron: ['15 2 * * *'],
  },
];
