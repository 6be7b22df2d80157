import type { ScheduleSource } from '../../temporal/schedules';
import { SCHEDULE_IDS } from '../../temporal/names';

// `stella-backup-daily`: off by default (a backup copies every blob; opt in with
// `stella config set Backup:Schedule true`, cron via Backup:Cron, destination via Backup:Path).
export const backupSchedules: ScheduleSource = (cfg) =>
  cfg.backup.schedule
    ? [
        {
          id: SCHEDULE_IDS.backupDaily,
          description: 'Evidence Locker backup (index snapshot, blobs, anchor chain, public keys) to Backup:Path',
          workflowType: 'backupEvidenceLocker',
          args: [{ backupId: '', dir: '', actor: 'backup-schedule' }],
          cron: [cfg.backup.cron],
        },
      ]
    : [];
