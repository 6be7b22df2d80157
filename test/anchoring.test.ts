import { apiFor, bearer } from './support/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportRootPack } from '../src/crypto/rootpack';
import { harness, type Harness } from './support/context';
import { createMetrics } from '../src/app/metrics';
import { openKeyStore, SIGNING_PURPOSE } from '../src/core/keys';
import { sha256Digest } from '../src/lib/hash';
import {
  anchorStats,
  backupDir,
  createAnchor,
  latestAnchor,
  anchorById,
  newChain,
  recoverAnchor,
  verifyAnchors,
  anchorVerifyAll,
  inclusionProofFor,
  verifyOffline,
} from '../src/core/anchoring';
import { decodeAnchorUnverified, merkleRoot, signAnchor, verifyConsistency, consistencyProof } from '../src/merkle';

let h: Harness;
let app: FastifyInstance;
const ART = sha256Digest('registry.example/app@anchoring');
const auth = (scopes: string[]) => bearer(h, scopes);
const ingest = async (n: number) => {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await h.ctx.evidence.ingest({
      tenant: 'default',
      data: Buffer.from(`{"n":${i},"r":"${randomBytes(6).toString('hex')}"}`),
      kind: 'sbom',
      mediaType: 'application/json',
      subjects: [ART],
    });
    ids.push(r.id);
  }
  return ids;
};
const leafHashes = async (n: number): Promise<Buffer[]> =>
  (await h.ctx.db.query('SELECT leaf_hash FROM evidence_log WHERE seq < $1 ORDER BY seq', [n])).rows.map((r) => r.leaf_hash);
const anchorRows = async () => (await h.ctx.db.query('SELECT * FROM anchors ORDER BY created_at, seq')).rows;

beforeAll(async () => {
  h = await harness({ blob: 'fs' });
  app = await apiFor(h);
});
afterAll(async () => {
  await app?.close();
  await h?.close();
});

