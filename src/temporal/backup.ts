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
import { rootFailure } from './failure';
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
  /** The failure's StellaError code (BAD_INPUT, INTEGRITY…), if it carried one. */
  errorCode: string | null;
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
    let failure: { message: string; code: string | null } | null = null;
    if (d.status.name === 'COMPLETED') result = await h.result();
    // The root cause is the activity's own one-line error (e.g. "database already holds …") and its code.
    else if (!running) failure = await h.result().then(() => null, rootFailure);
    return { id, status: d.status.name, running, progress: p, result, error: failure?.message ?? null, errorCode: failure?.code ?? null };
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw notFound(`${what} ${id} not found`);
    throw e;
  }
}
