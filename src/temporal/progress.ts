import type { QueryDefinition } from '@temporalio/workflow';
import type { WorkflowHandle } from '@temporalio/client';

/**
 * A running workflow's live progress through its query, or null when it cannot answer in time
 * (finished between describe and query, worker busy or down): progress is best-effort, the
 * status from describe() is what callers decide on.
 */
export async function liveProgress<T>(handle: WorkflowHandle, query: QueryDefinition<T>, timeoutMs = 5_000): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  try {
    return await Promise.race([handle.query(query).catch(() => null), late]);
  } finally {
    clearTimeout(timer);
  }
}
