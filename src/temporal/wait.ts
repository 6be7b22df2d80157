/** Waiting a bounded time for a workflow to close, without polling. */
import type { Client, WorkflowHandle } from '@temporalio/client';

/**
 * Waits at most `ms` for the workflow to close (completed, failed, cancelled, timed out…),
 * on Temporal's long poll of its history: the caller wakes when the run closes, not on the next
 * poll tick. Returns its status name afterwards (still RUNNING when `ms` passed first).
 */
export async function statusWithin(client: Client, handle: WorkflowHandle, ms: number): Promise<string> {
  if (ms > 0) {
    // Any outcome of the wait (result, failure, deadline) ends it; describe() says which.
    await client.connection.withDeadline(Date.now() + ms, () => handle.result()).catch(() => {});
  }
  return (await handle.describe()).status.name;
}
