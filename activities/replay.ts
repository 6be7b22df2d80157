/** Replay activities: each calls core and classifies its errors (activities/failure.ts). */
import { heartbeat } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { holdFailedReplay } from '../src/core/replay/holds';
import { recordReplay, type ReplayRecordInput } from '../src/core/replay/record';
import { listRuns, tenantsWithRuns, verifyRun } from '../src/core/replay/runs';
import { recordScanReplay } from '../src/core/replay/scan-record';
import { classified } from './failure';
import type { ScanContext } from './scan';

export function createReplayActivities(ctx: AppContext) {
  return {
    replayRecord: (input: ReplayRecordInput) =>
      classified(async () => {
        const r = await recordReplay(ctx, input);
        return { manifestDigest: r.manifestDigest, verdict: r.manifest.verdict, evidenceIds: r.evidenceIds };
      }),

    /** The replay record of a scan-then-attest run (see recordScanReplay). */
    async scanRecordReplay(c: ScanContext): Promise<{ manifestDigest: string; verdict: string }> {
      const hb = setInterval(() => heartbeat('replay'), 5000);
      try {
        return await classified(() =>
          recordScanReplay(ctx, {
            tenant: c.tenant,
            scanId: c.scanId,
            artifactDigest: c.artifactDigest,
            imagePath: c.imagePath,
            imageRef: c.imageRef,
            scanTime: c.scanTime,
            feedDigest: c.feed?.digest ?? null,
            engine: c.engine,
            ...(c.insecureRegistry ? { insecureRegistry: true } : {}),
          }),
        );
      } finally {
        clearInterval(hb);
      }
    },

    replayTenants: (): Promise<string[]> => classified(() => tenantsWithRuns(ctx)),

    replayLatest: (tenant: string, n: number): Promise<string[]> => classified(async () => (await listRuns(ctx, tenant, { limit: n })).map((r) => r.scanId)),

    /** Verifies one manifest; on failure the affected bundles get a legal hold (runbook §3 step 2). */
    replayVerifyOne: (tenant: string, scanId: string, source: string, incident: string | null) =>
      classified(async () => {
        heartbeat();
        const r = await verifyRun(ctx, tenant, scanId, source, true);
        const codes = r.problems.filter((p) => p.severity === 'error').map((p) => p.code);
        const holdId = r.ok ? null : await holdFailedReplay(ctx, tenant, scanId, codes, incident);
        return { scanId, ok: r.ok, codes, holdId };
      }),
  };
}
