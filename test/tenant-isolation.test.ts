/**
 * Tenant isolation, generated from the registered routes: objects are created as tenant B, then
 * every route is called with tenant A's tokens with B's ids in its path and query parameters.
 * A's answer for B's id must be the answer for a random id that exists nowhere (same status, same
 * body once the id is masked, 404 rather than 403), no other B id may appear in it, and B's rows
 * and blobs must be unchanged afterwards. A route that is neither probed nor listed as not
 * probable (with the reason) fails the test, so a new route is covered when it is added.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../src/lib/hash';
import { indexRebuildWorkflowId, ingestWorkflowId, promotionWorkflowId, retentionRunId, scanWorkflowId, verifyRunWorkflowId } from '../src/temporal/names';
import { apiFor, bearer, dpopAuth, type DpopAuth } from './support/api';
import { harness, type Harness } from './support/context';

// B's name starts with A's: ids built as `<kind>-<tenant>-…` must not match by prefix.
const A = 'acme';
const B = 'acme-eu';
const rnd = () => randomBytes(6).toString('hex');
const stamp = () => new Date(Date.now() - 86_400_000 * (1 + Math.floor(Math.random() * 1000)));

/** The kinds of id a route takes; each has B's object and a well-formed id that exists nowhere. */
type IdKind =
  | 'item'
  | 'attestation'
  | 'artifact'
  | 'verifyRun'
  | 'rebuildOp'
  | 'ingest'
  | 'retentionRun'
  | 'hold'
  | 'promotion'
  | 'scanWorkflow'
  | 'replayScan'
  | 'backup'
  | 'restore'
  | 'anchor';

const RANDOM: Record<IdKind, () => string> = {
  item: () => sha256Digest(`random-${rnd()}`),
  attestation: () => sha256Digest(`random-attestation-${rnd()}`),
  artifact: () => sha256Digest(`random-artifact-${rnd()}`),
  verifyRun: () => verifyRunWorkflowId('quick', stamp(), rnd().slice(0, 8)),
  rebuildOp: () => indexRebuildWorkflowId(stamp(), rnd().slice(0, 8)),
  ingest: () => ingestWorkflowId(stamp(), rnd().slice(0, 8)),
  retentionRun: () => retentionRunId('dryrun', stamp(), rnd().slice(0, 8)),
  hold: () => randomUUID(),
  promotion: () => promotionWorkflowId(B, 'qa', sha256Digest(`random-${rnd()}`)),
  scanWorkflow: () => scanWorkflowId(B, sha256Digest(`random-${rnd()}`)),
  replayScan: () => randomUUID(),
  backup: () => `bk-${rnd()}`,
  restore: () => `restore-${rnd()}`,
  anchor: () => `${Math.floor(Math.random() * 1e6) + 1e5}`,
};

interface Probe {
  /** Path parameter → the kind of id it names. */
  path?: Record<string, IdKind>;
  /** Query parameters: an id kind, or a fixed value. */
  query?: Record<string, IdKind | { value: string }>;
  /** JSON body, built from the ids substituted in this call. */
  body?: (id: (k: IdKind) => string) => unknown;
  /** Raw upload body (POST /evidence). */
  raw?: boolean;
  /** What A must get for B's id when it names one in the path: 404 by default; admin-only routes answer 403 to A. */
  expect?: number;
}

