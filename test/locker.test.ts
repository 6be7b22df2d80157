import { apiFor } from './support/api';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { harness, type Harness } from './support/context';
import { TOKEN_PURPOSE, openKeyStore } from '../src/core/keys';
import { mintToken } from '../src/crypto/tokens';
import { sha256Digest } from '../src/lib/hash';
import { verifyReport } from '../src/core/evidence/locker/verify';
import { transitionItems } from '../src/core/evidence';
import { SLSA_PROVENANCE_V1, CYCLONEDX_BOM, VULNS_V02 } from '../src/crypto/intoto';
import { UNKNOWN_SUBJECT } from '../src/core/evidence/locker/index-ops';
import { spoolPendingEvidence } from '../src/core/evidence/locker/repair';
import { buildTar } from '../src/archive';

const TENANT = 'default';
const rnd = () => randomBytes(6).toString('hex');

async function api(h: Harness) {
  return apiFor(h);
}
const token = (h: Harness, scopes: string[], tenant = TENANT) =>
  mintToken(h.ctx.keys, { sub: 'tester', tenant, scopes: scopes as never, ttlSeconds: 600 }, { purpose: TOKEN_PURPOSE });

async function fullVerify(h: Harness) {
  const runId = `verify-${rnd()}`;
  const summary = await h.client.workflow.execute('verifyEvidence', {
    args: [{ runId, mode: 'full', sampleRate: 1 }],
    taskQueue: h.ctx.cfg.temporal.taskQueue,
    workflowId: runId,
  });
  return { summary, report: (await verifyReport(h.ctx, { runId, failedOnly: true }))! };
}

