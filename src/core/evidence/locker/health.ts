/** Readiness of what the locker depends on (PostgreSQL, the blob store, Temporal), for GET /readyz. */
import type { Client } from '@temporalio/client';
import type { AppContext } from '../../context';

export interface ReadinessCheck {
  name: string;
  ok: boolean;
  latencyMs: number;
  error?: string;
}

async function check(name: string, fn: () => Promise<unknown>, timeoutMs = 3000): Promise<ReadinessCheck> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { name, ok: true, latencyMs: Date.now() - started };
  } catch (e) {
    return { name, ok: false, error: (e as Error).message, latencyMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

export async function readiness(ctx: Pick<AppContext, 'db' | 'blobs'>, temporal: { client: Client } | null) {
  const checks = await Promise.all([
    check('postgres', () => ctx.db.query('SELECT 1')),
    check('blobstore', () => ctx.blobs.primary.health()),
    check('temporal', async () => {
      if (!temporal) throw new Error('not connected');
      await temporal.client.connection.workflowService.getSystemInfo({});
    }),
  ]);
  const failed = checks.filter((c) => !c.ok).map((c) => c.name);
  return { status: failed.length ? ('unready' as const) : ('ready' as const), failed, checks };
}
