import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startLocalPostgres, stopLocalPostgres } from '../../src/dev/postgres';
import { findTemporalBin, startTemporalDevServer } from '../../src/dev/temporal';
import { freePort, stopPid, waitForPort, which } from '../../src/dev/proc';
import { WORKFLOWS_PATH } from '../../workers/worker';

/**
 * Starts (or attaches to) the real servers every integration test uses: PostgreSQL, the
 * Temporal CLI dev server and an S3-API server (moto). Attach instead of start by setting
 * STELLA_TEST_DATABASE_URL, STELLA_TEST_TEMPORAL_ADDRESS, STELLA_TEST_S3_ENDPOINT.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    temporalAddress: string;
    s3Endpoint: string;
    workflowBundlePath: string;
    scratch: string;
  }
}

export default async function setup(project: TestProject) {
  const scratch = mkdtempSync(join(tmpdir(), 'stella-test-'));
  const cleanups: (() => Promise<void> | void)[] = [];

  let pgUrl = process.env.STELLA_TEST_DATABASE_URL;
  if (!pgUrl) {
    const dir = join('/tmp', `stella-test-pg-${randomBytes(4).toString('hex')}`);
    const pg = await startLocalPostgres({ dir, port: await freePort(), database: 'postgres' });
    pgUrl = pg.url;
    cleanups.push(() => {
      stopLocalPostgres(dir);
      rmSync(dir, { recursive: true, force: true });
    });
  }

  let temporalAddress = process.env.STELLA_TEST_TEMPORAL_ADDRESS;
  if (!temporalAddress) {
    const port = await freePort();
    const t = await startTemporalDevServer({
      bin: findTemporalBin(process.env.STELLA_TEMPORAL_BIN, false),
      dbFile: join(scratch, 'temporal.db'),
      port,
      logFile: join(scratch, 'temporal.log'),
    });
    temporalAddress = t.address;
    cleanups.push(() => stopPid(t.pid));
  }

  let s3Endpoint = process.env.STELLA_TEST_S3_ENDPOINT;
  if (!s3Endpoint) {
    const moto = which('moto_server');
    if (!moto) throw new Error('moto_server not found: pip install "moto[server]==5.2.1" (the S3 backend is tested against a real S3-API server)');
    const port = await freePort();
    const out = openSync(join(scratch, 'moto.log'), 'a');
    const child: ChildProcess = spawn(moto, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', out, out] });
    await waitForPort(port);
    s3Endpoint = `http://127.0.0.1:${port}`;
    cleanups.push(() => stopPid(child.pid));
  }

  // CLI tests run bin/stella.mjs: build it from the current sources, so they never run a stale build.
  await promisify(execFile)(process.execPath, [join(import.meta.dirname, '..', '..', 'scripts', 'build.mjs'), '--cli']);

  // Bundle workflow code once for every test file's worker.
  const bundle = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error } as never,
  });
  const workflowBundlePath = join(scratch, 'workflow-bundle.js');
  writeFileSync(workflowBundlePath, bundle.code);

  project.provide('pgUrl', pgUrl);
  project.provide('temporalAddress', temporalAddress);
  project.provide('s3Endpoint', s3Endpoint);
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('scratch', scratch);

  return async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(scratch, { recursive: true, force: true });
  };
}