describe.each(['fs', 's3'] as const)('evidence locker operations on %s with a replica', (blob) => {
  let h: Harness;
  let app: FastifyInstance;
  let admin: string;
  const ARTIFACT = sha256Digest(`app-${blob}-${rnd()}`);
  const ingest = (s: string, extra: Partial<Parameters<Harness['ctx']['evidence']['ingest']>[0]> = {}) =>
    h.ctx.evidence.ingest({ tenant: TENANT, data: Buffer.from(s), kind: 'scan-report', mediaType: 'application/json', subjects: [ARTIFACT], ...extra });

  beforeAll(async () => {
    h = await harness({ blob, replica: true });
    app = await api(h);
    admin = await token(h, ['admin']);
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });
  const call = (method: 'GET' | 'POST' | 'HEAD', url: string, body?: unknown, tok = admin) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${tok}` }, ...(body !== undefined ? { payload: body as object } : {}) });

  it('full verify reports a flipped byte by id; recover --source replica restores it and verify passes', async () => {
    const a = await ingest(`{"flip":"${rnd()}"}`);
    const original = await h.ctx.blobs.primary.getBuffer(a.id);
    const flipped = Buffer.from(original);
    flipped[3] = flipped[3]! ^ 0x01;
    await h.ctx.blobs.primary.writeRaw(a.id, flipped);

    const bad = await fullVerify(h);
    expect(bad.summary.status).toBe('failed');
    expect(bad.report.results).toContainEqual(expect.objectContaining({ id: a.id, result: 'hash-mismatch' }));

    const check = await call('GET', `/evidence/storage/check/${a.id}`);
    expect(check.json()).toMatchObject({ ok: false, primary: { result: 'hash-mismatch' }, replica: { result: 'ok' } });

    const rec = await call('POST', `/evidence/${a.id}/recover`, { source: 'replica' });
    expect(rec.statusCode).toBe(200);
    expect(rec.json()).toMatchObject({ recovered: true, primaryWas: 'hash-mismatch', state: 'present' });
    expect((await h.ctx.blobs.primary.getBuffer(a.id)).equals(original)).toBe(true);
    const good = await fullVerify(h);
    expect(good.summary.status).toBe('passed');
    const trail = await h.ctx.db.query(`SELECT action, details FROM audit_log WHERE target=$1`, [a.id]);
    expect(trail.rows.map((r) => r.action)).toContain('evidence.recover');
  });

  it('recover refuses a damaged replica copy and changes nothing', async () => {
    const a = await ingest(`{"both-bad":"${rnd()}"}`);
    await h.ctx.blobs.primary.writeRaw(a.id, Buffer.from('garbage-1'));
    await h.ctx.blobs.replica!.writeRaw(a.id, Buffer.from('garbage-2'));
    const rec = await call('POST', `/evidence/${a.id}/recover`, { source: 'replica' });
    expect(rec.statusCode).toBe(422);
    expect(rec.json().detail).toMatch(/replica copy .* also damaged/);
    expect((await h.ctx.blobs.primary.hash(a.id))!.actual).toBe(sha256Digest('garbage-1'));
    const audits = await h.ctx.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE target=$1 AND action='evidence.recover'`, [a.id]);
    expect(audits.rows[0].n).toBe(0);
    // and then the runbook's fallback: mark it corrupted, audited
    const m = await call('POST', `/evidence/${a.id}/mark-corrupted`, { reason: 'hash-mismatch' });
    expect(m.statusCode).toBe(200);
    expect((await h.ctx.evidence.get(TENANT, a.id)).state).toBe('corrupted');
    const trail = await h.ctx.db.query(`SELECT actor, action, reason FROM audit_log WHERE target=$1`, [a.id]);
    expect(trail.rows).toContainEqual({ actor: 'api:tester', action: 'evidence.state.corrupted', reason: 'hash-mismatch' });
  });

  it('a blob missing from storage is reported by verify, flagged by index refresh and re-stored by retry-store', async () => {
    const a = await ingest(`{"missing":"${rnd()}"}`);
    await h.ctx.blobs.primary.delete(a.id);
    const v = await fullVerify(h);
    expect(v.report.results).toContainEqual(expect.objectContaining({ id: a.id, result: 'missing-blob' }));
    const refresh = await call('POST', '/evidence/index/refresh', {});
    expect(refresh.json().changes).toContainEqual({ id: a.id, from: 'present', to: 'corrupted', reason: 'missing-blob' });
    expect((await call('GET', `/evidence/${a.id}`)).statusCode).toBe(422);

    const r = await call('POST', '/evidence/retry-store', { artifact: ARTIFACT });
    expect(r.statusCode).toBe(200);
    expect(r.json().outcomes).toContainEqual(expect.objectContaining({ id: a.id, action: 'restored-from-replica' }));
    expect((await h.ctx.evidence.get(TENANT, a.id)).state).toBe('present');
    expect((await call('GET', `/evidence/${a.id}`)).statusCode).toBe(200);
  });

  it('retry-store ingests evidence parked in the spool for the artifact', async () => {
    const data = Buffer.from(`{"parked":"${rnd()}"}`);
    await spoolPendingEvidence(
      h.ctx.cfg.dataDir,
      { tenant: TENANT, data, kind: 'sbom', mediaType: 'application/json', subjects: [ARTIFACT] },
      'store unavailable',
    );
    const r = await call('POST', '/evidence/retry-store', { artifact: ARTIFACT });
    expect(r.json().outcomes).toContainEqual(expect.objectContaining({ id: sha256Digest(data), action: 'ingested-from-spool' }));
    expect((await h.ctx.evidence.get(TENANT, sha256Digest(data))).kind).toBe('sbom');
    expect(readdirSync(join(h.ctx.cfg.dataDir, 'spool', 'pending'))).toEqual([]);
  });

  it('index rebuild (workflow) finds an unindexed blob and quarantines it under the unknown subject', async () => {
    const orphan = Buffer.from(`{"bomFormat":"CycloneDX","orphan":"${rnd()}"}`);
    const id = sha256Digest(orphan);
    await h.ctx.blobs.primary.put(id, orphan);
    const st = await call('GET', '/evidence/index/status?full=true');
    expect(st.json().blobs.unindexed).toBeGreaterThanOrEqual(1);
    const start = await call('POST', '/evidence/index/rebuild', {});
    expect(start.statusCode).toBe(202);
    const r = await h.client.workflow.getHandle(start.json().opId).result();
    expect(r.reindexedIds).toContain(id);
    const item = await h.ctx.evidence.get(TENANT, id);
    expect(item).toMatchObject({ kind: 'other', state: 'quarantined', mediaType: 'application/vnd.cyclonedx+json', subjects: [UNKNOWN_SUBJECT] });
    expect(item.logSeq).not.toBeNull();
    const audits = await h.ctx.db.query(`SELECT action FROM audit_log WHERE target=$1`, [id]);
    expect(audits.rows.map((x) => x.action)).toContain('evidence.index.rebuild.reindexed');
    const after = await call('GET', '/evidence/index/status?full=true');
    expect(after.json()).toMatchObject({ blobs: { unindexed: 0 }, lastRebuild: { status: 'succeeded' } });
    const lookup = await call('GET', `/evidence/index/lookup/${id}`);
    expect(lookup.json()).toMatchObject({ indexed: true, blob: { present: true }, replica: { present: true } });
  });

  it('evidence chain shows missing nodes and becomes complete', async () => {
    const art = sha256Digest(`chain-${rnd()}`);
    const put = (s: string, kind: 'sbom' | 'scan-report' | 'attestation', predicateType?: string, parent?: string) =>
      h.ctx.evidence.ingest({
        tenant: TENANT,
        data: Buffer.from(s),
        kind,
        mediaType: 'application/json',
        subjects: [art],
        predicateType,
        parents: parent ? [{ id: parent }] : [],
      });
    const sbom = await put(`{"sbom":"${rnd()}"}`, 'sbom');
    let c = (await call('GET', `/evidence/chain?artifact=${art}`)).json();
    expect(c.complete).toBe(false);
    expect(c.missing).toEqual(['scan-report', 'attestation:slsa-provenance', 'attestation:cyclonedx-sbom', 'attestation:vuln-scan']);
    expect(c.nodes.find((n: { key: string }) => n.key === 'scan-report').remedy).toContain('stella scan image');
    const scan = await put(`{"scan":"${rnd()}"}`, 'scan-report', undefined, sbom.id);
    await put(`{"slsa":"${rnd()}"}`, 'attestation', SLSA_PROVENANCE_V1);
    await put(`{"cdx":"${rnd()}"}`, 'attestation', CYCLONEDX_BOM, sbom.id);
    await put(`{"vuln":"${rnd()}"}`, 'attestation', VULNS_V02, scan.id);
    c = (await call('GET', `/evidence/chain?artifact=${art}`)).json();
    expect(c).toMatchObject({ complete: true, missing: [] });
    expect(c.nodes.find((n: { key: string }) => n.key === 'scan-report').linked).toBe(true);
    // a corrupted SBOM makes the chain incomplete again
    await h.ctx.evidence.setState(TENANT, sbom.id, 'corrupted', 'test', 'tester');
    c = (await call('GET', `/evidence/chain?artifact=${art}`)).json();
    expect(c).toMatchObject({ complete: false, missing: ['sbom'] });
    const prov = (await call('GET', `/evidence/${scan.id}/provenance`)).json();
    expect(prov.ancestors).toEqual([expect.objectContaining({ id: sbom.id, kind: 'sbom', depth: 1 })]);
    expect(prov.log.seq).toBeTypeOf('number');
  });

  it('bulk-ingests a tar archive with the safe extractor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ingest-'));
    const files = Array.from({ length: 5 }, (_, i) => ({ path: `reports/r${i}.json`, data: Buffer.from(`{"r":${i},"x":"${rnd()}"}`) }));
    const tar = join(dir, 'evidence.tar');
    writeFileSync(tar, buildTar(files.map((f) => ({ type: 'file' as const, path: f.path, data: f.data }))));
    const art = sha256Digest(`tar-${rnd()}`);
    const res = await call('POST', '/evidence/ingest', { path: tar, artifact: art, kind: 'scan-report' });
    expect(res.statusCode).toBe(202);
    const workflowId = res.json().workflowId;
    // `?wait=` answers once the ingest has ended (the CLI's follow loop), result included.
    const waited = await call('GET', `/evidence/ingest/${workflowId}?wait=30`);
    expect(waited.statusCode).toBe(200);
    expect(waited.json()).toMatchObject({ status: 'COMPLETED', result: { total: 5, created: 5 } });
    expect((await call('GET', `/evidence/ingest/${workflowId}?wait=31`)).statusCode).toBe(400);
    const r = await h.client.workflow.getHandle(workflowId).result();
    expect(r).toMatchObject({ total: 5, created: 5 });
    const listed = await h.ctx.evidence.list({ tenant: TENANT, artifact: art });
    expect(listed.items.map((i) => i.id).sort()).toEqual(files.map((f) => sha256Digest(f.data)).sort());
    expect(readdirSync(join(h.ctx.cfg.dataDir, 'spool', 'ingest'))).toEqual([]);
  });
});