/** Every route that is called. HEAD of a GET route is probed with the GET's entry. */
const PROBES: Record<string, Probe> = {
  // evidence items
  'POST /evidence': { raw: true, query: { parent: 'item', kind: { value: 'scan-report' } }, expect: 400 },
  'GET /evidence': { query: { artifact: 'artifact' } },
  'GET /evidence/:id/meta': { path: { id: 'item' } },
  'HEAD /evidence/:id': { path: { id: 'item' } },
  'GET /evidence/:id': { path: { id: 'item' } },
  'GET /evidence/:id/provenance': { path: { id: 'item' } },
  'GET /evidence/:id/proof': { path: { id: 'item' } },
  'POST /evidence/:id/mark-corrupted': { path: { id: 'item' }, body: () => ({ reason: 'probe' }) },
  'POST /evidence/:id/recover': { path: { id: 'item' }, body: () => ({ source: 'replica' }) },
  'GET /evidence/:id/exists': { path: { id: 'item' } },
  'POST /evidence/:id/tombstone': { path: { id: 'item' }, body: () => ({ reason: 'probe' }) },
  'POST /evidence/integrity/acknowledgements': { body: (id) => ({ id: id('item'), reason: 'probe' }), expect: 404 },
  'GET /evidence/integrity/acknowledgements': {},
  'GET /evidence/chain': { query: { artifact: 'artifact' } },
  'GET /evidence/export': { query: { digest: 'artifact' } },
  'POST /evidence/retry-store': { body: (id) => ({ artifact: id('artifact') }) },
  'GET /evidence/status': {},
  'GET /evidence/diagnostics': {},
  // verification
  'GET /evidence/verify/:runId': { path: { runId: 'verifyRun' } },
  'GET /evidence/verify-report': { query: { runId: 'verifyRun' } },
  // locker maintenance
  'GET /evidence/ops/latest': { query: { op: { value: 'index.rebuild' } } },
  'GET /evidence/index/status': {},
  'GET /evidence/index/rebuild/:opId': { path: { opId: 'rebuildOp' } },
  'GET /evidence/index/lookup/:id': { path: { id: 'item' } },
  'GET /evidence/storage/check/:id': { path: { id: 'item' } },
  'GET /evidence/storage/stats': {},
  'GET /evidence/storage/analyze': {},
  'GET /evidence/ingest/:workflowId': { path: { workflowId: 'ingest' } },
  // retention
  'GET /evidence/holds': { query: { item: 'item' } },
  'GET /evidence/holds/:id': { path: { id: 'hold' } },
  'GET /evidence/holds/:id/timeline': { path: { id: 'hold' } },
  'POST /evidence/holds': { body: (id) => ({ scope: 'items', values: [id('item')], reason: 'probe' }) },
  'DELETE /evidence/holds/:id': { path: { id: 'hold' }, body: () => ({ reason: 'probe' }) },
  'GET /evidence/retention/runs': {},
  'GET /evidence/retention/runs/:runId': { path: { runId: 'retentionRun' } },
  'GET /evidence/retention/runs/:runId/items': { path: { runId: 'retentionRun' } },
  'GET /evidence/retention/policies': {},
  'GET /evidence/retention/tiers': {},
  'GET /evidence/retention/effective': {},
  'GET /evidence/archive/plan': { query: { olderThanDays: { value: '1' } } },
  'GET /evidence/archive': { query: { olderThanDays: { value: '1' } } },
  'POST /evidence/archive/delete': { body: (id) => ({ ids: [id('item')], manifestSha256: sha256Digest('no manifest') }) },
  // promotions
  'GET /promotions': { query: { artifact: 'artifact' } },
  'GET /promotions/:id': { path: { id: 'promotion' } },
  'GET /promotions/:id/evidence': { path: { id: 'promotion' } },
  'POST /promotions/:id/retry': { path: { id: 'promotion' } },
  'POST /promotions/:id/approve': { path: { id: 'promotion' }, body: () => ({ reason: 'probe' }) },
  'POST /promotions/:id/abort': { path: { id: 'promotion' }, body: () => ({ reason: 'probe' }) },
  'GET /promotion-policies': {},
  // scans, attestations, replay
  'GET /scans/status': { query: { workflowId: 'scanWorkflow' } },
  'GET /scans': { query: { artifact: 'artifact' } },
  'GET /scans/queue': { query: { artifact: 'artifact' } },
  'GET /images': {},
  'GET /feeds': {},
  'GET /feeds/ecosystems': {},
  'GET /scans/explain': { query: { artifact: 'artifact', finding: { value: 'CVE-2024-0001' } } },
  'GET /scanner/config': {},
  'GET /attestations': { query: { subject: 'artifact' } },
  'GET /attestations/status': {},
  'GET /attestations/:id': { path: { id: 'attestation' } },
  'GET /attestations/:id/export': { path: { id: 'attestation' } },
  'GET /attestations/registry/publications': { query: { artifact: 'artifact' } },
  'GET /attestations/registry/config': {},
  'POST /attestations': { body: (id) => ({ subject: id('artifact'), type: 'sbom' }), expect: 404 },
  'GET /replay/runs': { query: { artifact: 'artifact' } },
  'GET /replay/runs/:scanId': { path: { scanId: 'replayScan' } },
  'POST /replay/runs/:scanId/verify': { path: { scanId: 'replayScan' }, body: () => ({}) },
  'GET /replay/runs/:scanId/ledger': { path: { scanId: 'replayScan' } },
  'GET /replay/runs/:scanId/explain': { path: { scanId: 'replayScan' } },
  'GET /replay/runs/:scanId/kit': { path: { scanId: 'replayScan' } },
  // whole-locker operations: administrators only, so A's tokens get 403 whatever the id
  'GET /backups/:id': { path: { id: 'backup' }, expect: 403 },
  'GET /evidence/restore/:id': { path: { id: 'restore' }, expect: 403 },
  'POST /evidence/anchors/:id/recover': { path: { id: 'anchor' }, body: () => ({ source: 'backup' }), expect: 403 },
};

