/**
 * Dependencies that go away: a private PostgreSQL stopped and restarted under a live API (503
 * naming PostgreSQL with Retry-After, never the driver's text; an upload interrupted between its
 * blob and its index row leaves no orphan blob), and a Temporal that is unreachable (503 within
 * the configured deadline instead of a hang).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApi } from '../src/api/server';
import { doctorChecksOf, routesOf } from '../src/app/features';
import { createMetrics } from '../src/app/metrics';
import { loadConfig } from '../src/config';
import { type AppContext, closeAppContext, createAppContext } from '../src/core/context';
import { TOKEN_PURPOSE, tokenJwks } from '../src/core/keys';
import { mintToken } from '../src/crypto/tokens';
import { startLocalPostgres, stopLocalPostgres } from '../src/dev/postgres';
import { freePort } from '../src/dev/proc';
import { sha256Digest } from '../src/lib/hash';
import { promotionWorkflowId } from '../src/temporal/names';
import { temporalConnectionOptions } from '../src/temporal/client';
import { testEnv } from './support/context';

async function apiOver(ctx: AppContext, client: Client): Promise<FastifyInstance> {
  const deps = {
    ctx,
    temporal: { client, taskQueue: ctx.cfg.temporal.taskQueue },
    metrics: createMetrics(ctx.db, { blobs: ctx.blobs }),
    doctorChecks: doctorChecksOf(),
    tokenKeys: () => tokenJwks(ctx.keys),
  };
  return buildApi(deps, await routesOf());
}

const tokenFor = async (ctx: AppContext) =>
  `Bearer ${await mintToken(ctx.keys, { sub: 'outage-test', tenant: 'default', scopes: ['admin'], ttlSeconds: 600 }, { purpose: TOKEN_PURPOSE })}`;

describe('PostgreSQL stopped and restarted under the API', () => {
  const pgDir = join('/tmp', `stella-outage-pg-${randomBytes(4).toString('hex')}`);
  let ctx: AppContext;
  let app: FastifyInstance;
  let connection: Connection;
  let authorization: string;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    const pg = await startLocalPostgres({ dir: pgDir, port, database: 'stella' });
    ctx = await createAppContext(loadConfig(testEnv({ DATABASE_URL: pg.url })));
    connection = await Connection.connect({ address: inject('temporalAddress') });
    app = await apiOver(ctx, new Client({ connection, namespace: ctx.cfg.temporal.namespace }));
    authorization = await tokenFor(ctx); // minted while the database is up
  });
  afterAll(async () => {
    await app?.close();
    await connection?.close();
    if (ctx) await closeAppContext(ctx).catch(() => undefined);
    stopLocalPostgres(pgDir);
  });

  const upload = (body: string) =>
    app.inject({
      method: 'POST',
      url: `/evidence?artifact=${sha256Digest('outage-artifact')}&kind=sbom`,
      headers: { authorization, 'content-type': 'application/json' },
      payload: body,
    });

  it('answers 503 naming PostgreSQL with Retry-After while it is down, and works again after restart', async () => {
    expect((await upload('{"before":"outage"}')).statusCode).toBe(201);
    stopLocalPostgres(pgDir);
    for (const url of ['/evidence?limit=5', '/evidence/retention/runs', '/evidence/anchors', '/evidence/holds']) {
      const res = await app.inject({ method: 'GET', url, headers: { authorization } });
      expect(res.statusCode, `${url} ${res.body}`).toBe(503);
      expect(res.headers['retry-after'], url).toBeDefined();
      expect(res.json().detail, url).toBe('PostgreSQL is unavailable; retry later');
      expect(res.body, url).not.toMatch(/ECONNREFUSED|connect|terminat/i);
    }
    const put = await upload('{"during":"outage"}');
    expect(put.statusCode).toBe(503);
    expect(put.body).not.toMatch(/ECONNREFUSED/);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);

    await startLocalPostgres({ dir: pgDir, port, database: 'stella' });
    const after = await app.inject({ method: 'GET', url: '/evidence?limit=5', headers: { authorization } });
    expect(after.statusCode).toBe(200);
    expect((await upload('{"after":"restart"}')).statusCode).toBe(201);
  });

  it('an upload whose index write fails because PostgreSQL went away leaves no blob behind', async () => {
    const body = `{"interrupted":"${randomBytes(8).toString('hex')}"}`;
    const id = sha256Digest(body);
    // PostgreSQL stops right after the blob is stored, before the index transaction.
    const store = ctx.blobs.primary;
    const putFile = store.putFile.bind(store);
    store.putFile = async (...args: Parameters<typeof store.putFile>) => {
      const r = await putFile(...args);
      stopLocalPostgres(pgDir);
      return r;
    };
    try {
      const res = await upload(body);
      expect(res.statusCode).toBe(503);
      expect(res.json().detail).toBe('PostgreSQL is unavailable; retry later');
    } finally {
      store.putFile = putFile;
      await startLocalPostgres({ dir: pgDir, port, database: 'stella' });
    }
    expect(await store.stat(id)).toBeNull();
    // Nothing unindexed anywhere: every stored blob has its row.
    const indexed = new Set((await ctx.db.query<{ id: string }>('SELECT id FROM evidence_items')).rows.map((r) => r.id));
    const orphans: string[] = [];
    for await (const d of store.digests()) if (!indexed.has(d)) orphans.push(d);
    expect(orphans).toEqual([]);
    // And the same bytes upload fine once PostgreSQL is back.
    expect((await upload(body)).statusCode).toBe(201);
    expect(await store.stat(id)).not.toBeNull();
  });
});

describe('Temporal unreachable', () => {
  let ctx: AppContext;
  let app: FastifyInstance;
  let connection: Connection;
  let authorization: string;
  let pgDb: string;

  beforeAll(async () => {
    const { freshDatabase } = await import('./support/context');
    pgDb = await freshDatabase();
    const closed = await freePort(); // nothing listens there
    ctx = await createAppContext(
      loadConfig({ ...testEnv({ DATABASE_URL: pgDb, STELLA_TEMPORAL_RPC_TIMEOUT: '2s' }), STELLA_TEMPORAL_ADDRESS: `127.0.0.1:${closed}` }),
    );
    // The API's own connection options (deadline + retries), lazily connected as `stella serve` would after an outage.
    connection = Connection.lazy(temporalConnectionOptions(ctx.cfg));
    app = await apiOver(ctx, new Client({ connection, namespace: ctx.cfg.temporal.namespace }));
    authorization = await tokenFor(ctx);
  });
  afterAll(async () => {
    await app?.close();
    await connection?.close().catch(() => undefined);
    await closeAppContext(ctx);
  });

  it('GET /promotions/:id answers 503 naming Temporal within the deadline instead of hanging', async () => {
    const id = promotionWorkflowId('default', 'qa', sha256Digest(`p-${randomBytes(4).toString('hex')}`));
    const started = Date.now();
    const res = await app.inject({ method: 'GET', url: `/promotions/${id}`, headers: { authorization } });
    const took = Date.now() - started;
    expect(res.statusCode).toBe(503);
    expect(res.json().detail).toBe('Temporal is unavailable; retry later');
    expect(res.headers['retry-after']).toBeDefined();
    // The 2 s deadline, plus slack for a loaded machine; without it the client retries for ~20 s.
    expect(took).toBeLessThan(8_000);
  });
});
