import { apiFor, bearer, dpopAuth } from './support/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { harness, type Harness } from './support/context';
import { sha256Digest } from '../src/lib/hash';
import { isHeld, createHold } from '../src/core/retention/holds';
import { readTar } from '../src/archive';

let h: Harness;
let app: FastifyInstance;
const auth = (scopes: string[]) => bearer(h, scopes);

beforeAll(async () => {
  h = await harness({ blob: 'fs' });
  app = await apiFor(h);
});
afterAll(async () => {
  await app?.close();
  await h?.close();
});

describe('legal hold API', () => {
  it('requires evidence:write to create or release, evidence:read to list', async () => {
    const body = { scope: 'artifact', values: [sha256Digest('a1')], reason: 'INC-7 lock affected bundles', incidentTicket: 'INC-7' };
    const denied = await app.inject({ method: 'POST', url: '/evidence/holds', headers: await auth(['evidence:read']), payload: body });
    expect(denied.statusCode).toBe(403);
    expect(denied.json().detail).toMatch(/evidence:write/);
    const created = await app.inject({ method: 'POST', url: '/evidence/holds', headers: await auth(['evidence:write']), payload: body });
    expect(created.statusCode).toBe(201);
    const hold = created.json();
    expect(hold).toMatchObject({ scope: 'artifact', values: [sha256Digest('a1')], incidentTicket: 'INC-7', active: true, createdBy: 'test-evidence:write' });
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/stella_legal_holds_active\{tenant="default",scope="artifact"\} 1/);

    expect((await app.inject({ method: 'GET', url: '/evidence/holds', headers: await auth(['promotion:read']) })).statusCode).toBe(403);
    const list = await app.inject({ method: 'GET', url: '/evidence/holds', headers: await auth(['evidence:read']) });
    expect(list.json().holds.map((x: { id: string }) => x.id)).toContain(hold.id);

    const ev = await h.ctx.db.query(`SELECT type, payload FROM timeline_events WHERE subject=$1`, [hold.id]);
    expect(ev.rows).toEqual([{ type: 'replay.hold.created', payload: expect.objectContaining({ incidentTicket: 'INC-7', scope: 'artifact' }) }]);

    expect((await app.inject({ method: 'DELETE', url: `/evidence/holds/${hold.id}`, headers: await auth(['evidence:read']) })).statusCode).toBe(403);
    const rel = await app.inject({
      method: 'DELETE',
      url: `/evidence/holds/${hold.id}`,
      headers: await auth(['evidence:write']),
      payload: { reason: 'INC-7 resolved' },
    });
    expect(rel.statusCode).toBe(200);
    expect(rel.json()).toMatchObject({ active: false, releasedBy: 'test-evidence:write', releaseReason: 'INC-7 resolved' });
    expect((await app.inject({ method: 'DELETE', url: `/evidence/holds/${hold.id}`, headers: await auth(['evidence:write']) })).statusCode).toBe(409);
    const audits = await h.ctx.db.query(`SELECT action FROM audit_log WHERE target=$1 ORDER BY id`, [hold.id]);
    expect(audits.rows.map((x) => x.action)).toEqual(['evidence.hold.created', 'evidence.hold.released']);
    const types = await h.ctx.db.query(`SELECT type FROM timeline_events WHERE subject=$1 ORDER BY id`, [hold.id]);
    expect(types.rows.map((x) => x.type)).toEqual(['replay.hold.created', 'replay.hold.released']);
  });

  it('rejects malformed holds with 400', async () => {
    const w = await auth(['evidence:write']);
    expect(
      (await app.inject({ method: 'POST', url: '/evidence/holds', headers: w, payload: { scope: 'items', values: ['nope'], reason: 'x' } })).statusCode,
    ).toBe(400);
    expect((await app.inject({ method: 'POST', url: '/evidence/holds', headers: w, payload: { scope: 'bundle_type', values: ['sbom'] } })).statusCode).toBe(
      400,
    );
    expect((await app.inject({ method: 'POST', url: '/evidence/holds', headers: w, payload: { scope: 'galaxy', reason: 'x' } })).statusCode).toBe(400);
  });

  it('isHeld covers item, artifact, bundle-type and tenant scopes', async () => {
    const r = await h.ctx.evidence.ingest({
      tenant: 'default',
      data: randomBytes(32),
      kind: 'vex',
      mediaType: 'application/json',
      subjects: [sha256Digest('a2')],
    });
    expect(await isHeld(h.ctx.db, 'default', r.id)).toBe(false);
    await createHold(h.ctx, { tenant: 'default', scope: 'bundle-type', values: ['vex'], reason: 'audit', actor: 'op' });
    expect(await isHeld(h.ctx.db, 'default', r.id)).toBe(true);
    expect(await isHeld(h.ctx.db, 'other', r.id)).toBe(false);
  });
});