/** Routes not called, and why. */
const NOT_PROBED: Record<string, string> = {
  'GET /healthz': 'public liveness probe, no tenant data',
  'GET /readyz': 'public readiness probe, no tenant data',
  'GET /metrics': 'public Prometheus scrape: aggregate gauges, no ids',
  'GET /openapi.json': 'public API description generated from the route schemas, no tenant data',
  'GET /docs': 'public static page that renders /openapi.json',
  'GET /doctor/checks': 'the static list of doctor checks',
  'POST /auth/revocations': 'admin only; revokes a token (jti) or a token key (kid), which are not tenant objects (test/dpop.test.ts)',
  'POST /auth/token': 'public token endpoint (no token, no object id); tenant binding tested in test/identity.test.ts',
  'GET /doctor': 'runs checks for the caller’s tenant; takes no object id',
  'GET /evidence/store/health': 'health of the shared blob stores; no tenant data',
  'POST /evidence/storage/test': 'writes and removes a probe blob of its own; no tenant data',
  'GET /evidence/anchors': 'anchors are global: one Merkle log over every tenant (tenant_id *)',
  'GET /evidence/anchors/:id': 'anchors are global: one Merkle log over every tenant (tenant_id *)',
  'GET /evidence/anchors/:id/export': 'anchors are global: one Merkle log over every tenant (tenant_id *)',
  'POST /evidence/anchors': 'anchors the global log; takes no tenant object id',
  'GET /evidence/anchors/runs/:workflowId': 'anchoring runs are of the global log (one Merkle log over every tenant)',
  'POST /evidence/anchors/verify': 'verifies the global anchor chain; takes no tenant object id',
  'POST /evidence/anchors/new-chain': 'admin only, global anchor chain',
  'GET /evidence/anchors/consistency': 'consistency proof between two anchors of the global log; takes no tenant object id',
  'GET /evidence/anchors/:id/checkpoint': 'anchors are global: one Merkle log over every tenant (tenant_id *)',
  'POST /evidence/anchors/:id/cosignatures': 'witness cosignature on a global anchor; takes no tenant object id',
  'GET /tlog/checkpoint': 'the global log’s checkpoint (size and root only)',
  ...Object.fromEntries(
    [1, 2, 3, 4, 5, 6, 7].map((d) => [
      `GET /tlog/tile/:level/${Array.from({ length: d }, (_, i) => `:s${i + 1}`).join('/')}`,
      'global log tiles: hash tiles hold hashes only; entry tiles (every tenant’s leaves) are admin only',
    ]),
  ),
  'GET /keys': 'the process-wide signing/token key ring (public halves)',
  'POST /keys': 'admin only; creates a key; takes no tenant object id',
  'POST /keys/rotate': 'admin only; rotates keys; takes no tenant object id',
  'GET /rootpack': 'the public trust roots',
  'POST /rootpack': 'admin only; imports trust roots for the caller’s tenant',
  'GET /backups': 'admin only; lists whole-locker backups',
  'POST /backups': 'admin only; whole-locker backup',
  'POST /evidence/restore': 'admin only; whole-locker restore',
  'POST /evidence/storage/provision': 'admin only; provisions the shared store',
  'POST /replay/nightly': 'admin only; every tenant’s replay verification',
  'POST /evidence/ingest': 'admin only; creates in the caller’s tenant, takes a server path, no object id',
  'POST /evidence/index/rebuild': 'admin only; creates an op in the caller’s tenant, takes no id',
  'POST /evidence/index/optimize': 'admin only; whole-locker VACUUM, takes no id',
  'POST /evidence/index/refresh': 'creates an op in the caller’s tenant; takes no id',
  'POST /evidence/verify': 'creates a run in the caller’s tenant; takes no id',
  'POST /evidence/retention/purge': 'creates a run in the caller’s tenant; takes no id',
  'POST /evidence/retention/tier-move': 'creates a run in the caller’s tenant; takes no id',
  'POST /evidence/retention/policies': 'writes the caller’s tenant policy; takes no id',
  'PUT /evidence/retention/tiers': 'writes the caller’s tenant tiers; takes no id',
  'POST /evidence/cleanup/temp': 'removes the caller’s own stale temp files; takes no id',
  'POST /promotions': 'starts a promotion in the caller’s tenant; the artifact is a public image digest',
  'PUT /promotion-policies/:env': 'writes the caller’s policy for an environment name (not an object id)',
  'POST /scans': 'starts a scan in the caller’s tenant; takes an image reference',
  'POST /events/push': 'registry webhook for the caller’s tenant; takes an image reference',
  'PUT /scanner/config': 'admin only; the caller’s tenant settings',
  'POST /images': 'registers an image in the caller’s tenant',
  'POST /feeds': 'imports an advisory feed into the caller’s tenant',
  'POST /feeds/sync': 'syncs an advisory mirror into the caller’s tenant; takes a directory or URL, no id',
  'POST /attestations/import': 'imports an attestation into the caller’s tenant',
  'POST /attestations/registry/push': 'pushes the caller’s own attestations to a registry; takes an image reference',
  'GET /attestations/registry/discover': 'reads a registry; takes an image reference, no id',
  'POST /attestations/registry/import': 'imports from a registry into the caller’s tenant; takes an image reference',
  'PUT /attestations/registry/config': 'admin only; the caller’s tenant settings',
  'POST /replay/sync': 'records offline verification results for the caller’s own runs',
};

