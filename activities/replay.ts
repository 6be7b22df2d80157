import { heartbeat } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { recordReplay, type ReplayRecordInput } from '../src/core/replay/record';
import { listRuns, tenantsWithRuns, verifyRun } from '../src/core/replay/runs';
import { holdFailedReplay } from '../src/core/replay/holds';

export function createReplayActivities(ctx: AppContext) {
  return {
    async replayRecord(input: ReplayRecordInput) {
      const r = await recordReplay(ctx, input);
      return { manifestDigest: r.manifestDigest, verdict: r.manifest.verdict, evidenceIds: r.evidenceIds };
    },
    async replayTenants(): Promise<string[]> {
      return tenantsWithRuns(ctx);
    },
    async replayLatest(tenant: string, n: number): Promise<string[]> {
      return (await listRuns(ctx, { tenant, limit: n })).map((r) => r.scanId);
    },
    /** Verifies one manifest; on failure the affected bundles get a legal hold (runbook §3 step 2). */
    async replayVerifyOne(tenant: string, scanId: string, source: string, incident: string | null) {
      heartbeat();
      const r = await verifyRun(ctx, tenant, scanId, source, true);
      let holdId: string | null = null;
      if (!r.ok) holdId = await holdFailedReplay(ctx, tenant, scanId, r.problems.filter((p) => p.severity === 'error').map((p) => p.code), incident);
      return { scanId, ok: r.ok, codes: r.problems.filter((p) => p.severity === 'error').map((p) => p.code), holdId };
    },
  };
}
