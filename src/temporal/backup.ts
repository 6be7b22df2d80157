/**
 * The Temporal client side of backups and restores: start the workflows by reference, and read a
 * run's state (Temporal status, the progress query, the result or the innermost error). The HTTP
 * routes call these; the workflows are in workflows/backup.ts.
 */
import {
  type Client,
  type QueryDefinition,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Workflow,
  type WorkflowResultType,
} from '@temporalio/client';
import type { BackupInput } from '../core/backup/backup';
import type { RestoreInput } from '../core/backup/restore';
import { conflict, notFound } from '../lib/errors';
import { backupEvidenceLocker, backupProgressQuery, restoreEvidenceLocker, restoreProgressQuery } from '../../workflows/backup';
import { backupWorkflowId } from './names';

export interface BackupTemporal {
  client: Client;
  taskQueue: string;
}

type Progress = Record<string, number | string | null>;

/** A run's state; a type alias (not an interface) so it fits the loose response contracts. */
export type RunState<T> = {
  id: string;
  status: string;
  running: boolean;
  progress: Progress | null;
  result: T | null;
  error: string | null;
};

export async function startBackup(t: BackupTemporal, input: BackupInput): Promise<string> {
  const workflowId = backupWorkflowId(input.backupId);
  await t.client.workflow.start(backupEvidenceLocker, { taskQueue: t.taskQueue, workflowId, args: [input] });
  return workflowId;
}

/** Starts a restore; its workflow id is the restore id. */
export async function startRestore(t: BackupTemporal, input: RestoreInput): Promise<string> {
  try {
    await t.client.workflow.start(restoreEvidenceLocker, { taskQueue: t.taskQueue, workflowId: input.restoreId, args: [input] });
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError) throw conflict(`restore ${input.restoreId} already running`);
    throw e;
  }
  return input.restoreId;
}

export const backupRunState = (client: Client, id: string) => runState<typeof backupEvidenceLocker>(client, id, 'backup', backupProgressQuery);
export const restoreRunState = (client: Client, id: string) => runState<typeof restoreEvidenceLocker>(client, id, 'restore', restoreProgressQuery);

async function runState<W extends Workflow>(
  client: Client,
  id: string,
  what: string,
  progress: QueryDefinition<object>,
): Promise<RunState<Awaited<WorkflowResultType<W>>>> {
  const h = client.workflow.getHandle<W>(id);
  try {
    const d = await h.describe();
    const running = d.status.name === 'RUNNING';
    const p = (await h.query(progress).catch(() => null)) as Progress | null;
    let result: Awaited<WorkflowResultType<W>> | null = null;
    let error: string | null = null;
    if (d.status.name === 'COMPLETED') result = await h.result();
    else if (!running) {
      // The innermost cause is the activity's own one-line error (e.g. "database already holds …").
      error = await h.result().then(
        () => null,
        (e: Error) => {
          let c: Error = e;
          while (c.cause instanceof Error) c = c.cause;
          return c.message;
        },
      );
    }
    return { id, status: d.status.name, running, progress: p, result, error };
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw notFound(`${what} ${id} not found`);
    throw e;
  }
}
