import { ScheduleOverlapPolicy, ScheduleNotFoundError, type Client, type ScheduleOptions } from '@temporalio/client';
import type { StellaConfig } from '../config';
import { parseDuration } from '../lib/format';

export interface StellaSchedule {
  id: string;
  description: string;
  workflowType: string;
  args: unknown[];
  /** Either an interval (e.g. 6h) or cron expressions. */
  every?: string;
  cron?: string[];
}

/** A feature's schedules for a given configuration (features list them in src/app/features.ts). */
export type ScheduleSource = (cfg: StellaConfig) => StellaSchedule[];

/**
 * Long-period jobs are Temporal Schedules, never timers in a process: they survive restarts
 * and show in the Temporal UI. Overlap SKIP, and a catch-up window of one period so a
 * downtime produces one catch-up run, not a flood.
 */
export function scheduleDefinitions(cfg: StellaConfig, sources: readonly { schedules?: ScheduleSource }[]): StellaSchedule[] {
  return sources.flatMap((f) => f.schedules?.(cfg) ?? []);
}

function toOptions(cfg: StellaConfig, s: StellaSchedule): ScheduleOptions {
  const periodMs = s.every ? parseDuration(s.every) : 24 * 3_600_000;
  return {
    scheduleId: s.id,
    spec: s.every ? { intervals: [{ every: s.every as never }] } : { cronExpressions: s.cron },
    action: { type: 'startWorkflow', workflowType: s.workflowType, args: s.args, taskQueue: cfg.temporal.taskQueue, workflowId: s.id },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: Math.max(periodMs, 60_000) },
    state: { note: s.description },
  };
}

/** Creates missing schedules and updates existing ones to the configured spec (idempotent). */
export async function ensureSchedules(
  client: Client,
  cfg: StellaConfig,
  sources: readonly { schedules?: ScheduleSource }[],
  only?: string[],
): Promise<string[]> {
  const done: string[] = [];
  for (const s of scheduleDefinitions(cfg, sources)) {
    if (only && !only.includes(s.id)) continue;
    const opts = toOptions(cfg, s);
    const handle = client.schedule.getHandle(s.id);
    try {
      await handle.describe();
      await handle.update((prev) => ({ ...prev, spec: opts.spec, action: opts.action as never, policies: opts.policies }));
    } catch (e) {
      if (!(e instanceof ScheduleNotFoundError)) throw e;
      try {
        await client.schedule.create(opts);
      } catch (err) {
        if ((err as Error).name !== 'ScheduleAlreadyRunning') throw err;
      }
    }
    done.push(s.id);
  }
  return done;
}
