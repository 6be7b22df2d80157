/** `offline-kit sync`: an offline verification log brought back into the locker's record. */
import type { AppContext } from '../context';
import { audit } from '../audit';
import { getRun, recordVerification, type RecordedProblem } from './runs';

export interface OfflineVerificationLog {
  scanId: string;
  ok: boolean;
  problems: RecordedProblem[];
  verifiedAt?: string;
}

export interface SyncedVerification {
  scanId: string;
  result: 'passed' | 'failed';
  codes: string[];
}

export async function syncOfflineVerification(ctx: AppContext, tenant: string, actor: string, log: OfflineVerificationLog): Promise<SyncedVerification> {
  await getRun(ctx, tenant, log.scanId);
  await recordVerification(ctx, tenant, log.scanId, 'offline-sync', { ok: log.ok, problems: log.problems });
  await audit(ctx.db, { tenant, actor, action: 'replay.offline.sync', target: log.scanId, details: { ok: log.ok, verifiedAt: log.verifiedAt } });
  return { scanId: log.scanId, result: log.ok ? 'passed' : 'failed', codes: log.problems.filter((x) => x.severity === 'error').map((x) => x.code) };
}
