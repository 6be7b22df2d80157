/**
 * The one list of stella's features. serve, the worker's schedules, metrics, doctor and the
 * tests all take this list; nothing registers itself by being imported.
 */
import type { DoctorCheck } from '../core/doctor';
import type { RegisterRoutes } from '../api/deps';
import type { Feature } from './feature';
import { evidenceFeature } from './features/evidence';
import { lockerFeature } from './features/locker';
import { anchoringFeature } from './features/anchoring';
import { retentionFeature } from './features/retention';
import { promotionFeature } from './features/promotion';
import { scanFeature } from './features/scan';
import { replayFeature } from './features/replay';
import { backupFeature } from './features/backup';
import { tokensFeature } from './features/tokens';
import { identityFeature } from './features/identity';
import { ociAttestFeature } from './features/oci-attest';

export const FEATURES: readonly Feature[] = [
  identityFeature,
  evidenceFeature,
  lockerFeature,
  anchoringFeature,
  retentionFeature,
  promotionFeature,
  scanFeature,
  replayFeature,
  backupFeature,
  tokensFeature,
  ociAttestFeature,
];

export function doctorChecksOf(features: readonly Feature[] = FEATURES): DoctorCheck[] {
  return features.flatMap((f) => f.doctorChecks ?? []);
}

/** Loads each feature's route module (the HTTP code) — only an API process calls this. */
export async function routesOf(features: readonly Feature[] = FEATURES): Promise<RegisterRoutes[]> {
  const loaded = await Promise.all(features.map((f) => f.routes?.()));
  return loaded.filter((r): r is RegisterRoutes => !!r);
}