describe('access to held / archived data follows the API scopes', () => {
  it('replay bundles need replay:read to fetch and are left out of archives without it', async () => {
    const bundle = randomBytes(100);
    const r = await h.ctx.evidence.ingest({
      tenant: 'default',
      data: bundle,
      kind: 'replay-bundle',
      mediaType: 'application/zstd',
      subjects: [sha256Digest('a3')],
    });
    await h.ctx.db.query(`UPDATE evidence_items SET created_at = now() - interval '400 days' WHERE id=$1`, [r.id]);
    await createHold(h.ctx, { tenant: 'default', scope: 'items', values: [r.id], reason: 'INC-9', actor: 'op' });
    expect((await app.inject({ method: 'GET', url: `/evidence/${r.id}`, headers: await auth(['evidence:read']) })).statusCode).toBe(403);
    // replay:read needs DPoP: a bearer token with the scope is refused, a DPoP-bound one reads.
    expect((await app.inject({ method: 'GET', url: `/evidence/${r.id}`, headers: await auth(['evidence:read', 'replay:read']) })).statusCode).toBe(401);
    const reader = await dpopAuth(h, ['evidence:read', 'replay:read']);
    const ok = await app.inject({ method: 'GET', url: `/evidence/${r.id}`, headers: await reader.headers('GET', `/evidence/${r.id}`) });
    expect(ok.statusCode).toBe(200);
    expect(ok.rawPayload.equals(bundle)).toBe(true);

    const names = async (scopes: string[], dpop = false) => {
      const headers = dpop ? await (await dpopAuth(h, scopes)).headers('GET', '/evidence/archive') : await auth(scopes);
      const res = await app.inject({ method: 'GET', url: '/evidence/archive?olderThanDays=365', headers });
      expect(res.statusCode).toBe(200);
      const out: string[] = [];
      for await (const e of readTar(res.rawPayload)) out.push(e.path);
      return { paths: out, skipped: res.headers['x-stella-archive-skipped-replay'] };
    };
    const without = await names(['evidence:read']);
    expect(without).toEqual({ paths: ['manifest.json'], skipped: '1' });
    expect((await names(['evidence:read', 'replay:read'])).skipped).toBe('1'); // bearer: no DPoP, no replay bundles
    const withReplay = await names(['evidence:read', 'replay:read'], true);
    expect(withReplay.paths).toEqual([`items/sha256/${r.id.slice(7)}`, 'manifest.json']);
    // Archive-delete needs evidence:write, and a held item is kept.
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/evidence/archive/delete',
          headers: await auth(['evidence:read']),
          payload: { ids: [r.id], manifestSha256: sha256Digest('m') },
        })
      ).statusCode,
    ).toBe(403);
    const del = await app.inject({
      method: 'POST',
      url: '/evidence/archive/delete',
      headers: await auth(['evidence:write']),
      payload: { ids: [r.id], manifestSha256: sha256Digest('m') },
    });
    expect(del.statusCode).toBe(200);
    expect(del.json()).toMatchObject({ items: 0, keptIds: [r.id], skippedHeld: 1 });
  });
});