describe('evidence locker API: bad input, auth, doctor, batched ingest', () => {
  let h: Harness;
  let app: FastifyInstance;
  let admin: string;
  const ARTIFACT = sha256Digest(`api-${rnd()}`);
  beforeAll(async () => {
    h = await harness({ blob: 'fs', worker: false, env: { STELLA_MAX_UPLOAD_BYTES: '1024' } });
    app = await api(h);
    admin = await token(h, ['admin']);
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });
  const blobCount = async () => {
    let n = 0;
    for await (const _ of h.ctx.blobs.primary.list()) n++;
    return n;
  };
  const rows = async () => (await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items')).rows[0].n as number;

  it('malformed digest, unknown id, oversize upload and digest-header mismatch: clear errors, nothing written', async () => {
    const auth = { authorization: `Bearer ${admin}` };
    const before = { blobs: await blobCount(), rows: await rows() };
    const malformed = await app.inject({ method: 'GET', url: '/evidence/sha256:XYZ/provenance', headers: auth });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().detail).toMatch(/malformed evidence id/);
    const unknown = sha256Digest(`nope-${rnd()}`);
    expect((await app.inject({ method: 'GET', url: `/evidence/storage/check/${unknown}`, headers: auth })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: `/evidence/${unknown}/mark-corrupted`, headers: auth, payload: { reason: 'x' } })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: `/evidence/chain?artifact=sha256:short`, headers: auth })).statusCode).toBe(400);

    const big = Buffer.alloc(4096, 7);
    const tooBig = await app.inject({
      method: 'POST',
      url: `/evidence?kind=log&artifact=${ARTIFACT}`,
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      payload: big,
    });
    expect(tooBig.statusCode).toBe(413);
    const body = Buffer.from('{"ok":1}');
    const mismatch = await app.inject({
      method: 'POST',
      url: `/evidence?kind=log&artifact=${ARTIFACT}`,
      headers: { ...auth, 'content-type': 'application/json', 'x-stella-digest': sha256Digest('something else') },
      payload: body,
    });
    expect(mismatch.statusCode).toBe(400);
    expect(mismatch.json().detail).toMatch(/digest mismatch/);
    expect({ blobs: await blobCount(), rows: await rows() }).toEqual(before);
    expect(readdirSync(join(h.ctx.cfg.dataDir, 'spool')).filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  it('missing, expired and forged tokens are 401; wrong scope or tenant 403', async () => {
    const url = '/evidence/status';
    expect((await app.inject({ method: 'GET', url })).statusCode).toBe(401);
    const expired = await mintToken(
      h.ctx.keys,
      { sub: 'old', tenant: TENANT, scopes: ['evidence:read'], ttlSeconds: 60 },
      { purpose: TOKEN_PURPOSE, now: new Date(Date.now() - 3_600_000) },
    );
    expect((await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${expired}` } })).statusCode).toBe(401);
    const otherKeys = await openKeyStore(mkdtempSync(join(tmpdir(), 'keys-')));
    const forged = await mintToken(otherKeys, { sub: 'mallory', tenant: TENANT, scopes: ['admin'], ttlSeconds: 600 }, { purpose: TOKEN_PURPOSE });
    expect((await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${forged}` } })).statusCode).toBe(401);

    const reader = await token(h, ['evidence:read']);
    const asReader = (method: 'GET' | 'POST', u: string, payload?: object, extra: Record<string, string> = {}) =>
      app.inject({ method, url: u, headers: { authorization: `Bearer ${reader}`, ...extra }, payload });
    expect((await asReader('GET', url)).statusCode).toBe(200);
    const a = await h.ctx.evidence.ingest({
      tenant: TENANT,
      data: Buffer.from(`{"a":"${rnd()}"}`),
      kind: 'log',
      mediaType: 'application/json',
      subjects: [ARTIFACT],
    });
    expect((await asReader('POST', `/evidence/${a.id}/mark-corrupted`, { reason: 'x' })).statusCode).toBe(403);
    expect((await asReader('POST', '/evidence/index/optimize', {})).statusCode).toBe(403);
    expect((await asReader('POST', '/evidence/ingest', { path: '/tmp', artifact: ARTIFACT, kind: 'log' })).statusCode).toBe(403);
    expect((await asReader('GET', url, undefined, { 'x-stella-tenant': 'other-tenant' })).statusCode).toBe(403);
    expect((await h.ctx.evidence.get(TENANT, a.id)).state).toBe('present');
    // another tenant's token cannot see this tenant's item
    const other = await token(h, ['evidence:read', 'evidence:write'], 'tenant-b');
    expect((await app.inject({ method: 'GET', url: `/evidence/${a.id}/provenance`, headers: { authorization: `Bearer ${other}` } })).statusCode).toBe(404);
  });

  it('doctor runs the evidence checks and names remedies', async () => {
    const r = await app.inject({ method: 'GET', url: '/doctor?category=evidence', headers: { authorization: `Bearer ${admin}` } });
    expect(r.statusCode).toBe(200);
    const ids = r.json().results.map((x: { id: string }) => x.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        'check.evidence.database',
        'check.storage.evidencelocker',
        'check.storage.evidencelocker.replica',
        'check.evidence.verify',
        'check.evidence.index',
      ]),
    );
    const replica = r.json().results.find((x: { id: string }) => x.id === 'check.storage.evidencelocker.replica');
    expect(replica).toMatchObject({ status: 'WARN' });
    expect(replica.remedy).toMatch(/ReplicaPath/);
    const one = await app.inject({ method: 'GET', url: '/doctor?check=check.storage.evidencelocker', headers: { authorization: `Bearer ${admin}` } });
    expect(one.json().results.every((x: { id: string }) => x.id.startsWith('check.storage.evidencelocker'))).toBe(true);
    expect(one.json().results[0]).toMatchObject({ id: 'check.storage.evidencelocker', status: 'PASS' });
    expect((await app.inject({ method: 'GET', url: '/doctor?check=check.nope.none', headers: { authorization: `Bearer ${admin}` } })).statusCode).toBe(400);
    const recover = await app.inject({
      method: 'POST',
      url: `/evidence/${sha256Digest('x')}/recover`,
      headers: { authorization: `Bearer ${admin}` },
      payload: { source: 'replica' },
    });
    expect(recover.statusCode).toBe(404);
  });

  it('recover without a replica is a clear error', async () => {
    const a = await h.ctx.evidence.ingest({
      tenant: TENANT,
      data: Buffer.from(`{"n":"${rnd()}"}`),
      kind: 'log',
      mediaType: 'application/json',
      subjects: [ARTIFACT],
    });
    const r = await app.inject({
      method: 'POST',
      url: `/evidence/${a.id}/recover`,
      headers: { authorization: `Bearer ${admin}` },
      payload: { source: 'replica' },
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().detail).toMatch(/no replica store is configured/);
  });

  it('ingestMany keeps ingest semantics: idempotent, dense log, duplicates stored once', async () => {
    const datas = Array.from({ length: 50 }, (_, i) => Buffer.from(`{"batch":${i},"r":"${rnd()}"}`));
    const before = Number((await h.ctx.db.query('SELECT size FROM log_state')).rows[0].size);
    const inputs = [...datas, datas[0]!].map((data) => ({ tenant: TENANT, data, kind: 'log' as const, mediaType: 'application/json', subjects: [ARTIFACT] }));
    const r = await h.ctx.evidence.ingestMany(inputs);
    expect(r.filter((x) => x.created)).toHaveLength(50);
    expect(r[50]).toMatchObject({ id: r[0]!.id, created: false, logSeq: r[0]!.logSeq });
    expect(r.slice(0, 50).map((x) => x.logSeq)).toEqual(Array.from({ length: 50 }, (_, i) => before + i));
    const again = await h.ctx.evidence.ingestMany(inputs.slice(0, 10));
    expect(again.every((x) => !x.created)).toBe(true);
    const log = await h.ctx.db.query('SELECT count(*)::int AS n, max(seq)::int AS m, (SELECT size FROM log_state)::int AS s FROM evidence_log');
    expect(log.rows[0].n).toBe(log.rows[0].s);
    expect(log.rows[0].m).toBe(log.rows[0].s - 1);
    for (const d of datas.slice(0, 3)) expect((await h.ctx.blobs.primary.getBuffer(sha256Digest(d))).equals(d)).toBe(true);
  });

  it('re-ingesting a purged cold item (single and batched) brings it back present and hot, its blob in the hot store', async () => {
    const cold = h.ctx.blobs.primary.withPrefix('cold');
    const ARTIFACT = sha256Digest(`cold-${rnd()}`);
    const ingest = (s: string) =>
      h.ctx.evidence.ingest({ tenant: TENANT, data: Buffer.from(s), kind: 'scan-report', mediaType: 'application/json', subjects: [ARTIFACT] });
    // Retention's path for an item: moved to the cold tier, then purged (its bytes deleted).
    const purgeCold = async (data: Buffer) => {
      const id = (await ingest(data.toString())).id;
      await cold.put(id, data);
      await h.ctx.blobs.primary.delete(id);
      await h.ctx.db.query(`UPDATE evidence_items SET tier='cold' WHERE tenant_id=$1 AND id=$2`, [TENANT, id]);
      await cold.delete(id);
      expect(await transitionItems(h.ctx.db, TENANT, [id], { from: ['present'], to: 'purged', reason: 'retention' })).toEqual([id]);
      return id;
    };
    const one = Buffer.from(`{"cold":"single-${rnd()}"}`);
    const many = Buffer.from(`{"cold":"batch-${rnd()}"}`);
    const [idOne, idMany] = [await purgeCold(one), await purgeCold(many)];

    const again = await ingest(one.toString());
    const [againMany] = await h.ctx.evidence.ingestMany([
      { tenant: TENANT, data: many, kind: 'scan-report', mediaType: 'application/json', subjects: [ARTIFACT] },
    ]);
    expect(again).toMatchObject({ id: idOne, created: false });
    expect(againMany).toMatchObject({ id: idMany, created: false });
    for (const [id, data] of [
      [idOne, one],
      [idMany, many],
    ] as const) {
      expect(await h.ctx.evidence.get(TENANT, id)).toMatchObject({ state: 'present', tier: 'hot', stateReason: null });
      expect(await h.ctx.blobs.primary.stat(id)).not.toBeNull();
      expect((await h.ctx.evidence.read(TENANT, id)).equals(data)).toBe(true);
    }
  });
});
