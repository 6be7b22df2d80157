/** Activities of scanThenAttest: each calls one core step (src/core/scan/steps.ts) and classifies its errors. */
import { Context, activityInfo, heartbeat } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import type { AttestType } from '../src/core/attest/attest';
import type { FinishRun, ScanRun } from '../src/core/scan/runs';
import { attestRun, finishScan, prepareScan, storeReport, storeSbom } from '../src/core/scan/steps';
import type { ScanContext, ScanThenAttestInput } from '../src/core/scan/types';
import { classified } from './failure';

export type { ScanContext, ScanThenAttestInput } from '../src/core/scan/types';

/**
 * Heartbeat on a timer while a long single await (reading layers, an external tool) runs;
 * the heartbeat is also how a cancellation reaches the activity, whose signal then stops
 * the work (an external tool is killed).
 */
async function beating<T>(fn: (signal: AbortSignal) => Promise<T>, detail: () => unknown): Promise<T> {
  const t = setInterval(() => heartbeat(detail()), 5_000);
  try {
    heartbeat(detail());
    return await fn(Context.current().cancellationSignal);
  } finally {
    clearInterval(t);
  }
}

export function createScanActivities(ctx: AppContext) {
  return {
    /** Resolve the image, pin the feed, record the run (or find an identical one to reuse). */
    scanPrepare(input: ScanThenAttestInput & { scanId: string; workflowId: string; scanTime: string }): Promise<{ ctx: ScanContext; reuse: ScanRun | null }> {
      return classified(() => prepareScan(ctx, input));
    },

    /** Scan the image into a CycloneDX SBOM and store it. */
    scanSbom(c: ScanContext): Promise<{ sbomId: string; spdxId?: string; components: number; packages: number; warnings: string[]; created: boolean }> {
      return classified(() =>
        beating(
          (signal) => storeSbom(ctx, c, { signal }),
          () => ({ phase: 'scan', attempt: activityInfo().attempt }),
        ),
      );
    },

    /** Match against the pinned feed and store the report. */
    scanMatch(c: ScanContext, sbomId: string) {
      return classified(() =>
        beating(
          (signal) => storeReport(ctx, c, sbomId, { signal }),
          () => ({ phase: 'match' }),
        ),
      );
    },

    /** Sign one statement type (the one attestation path) and record it on the run. */
    scanAttest(
      c: ScanContext,
      type: AttestType,
      ids: { sbomId: string | null; reportId: string | null; finishedAt?: string },
    ): Promise<{ id: string; reused: boolean }> {
      return classified(() => attestRun(ctx, c, type, ids));
    },

    /** Final state of the run record (+ timeline event). */
    scanFinish(a: FinishRun): Promise<ScanRun | null> {
      return classified(() => finishScan(ctx, a));
    },
  };
}