describe('tenant isolation: tenant A cannot read, change or detect tenant B’s objects', () => {
  let h: Harness;
  let app: FastifyInstance;
  const ids = {} as Record<IdKind, string>;
  const bIds: string[] = [];
  let snapshotBefore: unknown;
  // A's tokens are DPoP-bound (replay:read needs DPoP): each probe carries a fresh proof.
  let authA: { read: DpopAuth; write: DpopAuth };

  const inject = (method: string, url: string, headers: Record<string, string>, payload?: unknown, contentType?: string) =>
    app.inject({
      method: method as 'GET',
      url,
      headers: { ...headers, ...(contentType ? { 'content-type': contentType } : {}) },
      ...(payload !== undefined ? { payload: payload as string } : {}),
    });

  /** Every row of tenant B in every table that has a tenant_id, and B's blobs' digests as stored. */
  async function snapshotOfB() {
    const tables = await h.ctx.db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.columns WHERE column_name='tenant_id' AND table_schema='public' ORDER BY table_name`,
    );
    const out: Record<string, unknown> = {};
    for (const { table_name } of tables.rows) {
      const r = await h.ctx.db.query(`SELECT to_jsonb(t) AS row FROM ${table_name} t WHERE tenant_id = $1`, [B]);
      out[table_name] = r.rows.map((x) => JSON.stringify(x.row)).sort();
    }
    const items = await h.ctx.db.query<{ id: string }>('SELECT id FROM evidence_items WHERE tenant_id=$1 ORDER BY id', [B]);
    out.blobs = await Promise.all(items.rows.map(async (i) => (await h.ctx.blobs.primary.hash(i.id))?.actual ?? null));
    return out;
  }

  beforeAll(async () => {
    h = await harness({ blob: 'fs', replica: true });
    app = await apiFor(h);
    const bWrite = await bearer(h, ['evidence:read', 'evidence:write', 'promotion:read', 'promotion:write'], B);
    const bAdmin = await bearer(h, ['admin'], B);
    authA = {
      read: await dpopAuth(h, ['evidence:read', 'promotion:read', 'replay:read'], A),
      write: await dpopAuth(h, ['evidence:read', 'evidence:write', 'promotion:read', 'promotion:write', 'replay:read'], A),
    };
    const ok = (r: LightMyRequestResponse, status: number) => {
      expect(r.statusCode, r.body).toBe(status);
      return r.json();
    };
    const wait = (workflowId: string) => h.client.workflow.getHandle(workflowId).result();

    // Items: an SBOM and a scan report linked to it.
    ids.artifact = sha256Digest(`b-artifact-${rnd()}`);
    const put = (body: string, kind: string, parent?: string) =>
      inject('POST', `/evidence?kind=${kind}&artifact=${ids.artifact}${parent ? `&parent=${parent}` : ''}`, bWrite, body, 'application/json');
    const bom = { bomFormat: 'CycloneDX', specVersion: '1.5', serialNumber: `urn:uuid:${randomUUID()}`, version: 1, components: [] };
    ids.item = ok(await put(JSON.stringify(bom), 'sbom'), 201).id;
    const child = ok(await put(`{"scan":"${rnd()}"}`, 'scan-report', ids.item), 201).id;

    // A verify run, an index rebuild, a bulk ingest, a retention dry run, a hold, a promotion.
    ids.verifyRun = ok(await inject('POST', '/evidence/verify', bWrite, { mode: 'full' }), 202).runId;
    await wait(ids.verifyRun);
    ids.rebuildOp = ok(await inject('POST', '/evidence/index/rebuild', bAdmin), 202).opId;
    await wait(ids.rebuildOp);
    const dir = mkdtempSync(join(h.ctx.cfg.dataDir, 'ingest-'));
    writeFileSync(join(dir, 'r.json'), `{"ingested":"${rnd()}"}`);
    ids.ingest = ok(await inject('POST', '/evidence/ingest', bAdmin, { path: dir, artifact: ids.artifact, kind: 'log' }), 202).workflowId;
    await wait(ids.ingest);
    expect(ok(await inject('GET', `/evidence/ingest/${ids.ingest}`, bWrite), 200).status).toBe('COMPLETED');
    ids.retentionRun = ok(await inject('POST', '/evidence/retention/purge', bWrite, { dryRun: true }), 202).runId;
    await wait(ids.retentionRun);
    ids.hold = ok(await inject('POST', '/evidence/holds', bWrite, { scope: 'items', values: [child], reason: 'b hold' }), 201).id;
    ids.attestation = ok(await inject('POST', '/attestations', bWrite, { subject: ids.artifact, type: 'sbom' }), 201).id;
    ids.promotion = ok(await inject('POST', '/promotions', bWrite, { artifact: ids.artifact, to: 'qa' }), 202).id;
    // Stopped, so nothing of B's changes while A probes.
    expect((await inject('POST', `/promotions/${ids.promotion}/abort`, bWrite, { reason: 'test' })).statusCode).toBeLessThan(300);
    await wait(ids.promotion).catch(() => undefined);
    // No scan, replay run, backup, restore or tenant anchor of B: those ids are well-formed and unknown.
    for (const k of ['scanWorkflow', 'replayScan', 'backup', 'restore', 'anchor'] as const) ids[k] = RANDOM[k]();
    ids.scanWorkflow = scanWorkflowId(B, ids.artifact);

    // B sees its own objects (so a 404 for A is isolation, not a broken route).
    ok(await inject('GET', `/evidence/verify/${ids.verifyRun}`, bWrite), 200);
    ok(await inject('GET', `/evidence/verify-report?runId=${ids.verifyRun}`, bWrite), 200);
    ok(await inject('GET', `/evidence/index/rebuild/${ids.rebuildOp}`, bAdmin), 200);
    ok(await inject('GET', `/evidence/retention/runs/${ids.retentionRun}`, bWrite), 200);
    ok(await inject('GET', `/evidence/storage/check/${ids.item}`, bWrite), 200);
    ok(await inject('GET', `/evidence/index/lookup/${ids.item}`, bWrite), 200);
    ok(await inject('GET', `/evidence/holds/${ids.hold}`, bWrite), 200);
    ok(await inject('GET', `/attestations/${ids.attestation}`, bWrite), 200);
    ok(await inject('GET', `/promotions/${ids.promotion}`, bWrite), 200);

    bIds.push(
      ...Object.entries(ids)
        .filter(([k]) => !['scanWorkflow', 'replayScan', 'backup', 'restore', 'anchor'].includes(k))
        .map(([, v]) => v),
      child,
    );
    snapshotBefore = await snapshotOfB();
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('every registered route is probed or listed as not probed, with a reason', () => {
    const routes = app.routeList().map((r) => `${r.method} ${r.url}`);
    const covered = (k: string) =>
      k in PROBES ||
      k in NOT_PROBED ||
      (k.startsWith('HEAD ') && `GET ${k.slice(5)}` in PROBES) ||
      (k.startsWith('HEAD ') && `GET ${k.slice(5)}` in NOT_PROBED);
    expect(routes.filter((k) => !covered(k))).toEqual([]);
    // And the tables name no route that does not exist.
    expect([...Object.keys(PROBES), ...Object.keys(NOT_PROBED)].filter((k) => !routes.includes(k))).toEqual([]);
  });

  /** One call as A: the id kinds resolved by `pick` (B's objects, or ids that exist nowhere). */
  async function call(route: string, p: Probe, token: DpopAuth, pick: (k: IdKind) => string) {
    const [method, pattern] = route.split(' ') as [string, string];
    const used: string[] = [];
    const id = (k: IdKind) => {
      const v = pick(k);
      used.push(v);
      return v;
    };
    let url = pattern;
    for (const [param, kind] of Object.entries(p.path ?? {})) url = url.replace(`:${param}`, encodeURIComponent(id(kind)));
    const qs = new URLSearchParams();
    if (p.raw) qs.set('artifact', sha256Digest(`a-upload-${rnd()}`));
    for (const [k, v] of Object.entries(p.query ?? {})) qs.set(k, typeof v === 'string' ? id(v) : v.value);
    if ([...qs.keys()].length) url += `?${qs}`;
    const body = p.raw ? `{"a":"${rnd()}"}` : p.body?.(id);
    const res = await inject(method, url, await token.headers(method, url.split('?')[0]!), body, p.raw ? 'application/json' : undefined);
    return { res, used };
  }

  /** The answer with the ids it was asked about masked (so B's and a random id compare equal). */
  function masked(res: LightMyRequestResponse, used: string[]): string {
    let text = res.body;
    for (const u of used) text = text.split(u).join('<id>').split(encodeURIComponent(u)).join('<id>');
    return text;
  }

  /** Values replaced by their types: two answers listing different things at different times have the same shape. */
  function shapeOf(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(shapeOf);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shapeOf(x)]));
    return v === null ? null : typeof v;
  }

  /** PROBES, plus the HEAD twin of each GET route (fastify exposes one unless a HEAD route of its own exists). */
  const routesToProbe = () => {
    const all = new Map(Object.entries(PROBES));
    for (const [k, p] of Object.entries(PROBES)) if (k.startsWith('GET ') && !all.has(`HEAD ${k.slice(4)}`)) all.set(`HEAD ${k.slice(4)}`, p);
    return [...all.entries()];
  };

  it.each(['read', 'write'] as const)(
    'with A’s %s token, B’s ids answer exactly like ids that exist nowhere',
    async (scope) => {
      const failures: string[] = [];
      for (const [route, p] of routesToProbe()) {
        if (route.startsWith('HEAD ') && !app.routeList().some((r) => `${r.method} ${r.url}` === route)) continue;
        const token = authA[scope];
        const theirs = await call(route, p, token, (k) => ids[k]);
        const randomIds = new Map<IdKind, string>();
        const none = await call(route, p, token, (k) => randomIds.get(k) ?? randomIds.set(k, RANDOM[k]()).get(k)!);
        const a = masked(theirs.res, theirs.used);
        const b = masked(none.res, none.used);
        const where = `${scope} ${route}`;
        if (theirs.res.statusCode !== none.res.statusCode)
          failures.push(`${where}: ${theirs.res.statusCode} for B's id, ${none.res.statusCode} for a random id (${a.slice(0, 200)})`);
        else if (theirs.res.statusCode >= 400 && a !== b) failures.push(`${where}: answers differ: ${a.slice(0, 200)} vs ${b.slice(0, 200)}`);
        else if (theirs.res.statusCode < 400 && route.startsWith('GET ') && theirs.res.headers['content-type']?.toString().includes('json')) {
          if (JSON.stringify(shapeOf(JSON.parse(a))) !== JSON.stringify(shapeOf(JSON.parse(b))))
            failures.push(`${where}: shapes differ: ${a.slice(0, 200)} vs ${b.slice(0, 200)}`);
        }
        if (theirs.res.statusCode >= 500) failures.push(`${where}: ${theirs.res.statusCode} ${a.slice(0, 200)}`);
        const leaked = bIds.filter((x) => a.includes(x));
        if (leaked.length) failures.push(`${where}: answer names B's ${leaked.join(', ')}`);
        const expected = p.expect ?? (p.path ? 404 : undefined);
        if (
          expected !== undefined &&
          theirs.res.statusCode !== expected &&
          !(scope === 'read' && theirs.res.statusCode === 403 && !route.startsWith('GET ') && !route.startsWith('HEAD '))
        )
          failures.push(`${where}: expected ${expected} for B's id, got ${theirs.res.statusCode} (${a.slice(0, 200)})`);
      }
      expect(failures).toEqual([]);
      expect(await snapshotOfB()).toEqual(snapshotBefore);
    },
    300_000,
  );
});