describe('Merkle anchoring on PostgreSQL', () => {
  it('anchors ingested evidence incrementally: k new leaves read, roots equal the full recomputation', async () => {
    await ingest(37);
    const a0 = await createAnchor(h.ctx, { reason: 'test' });
    expect(a0.status).toBe('created');
    expect(a0.anchor).toMatchObject({ seq: 0, logSize: 37, prevAnchorHash: null });
    expect(a0.anchor!.rootHash).toBe(merkleRoot(await leafHashes(37)).toString('hex'));

    await ingest(5);
    const before = anchorStats.leavesRead;
    const a1 = await createAnchor(h.ctx, {});
    expect(a1.leavesRead).toBe(5);
    expect(anchorStats.leavesRead - before).toBe(5);
    expect(a1.anchor).toMatchObject({ seq: 1, logSize: 42, prevAnchorHash: a0.anchor!.id });
    const all = await leafHashes(42);
    expect(a1.anchor!.rootHash).toBe(merkleRoot(all).toString('hex'));
    expect(verifyConsistency(37, 42, Buffer.from(a0.anchor!.rootHash, 'hex'), Buffer.from(a1.anchor!.rootHash, 'hex'), consistencyProof(37, all, 42))).toBe(
      true,
    );
    // subtrees of >= 16 leaves were persisted for O(log N) proofs
    const nodes = await h.ctx.db.query('SELECT level, idx FROM merkle_nodes ORDER BY level, idx');
    expect(nodes.rows.map((r) => `${r.level}/${r.idx}`)).toEqual(['4/0', '4/1', '5/0']);

    // no new leaves: skipped unless forced
    const skip = await createAnchor(h.ctx, {});
    expect(skip.status).toBe('skipped');
    expect(skip.message).toMatch(/no new leaves/);
    // idempotent per request: a retry returns the same anchor
    const f1 = await createAnchor(h.ctx, { force: true, requestId: 'req-1' });
    const f2 = await createAnchor(h.ctx, { force: true, requestId: 'req-1' });
    expect(f1.status).toBe('created');
    expect(f2.status).toBe('existing');
    expect(f2.anchor!.id).toBe(f1.anchor!.id);
    expect(await anchorRows()).toHaveLength(3);
    // every anchor has its backup file
    expect(readdirSync(backupDir(h.ctx)).sort()).toEqual((await anchorRows()).map((r) => `${r.id}.json`).sort());

    const v = await anchorVerifyAll(h.ctx);
    expect(v).toMatchObject({ ok: true, checked: 3, total: 3, firstBreak: null });
    expect((await latestAnchor(h.ctx))!.id).toBe(f1.anchor!.id);
    expect((await anchorById(h.ctx, f1.anchor!.id.slice(0, 10))).logSize).toBe(42);
  });

  it('verify --all names the break: a log row, an anchor root, a signature, a link; recover restores from backup', async () => {
    const rows = await anchorRows();
    // 1. log row tampered (UPDATE; the trigger only blocks DELETE)
    const orig = (await h.ctx.db.query('SELECT leaf_hash FROM evidence_log WHERE seq = 3')).rows[0].leaf_hash;
    await h.ctx.db.query('UPDATE evidence_log SET leaf_hash = $1 WHERE seq = 3', [randomBytes(32)]);
    let v = await verifyAnchors(h.ctx, { scope: 'all' });
    expect(v.ok).toBe(false);
    expect(v.firstBreak).toMatchObject({ anchorId: rows[0].id, seq: 0, reason: 'root-mismatch' });
    expect(v.logRows.map((r) => r.seq)).toEqual([3]);
    expect((await verifyAnchors(h.ctx, { scope: 'latest' })).ok).toBe(false);
    await h.ctx.db.query('UPDATE evidence_log SET leaf_hash = $1 WHERE seq = 3', [orig]);
    expect((await anchorVerifyAll(h.ctx)).ok).toBe(true);

    // 2. an anchor's root column
    await h.ctx.db.query('UPDATE anchors SET root_hash = $1 WHERE id = $2', ['ab'.repeat(32), rows[1].id]);
    v = await anchorVerifyAll(h.ctx);
    expect(v.firstBreak).toMatchObject({ anchorId: rows[1].id, seq: 1, reason: 'row-mismatch' });
    expect(v.firstBreak!.detail).toMatch(/root_hash/);
    await recoverAnchor(h.ctx, { id: rows[1].id, source: 'backup', actor: 'test' });
    expect((await anchorVerifyAll(h.ctx)).ok).toBe(true);

    // 3. its signature
    const jws: string = rows[1].jws;
    const flipped = jws.slice(0, -3) + (jws.at(-3) === 'A' ? 'B' : 'A') + jws.slice(-2);
    await h.ctx.db.query('UPDATE anchors SET jws = $1 WHERE id = $2', [flipped, rows[1].id]);
    v = await anchorVerifyAll(h.ctx);
    expect(v.firstBreak).toMatchObject({ anchorId: rows[1].id, reason: 'signature' });
    const rec = await recoverAnchor(h.ctx, { id: rows[1].id.slice(0, 12), source: 'backup', actor: 'test' });
    expect(rec.replaced).toBe(true);
    expect((await anchorVerifyAll(h.ctx)).ok).toBe(true);
    const audit = await h.ctx.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'evidence.anchor.recover'`);
    expect(audit.rows[0].n).toBe(2);

    // 4. its link: a key holder re-signs seq 2 pointing elsewhere
    const p = decodeAnchorUnverified(rows[2].jws)!;
    const rec2 = await h.ctx.keys.active(SIGNING_PURPOSE);
    const signer = await h.ctx.keys.signer(rec2.kid);
    const forged = await signAnchor(
      { chainId: p.chainId!, seq: 2, logSize: p.logSize!, rootHash: p.rootHash!, prevAnchorHash: 'cd'.repeat(32), createdAt: p.createdAt },
      { key: signer.privateKey, kid: rec2.kid },
    );
    await h.ctx.db.query('UPDATE anchors SET jws = $1, prev_anchor_hash = $2 WHERE id = $3', [forged, 'cd'.repeat(32), rows[2].id]);
    v = await anchorVerifyAll(h.ctx);
    expect(v.firstBreak).toMatchObject({ seq: 2, reason: 'link' });
    expect(v.checked).toBe(2);
    await recoverAnchor(h.ctx, { id: rows[2].id, source: 'backup' });
    expect((await anchorVerifyAll(h.ctx)).ok).toBe(true);
  });

  it('new-chain after a log tamper starts a verifiable segment that records the old head', async () => {
    const old = await anchorRows();
    await h.ctx.db.query('UPDATE evidence_log SET leaf_hash = $1 WHERE seq = 7', [randomBytes(32)]);
    expect((await anchorVerifyAll(h.ctx)).ok).toBe(false);
    // anchoring refuses to sign over an altered row only for new rows; the old ones are the chain's problem
    const nc = await newChain(h.ctx, { reason: 'chain-break-recovery', actor: 'test' });
    expect(nc.oldHeadHash).toBe(old[old.length - 1].id);
    expect(nc.oldChainVerify.ok).toBe(false);
    expect(nc.anchor).toMatchObject({ seq: 0, logSize: 42, prevAnchorHash: null, chainId: nc.chainId });
    const chain = (await h.ctx.db.query('SELECT * FROM anchor_chains WHERE id = $1', [nc.chainId])).rows[0];
    expect(chain).toMatchObject({ reason: 'chain-break-recovery', prev_chain_head_hash: old[old.length - 1].id, status: 'active' });
    await ingest(3);
    const next = await createAnchor(h.ctx, {});
    expect(next.anchor).toMatchObject({ seq: 1, logSize: 45, chainId: nc.chainId });
    const v = await anchorVerifyAll(h.ctx);
    expect(v.ok).toBe(true);
    expect(v.breaks.every((b) => b.acknowledged)).toBe(true);
    expect(v.breaks[0]).toMatchObject({ chainId: old[0].chain_id, reason: 'root-mismatch' });
    expect(v.chains.map((c) => [c.status, c.ok])).toEqual([
      ['archived', false],
      ['active', true],
    ]);
    expect((await h.ctx.db.query(`SELECT count(*)::int AS n FROM anchors WHERE status = 'archived'`)).rows[0].n).toBe(old.length);
    // a later edit of the new chain's record is caught (chain id commits to its start)
    await h.ctx.db.query('UPDATE anchor_chains SET reason = $1 WHERE id = $2', ['routine', nc.chainId]);
    expect((await anchorVerifyAll(h.ctx)).firstBreak).toMatchObject({ reason: 'chain-id', chainId: nc.chainId });
    await h.ctx.db.query('UPDATE anchor_chains SET reason = $1 WHERE id = $2', ['chain-break-recovery', nc.chainId]);
    expect((await anchorVerifyAll(h.ctx)).ok).toBe(true);
    const m = await createMetrics(h.ctx.db).registry.metrics();
    expect(m).toMatch(/stella_merkle_anchor_chain_ok\{scope="all"\} 1/);
    expect(m).toMatch(/stella_merkle_anchor_age_seconds \d/);
    expect(m).toMatch(/stella_merkle_unanchored_leaves 0/);
  });

  it('API: list with links, inspect, verify, proof, export', async () => {
    const list = await app.inject({ method: 'GET', url: '/evidence/anchors?links=true', headers: await auth(['evidence:read']) });
    expect(list.statusCode).toBe(200);
    expect(list.json().anchors.length).toBeGreaterThanOrEqual(5);
    expect(list.json().anchors.every((a: { link: string }) => a.link === 'ok' || a.link === 'genesis')).toBe(true);
    const latest = list.json().anchors[0];
    const ins = await app.inject({ method: 'GET', url: `/evidence/anchors/${latest.id.slice(0, 12)}`, headers: await auth(['evidence:read']) });
    expect(ins.json()).toMatchObject({ signature: { ok: true }, link: { ok: true }, jwsHashMatchesId: true });
    const ver = await app.inject({ method: 'POST', url: '/evidence/anchors/verify', payload: { scope: 'all' }, headers: await auth(['evidence:read']) });
    expect(ver.json()).toMatchObject({ ok: true, scope: 'all' });
    const nc = await app.inject({ method: 'POST', url: '/evidence/anchors/new-chain', payload: { reason: 'x' }, headers: await auth(['evidence:read']) });
    expect(nc.statusCode).toBe(403);
    const item = (await h.ctx.db.query('SELECT item_id FROM evidence_log WHERE seq = 40')).rows[0].item_id;
    const pr = await app.inject({ method: 'GET', url: `/evidence/${item}/proof`, headers: await auth(['evidence:read']) });
    expect(pr.statusCode).toBe(200);
    expect(pr.json().inclusion).toMatchObject({ leafIndex: 40, treeSize: 45 });
    // Offline verification trusts the locker's RootPack, never the key inside the proof.
    const rootpack = await exportRootPack(h.ctx.keys);
    expect((await verifyOffline(pr.json(), { evidenceId: item, trust: { rootpack, fingerprint: 'test' } })).ok).toBe(true);
    const stranger = await exportRootPack(await openKeyStore(mkdtempSync(join(tmpdir(), 'stranger-keys-'))));
    const untrusted = await verifyOffline(pr.json(), { evidenceId: item, trust: { rootpack: stranger, fingerprint: 'stranger' } });
    expect(untrusted).toMatchObject({ ok: false, reason: 'key' });
    expect(untrusted.detail).toMatch(/does not list/);
    const notYet = (await ingest(1))[0]!;
    const pr2 = await app.inject({ method: 'GET', url: `/evidence/${notYet}/proof`, headers: await auth(['evidence:read']) });
    expect(pr2.statusCode).toBe(409);
    const other = await app.inject({ method: 'GET', url: `/evidence/${item}/proof?tenant=other`, headers: await auth(['admin']) });
    expect(other.statusCode).toBe(404);
    const ex = await app.inject({ method: 'GET', url: '/evidence/anchors/latest/export', headers: await auth(['evidence:read']) });
    expect(ex.json()).toMatchObject({ format: 'stella.anchor-export.v1', anchorHash: latest.id });
    // the archived chain was anchored before seq 7 was altered: no proof against it is handed out
    await expect(inclusionProofFor(h.ctx, 'default', item, (await anchorRows())[1].id)).rejects.toThrow(/does not verify against the anchored root/);
  });
});
