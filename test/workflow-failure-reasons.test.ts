/**
 * A workflow's failure reason reaches the user on every status route (issue 17), not only ingest:
 * a verify run, a retention run and a backup whose activity fails with a coded reason report it on their status
 * routes (`error` + `errorCode`), and the CLI that polls them prints it and exits by the code
 * (README: bad input 2, integrity 4) instead of 1 with "Activity task failed".
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../activities';
import { classified } from '../activities/failure';
import { TOKEN_PURPOSE } from '../src/core/keys';
import { mintToken } from '../src/crypto/tokens';
import { badInput, integrity } from '../src/lib/errors';
import { apiFor, bearer } from './support/api';
import { runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { createWorkerPair, type WorkerPair } from './support/queues';

const VERIFY_REASON = 'sample rate 0.5 needs a locker of at least 2 items (test)';
const RETENTION_REASON = 'tier policy cold-after-days 0 is below the hot minimum of 1 (test)';
const BACKUP_REASON = 'the evidence store changed under the backup: 3 blobs rewritten (test)';

let h: Harness;
let app: FastifyInstance;
let env: Record<string, string>;
let worker: WorkerPair;
let running: Promise<void>;

beforeAll(async () => {
  h = await harness({ worker: false, blob: 'fs', env: { STELLA_LOG_LEVEL: 'fatal' } });
  // The real workflows; two activities fail the way a real refusal does (a StellaError, classified).
  const connection = await NativeConnection.connect({ address: h.ctx.cfg.temporal.address! });
  worker = await createWorkerPair({
    connection,
    namespace: h.ctx.cfg.temporal.namespace,
    taskQueue: h.ctx.cfg.temporal.taskQueue,
    workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') },
    activities: {
      ...createActivities(h.ctx),
      verifyStart: () => classified(() => Promise.reject(badInput(VERIFY_REASON))),
      retentionStart: () => classified(() => Promise.reject(badInput(RETENTION_REASON))),
      backupExport: () => classified(() => Promise.reject(integrity(BACKUP_REASON))),
    },
    shutdownGraceTime: '2s',
  });
  running = worker.run().finally(() => connection.close());
  app = await apiFor(h);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const token = await mintToken(h.ctx.keys, { sub: 'cli-test', tenant: 'default', scopes: ['admin'], ttlSeconds: 600 }, { purpose: TOKEN_PURPOSE });
  env = { STELLA_API_URL: `http://127.0.0.1:${port}`, STELLA_TOKEN: token, STELLA_DATA_DIR: mkdtempSync(join(tmpdir(), 'cli-')), STELLA_TENANT: '' };
}, 120_000);
afterAll(async () => {
  await app?.close();
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running;
  await h?.close();
});

describe('workflow failure reasons on the status routes and in the CLI', () => {
  it('verify: the status route carries the reason and BAD_INPUT; the CLI prints it and exits 2', async () => {
    const cli = await runStella(env, 'evidence', 'verify', '--mode', 'quick');
    expect(cli.stderr).toContain(VERIFY_REASON);
    expect(cli.stderr).not.toMatch(/Activity task failed/);
    expect(cli.code).toBe(2);

    const auth = await bearer(h, ['admin']);
    const runs = await h.ctx.db.query(`SELECT id FROM verify_runs ORDER BY started_at DESC LIMIT 1`);
    const res = await app.inject({ method: 'GET', url: `/evidence/verify/${runs.rows[0].id}`, headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'FAILED', result: null, error: VERIFY_REASON, errorCode: 'BAD_INPUT' });
  }, 120_000);

  it('retention: the run status carries the reason and BAD_INPUT; the CLI prints it and exits 2', async () => {
    const cli = await runStella(env, 'evidence', 'retention', 'tier-move');
    expect(cli.stderr).toContain(RETENTION_REASON);
    expect(cli.code).toBe(2);

    const runId = /retention run (\S+) ended/.exec(cli.stderr)?.[1];
    expect(runId).toBeTruthy();
    const res = await app.inject({ method: 'GET', url: `/evidence/retention/runs/${runId}`, headers: await bearer(h, ['admin']) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'FAILED', error: RETENTION_REASON, errorCode: 'BAD_INPUT' });
  }, 120_000);

  it('backup: the status route carries the reason and INTEGRITY; the CLI prints it and exits 4', async () => {
    const out = mkdtempSync(join(tmpdir(), 'backup-fail-'));
    const cli = await runStella(env, 'backup', 'create', '--type', 'evidence-locker', '--output-dir', out);
    expect(cli.stderr).toContain(BACKUP_REASON);
    expect(cli.code).toBe(4);

    const id = /backup (\S+) ended/.exec(cli.stderr)?.[1];
    expect(id).toBeTruthy();
    const res = await app.inject({ method: 'GET', url: `/backups/${id}?dir=${encodeURIComponent(out)}`, headers: await bearer(h, ['admin']) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'FAILED', running: false, result: null, error: BACKUP_REASON, errorCode: 'INTEGRITY' });
  }, 120_000);
});