describe('upload parent= must name an item of the uploader’s own tenant', () => {
  let h: Harness;
  let app: FastifyInstance;
  beforeAll(async () => {
    h = await harness({ blob: 'fs', worker: false });
    app = await apiFor(h);
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  const blobs = async () => {
    const out: string[] = [];
    for await (const d of h.ctx.blobs.primary.digests()) out.push(d);
    return out.sort();
  };
  const counts = async () =>
    (
      await h.ctx.db.query(
        `SELECT (SELECT count(*) FROM evidence_items)::int AS items, (SELECT count(*) FROM evidence_edges)::int AS edges, (SELECT count(*) FROM evidence_log)::int AS log`,
      )
    ).rows[0];

  it('another tenant’s item or an id that exists nowhere: 400 with the reason, nothing stored; an own item links', async () => {
    const art = sha256Digest(`parent-${rnd()}`);
    const up = async (tenant: string, body: string, parent?: string) =>
      app.inject({
        method: 'POST',
        url: `/evidence?kind=scan-report&artifact=${art}${parent ? `&parent=${parent}` : ''}`,
        headers: { ...(await bearer(h, ['evidence:write'], tenant)), 'content-type': 'application/json' },
        payload: body,
      });
    const theirs = await up(B, `{"b":"${rnd()}"}`);
    expect(theirs.statusCode).toBe(201);
    const bItem = theirs.json().id as string;
    const before = { blobs: await blobs(), counts: await counts() };

    const nowhere = sha256Digest(`nowhere-${rnd()}`);
    for (const parent of [bItem, nowhere]) {
      const body = `{"a":"${rnd()}"}`;
      const r = await up(A, body, parent);
      expect(r.statusCode).toBe(400);
      expect(r.json()).toMatchObject({
        code: 'BAD_INPUT',
        detail: `parent ${parent} is not an evidence item of tenant ${A}; upload the parent first; nothing stored`,
      });
      expect(await h.ctx.evidence.find(A, sha256Digest(Buffer.from(body)))).toBeNull();
    }
    expect({ blobs: await blobs(), counts: await counts() }).toEqual(before);

    const own = await up(A, `{"own":"${rnd()}"}`);
    const linked = await up(A, `{"child":"${rnd()}"}`, own.json().id);
    expect(linked.statusCode).toBe(201);
    const edges = await h.ctx.db.query('SELECT tenant_id, parent_id FROM evidence_edges WHERE child_id=$1', [linked.json().id]);
    expect(edges.rows).toEqual([{ tenant_id: A, parent_id: own.json().id }]);
  });
});
