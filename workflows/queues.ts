/** Routing of heavy activities (scans, full verification, backups, restores) to the heavy task queue. */
import { type ActivityOptions, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { heavyTaskQueue } from '../src/temporal/names';

/** Marker of the control/heavy split: runs that started before it keep scheduling on the control queue. */
export const HEAVY_QUEUE_PATCH = 'stella-heavy-queue';

/**
 * Activities with `options` on `<this workflow's task queue>-heavy`. Changing an activity's task
 * queue changes the ScheduleActivityTask command, so it sits behind patched(): a replayed run
 * that did not record the marker keeps the control queue. Call at each use (cheap; the first call
 * records the marker).
 */
export function heavyActivities<A>(options: ActivityOptions): ReturnType<typeof proxyActivities<A>> {
  if (!patched(HEAVY_QUEUE_PATCH)) return proxyActivities<A>(options);
  return proxyActivities<A>({ ...options, taskQueue: heavyTaskQueue(workflowInfo().taskQueue) });
}
