import { heartbeat } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { recordReplay, type ReplayRecordInput } from '../src/core/replay/record';
import { listRuns, tenantsWithRuns, verifyRun } from '../src/core/replay/runs';
import { holdFailedReplay } from '../src/core/replay/holds';
import { loadFeedSnapshot } from '../src/core/scan/feeds';
import { runScan } from '../src/core/scan/engine';
import type { ScanContext } from './scan';

export function createReplayActivities(ctx: AppContext) {
  return {
    async replayRecord(input: ReplayRecordInput) {
      const r = await recordReplay(ctx, input);
      return { manifestDigest: r.manifestDigest, verdict: r.manifest.verdict, evidenceIds: r.evidenceIds };
    },
    /**
     * The replay record of a scan-then-attest run: the image is read once more with the pinned
     * feed (as the match step does) to capture the inventory, findings and SBOM exactly as the
     * verdict saw them; same scan time → same bundles → idempotent.
     */
    async scanRecordReplay(c: ScanContext): Promise<{ manifestDigest: string; verdict: string }> {
      const feed = c.feed ? await loadFeedSnapshot(ctx, c.feed.digest) : undefined;
      const hb = setInterval(() => heartbeat('replay'), 5000);
      try {
        const r = await runScan(c.imagePath, { expectedDigest: c.artifactDigest, now: c.scanTime, engine: c.engine, ...(feed ? { feed } : {}) });
        const logs =
          [
            `scan ${c.scanId} of ${c.imageRef ?? c.imagePath} (${c.artifactDigest})`,
            `scanner ${r.scannerName} ${r.scannerVersion}`,
            `feed ${feed ? feed.digest : 'none'}`,
            ...r.warnings.map((w) => `warning: ${w}`),
          ].join('\n') + '\n';
        const rec = await recordReplay(ctx, {
          tenant: c.tenant,
          scanId: c.scanId,
          artifactDigest: c.artifactDigest,
          imageRef: c.imageRef,
          packages: r.packages,
          ...(r.distro ? { distro: r.distro } : {}),
          feed: feed ?? null,
          sbom: r.sbom,
          findings: r.findings,
          logs,
          createdAt: c.scanTime,
        });
        return { manifestDigest: rec.manifestDigest, verdict: rec.manifest.verdict };
      } finally {
        clearInterval(hb);
      }
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
      if (!r.ok)
        holdId = await holdFailedReplay(
          ctx,
          tenant,
          scanId,
          r.problems.filter((p) => p.severity === 'error').map((p) => p.code),
          incident,
        );
      return { scanId, ok: r.ok, codes: r.problems.filter((p) => p.severity === 'error').map((p) => p.code), holdId };
    },
  };
}
