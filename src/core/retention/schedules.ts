import type { ScheduleSource } from '../../temporal/schedules';
import { SCHEDULE_IDS } from '../../temporal/names';

// Daily retention (tier move + purge, per tenant) as a Temporal Schedule.
export const retentionSchedules: ScheduleSource = () => [
  {
    id: SCHEDULE_IDS.retentionDaily,
    description: 'Retention: hot->cold tier move and purge of expired evidence, every tenant (SP-004)',
    workflowType: 'retentionDaily',
    args: [{ actor: 'retention-schedule' }],
    cron: ['45 3 * * *'],
  },
];
