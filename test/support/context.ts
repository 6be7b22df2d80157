import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import type { StellaWorkerGroup as Worker } from '../../workers/worker';
import { loadConfig, type StellaConfig } from '../../src/config';
import { createAppContext, closeAppContext, type AppContext } from '../../src/core/context';
import { S3BlobStore } from '../../src/blob';
import { createStellaWorker } from '../../workers/worker';
import { ensureSearchAttributes } from '../../src/temporal/client';

export type BlobKind = 'fs' | 's3';

/** A fresh database on the shared PostgreSQL server, migrated by createAppContext. */
export async function freshDatabase(): Promise<string> {
  const admin = new pg.Client(inject('pgUrl'));
  await admin.connect();
  const name = `t_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(inject('pgUrl'));
  u.pathname = `/${name}`;
  return u.toString();
}

export async function freshBucket(): Promise<string> {
  const bucket = `stella-${randomBytes(6).toString('hex')}`;
  await S3BlobStore.create({
    bucket,
    endpoint: inject('s3Endpoint'),
    region: 'us-east-1',
    accessKeyId: 'test',
    secretAccessKey: 'test',
    forcePathStyle: true,
  }).ensureBucket();
  return bucket;
}

export function testEnv(over: Record<string, string> = {}): NodeJS.ProcessEnv {
  const dataDir = mkdtempSync(join(inject('scratch'), 'data-'));
  return {
    STELLA_DATA_DIR: dataDir,
    STELLA_TEMPORAL_ADDRESS: inject('temporalAddress'),
    STELLA_TASK_QUEUE: `test-${randomBytes(4).toString('hex')}`,
    STELLA_LOG_LEVEL: 'warn',
    STELLA_SCHEDULES: 'false',
    ...over,
  };
}

export async function testConfig(opts: { blob?: BlobKind; replica?: boolean; env?: Record<string, string> } = {}): Promise<StellaConfig> {
  const env: Record<string, string> = { DATABASE_URL: await freshDatabase(), ...(opts.env ?? {}) };
  if (opts.blob === 's3') {
    Object.assign(env, {
      STELLA_BLOB_KIND: 's3',
      STELLA_S3_BUCKET: await freshBucket(),
      STELLA_S3_ENDPOINT: inject('s3Endpoint'),
      STELLA_S3_ACCESS_KEY_ID: 'test',
      STELLA_S3_SECRET_ACCESS_KEY: 'test',
    });
    if (opts.replica) env.STELLA_REPLICA_BUCKET = await freshBucket();
  } else if (opts.replica) {
    env.STELLA_REPLICA_PATH = mkdtempSync(join(inject('scratch'), 'replica-'));
  }
  return loadConfig(testEnv(env));
}

export interface Harness {
  ctx: AppContext;
  client: Client;
  connection: Connection;
  worker?: Worker;
  stopWorker: () => Promise<void>;
  close: () => Promise<void>;
}

/** App context on real PostgreSQL + blob store, a Temporal client, and optionally a running worker. */
export async function harness(opts: { blob?: BlobKind; replica?: boolean; worker?: boolean; env?: Record<string, string> } = {}): Promise<Harness> {
  const cfg = await testConfig(opts);
  const ctx = await createAppContext(cfg);
  const connection = await Connection.connect({ address: cfg.temporal.address! });
  await ensureSearchAttributes(connection, cfg.temporal.namespace);
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const startWorker = async () => {
    const w = await createStellaWorker(ctx, { workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') }, shutdownGraceTime: '2s' });
    worker = w.worker;
    running = w.worker.run().finally(() => w.connection.close());
  };
  if (opts.worker !== false) await startWorker();
  const stopWorker = async () => {
    if (worker && worker.getState() === 'RUNNING') worker.shutdown();
    await running;
  };
  return {
    ctx,
    client,
    connection,
    get worker() {
      return worker;
    },
    stopWorker,
    close: async () => {
      await stopWorker();
      await connection.close();
      await closeAppContext(ctx);
    },
  } as Harness;
}
