import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/pool';
import { HeadLookup } from '../src/core/evidence/read';
import { sha256Digest } from '../src/lib/hash';
import { apiFor, bearer } from './support/api';
import { harness, type Harness } from './support/context';

// GET /evidence/:id looks items up in batches (concurrent requests share one query): each
// request must still get exactly its own tenant's item, and a purge must show at once.
let h: Harness;
let app: FastifyInstance;
beforeAll(async () => {
  h = await harness();
  app = await apiFor(h);
});
afterAll(async () => {
  await app?.close();
  await h?.close();
});

async function put(tenant: string, data: Buffer) {
  return h.ctx.evidence.ingest({ tenant, data, kind: 'other', mediaType: 'application/octet-stream', subjects: [sha256Digest('get-batched')] });
}

describe('GET /evidence/:id, batched index lookups', () => {
  it('answers concurrent requests of two tenants each with its own items, and 404 for the other tenant’s', async () => {
    const a = await Promise.all(Array.from({ length: 6 }, () => randomBytes(300)).map(async (d) => ({ d, id: (await put('tb-a', d)).id })));
    const b = await Promise.all(Array.from({ length: 6 }, () => randomBytes(300)).map(async (d) => ({ d, id: (await put('tb-b', d)).id })));
    const shared = randomBytes(200);
    const sharedId = (await put('tb-a', shared)).id;
    await put('tb-b', shared);
    const ha = await bearer(h, ['evidence:read'], 'tb-a');
    const hb = await bearer(h, ['evidence:read'], 'tb-b');
    const get = (id: string, headers: Record<string, string>) => app.inject({ method: 'GET', url: `/evidence/${id}`, headers });
    const [own, cross, both] = await Promise.all([
      Promise.all([...a.map((x) => get(x.id, ha)), ...b.map((x) => get(x.id, hb))]),
      Promise.all([...a.map((x) => get(x.id, hb)), ...b.map((x) => get(x.id, ha))]),
      Promise.all([get(sharedId, ha), get(sharedId, hb)]),
    ]);
    expect(own.map((r) => r.statusCode)).toEqual(Array(12).fill(200));
    expect(own.map((r) => r.rawPayload.equals([...a, ...b][own.indexOf(r)]!.d))).toEqual(Array(12).fill(true));
    expect(cross.map((r) => r.statusCode)).toEqual(Array(12).fill(404));
    expect(both.map((r) => r.statusCode)).toEqual([200, 200]);
    expect(both.every((r) => r.rawPayload.equals(shared))).toBe(true);
  });

  it('answers 404 for an item purged just before, while other lookups of the same batch succeed', async () => {
    const keep = randomBytes(100);
    const gone = randomBytes(100);
    const k = await put('tb-p', keep);
    const g = await put('tb-p', gone);
    const headers = await bearer(h, ['evidence:read'], 'tb-p');
    expect((await app.inject({ method: 'GET', url: `/evidence/${g.id}`, headers })).statusCode).toBe(200);
    await h.ctx.evidence.setState('tb-p', g.id, 'purged', 'test purge', 'test');
    const [r1, r2] = await Promise.all([
      app.inject({ method: 'GET', url: `/evidence/${k.id}`, headers }),
      app.inject({ method: 'GET', url: `/evidence/${g.id}`, headers }),
    ]);
    expect(r1.statusCode).toBe(200);
    expect(r1.rawPayload.equals(keep)).toBe(true);
    expect(r2.statusCode).toBe(404);
    expect(r2.json().detail).toContain('purged');
  });

  it('serves the lookups made in one turn of the event loop with one query, each with its own row', async () => {
    const items = await Promise.all(Array.from({ length: 5 }, () => put('tb-q', randomBytes(64))));
    let queries = 0;
    const db = h.ctx.db as unknown as { query: (...a: unknown[]) => unknown };
    const counting = {
      query: (...args: unknown[]) => {
        queries++;
        return db.query(...args);
      },
    } as unknown as Db;
    const heads = new HeadLookup(counting);
    const missing = sha256Digest('never stored');
    const results = await Promise.allSettled([...items.map((i) => heads.get('tb-q', i.id)), heads.get('tb-q', missing), heads.get('tb-other', items[0]!.id)]);
    expect(queries).toBe(1);
    expect(results.slice(0, 5).map((r) => (r.status === 'fulfilled' ? r.value.id : r.reason))).toEqual(items.map((i) => i.id));
    expect(results.slice(5).map((r) => r.status === 'rejected' && (r.reason as { code?: string }).code)).toEqual(['NOT_FOUND', 'NOT_FOUND']);
    // More lookups than one batch holds, the same id asked twice: every one answered with its row.
    queries = 0;
    const many = [...items, ...items, ...items, ...items, ...items, ...items, ...items, ...items];
    const all = await Promise.all(many.map((i) => heads.get('tb-q', i.id)));
    expect(all.map((x) => x.id)).toEqual(many.map((i) => i.id));
    expect(queries).toBe(2);
    // A failed query fails every lookup of its batch (none is left waiting).
    const broken = new HeadLookup({ query: async () => Promise.reject(new Error('connection lost')) } as unknown as Db);
    const failed = await Promise.allSettled([broken.get('tb-q', items[0]!.id), broken.get('tb-q', items[1]!.id)]);
    expect(failed.map((r) => r.status === 'rejected' && (r.reason as Error).message)).toEqual(['connection lost', 'connection lost']);
  });
});
