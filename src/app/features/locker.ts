import type { Feature } from '../feature';
import { lockerSchedules } from '../../core/evidence/locker/schedules';
import { lockerMetrics } from '../../core/evidence/locker/metrics';
import { lockerDoctorChecks } from '../../core/evidence/locker/doctor-checks';

/** Evidence Locker operations: integrity verification, index, storage, repair, bulk ingest. */
export const lockerFeature: Feature = {
  name: 'locker',
  routes: async () => {
    const [verify, locker] = await Promise.all([import('../../api/routes/verify'), import('../../api/routes/locker')]);
    return async (app, deps) => {
      await verify.registerVerifyRoutes(app, deps);
      await locker.registerLockerRoutes(app, deps);
    };
  },
  schedules: lockerSchedules,
  metrics: lockerMetrics,
  doctorChecks: lockerDoctorChecks,
};
