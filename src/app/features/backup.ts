import type { Feature } from '../feature';
import { backupSchedules } from '../../core/backup/schedules';

/** Backup, restore, point-in-time restore, offline evidence packs, diagnostics (DR-001/DR-002). */
export const backupFeature: Feature = {
  name: 'backup',
  routes: async () => (await import('../../api/routes/backup')).registerBackupRoutes,
  schedules: backupSchedules,
};
