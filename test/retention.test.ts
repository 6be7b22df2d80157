import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { harness, type Harness } from './support/context';
import { sha256Digest } from '../src/lib/hash';
import {
  applyDeclaration,
  declarationChecksum,
  checkDeclaration,
  DECLARATION_PAYLOAD_TYPE,
  effectivePolicies,
  setTiers,
  type RetentionDeclaration,
} from '../src/core/retention/policy';
import { createHold, releaseHold } from '../src/core/retention/holds';
import { streamArchive, verifyArchiveFile, archivePlan } from '../src/core/retention/archive';
import { signEnvelope } from '../src/crypto/dsse';
import { StellaError } from '../src/lib/errors';

let h: Harness;
const T = 'default';
const art = (n: number) => sha256Digest(`artifact-${n}`);

async function put(kind: string, subject: string, ageDays: number, body = randomBytes(64)): Promise<string> {
  const r = await h.ctx.evidence.ingest({ tenant: T, data: body, kind: kind as never, mediaType: 'application/octet-stream', subjects: [subject] });
  await h.ctx.db.query(`UPDATE evidence_items SET created_at = now() - make_interval(days => $3) WHERE tenant_id=$1 AND id=$2`, [T, r.id, ageDays]);
  return r.id;
}

function decl(over: Partial<RetentionDeclaration> = {}): RetentionDeclaration {
  const d = {
    retention_policy_id: 'pol-sbom-30',
    tenant_id: T,
    bundle_type: 'sbom',
    retention_days: 30,
    legal_hold: false,
    purge_after: null,
    created_at: '2026-01-01T00:00:00Z',
    ...over,
  } as Omit<RetentionDeclaration, 'checksum'>;
  return { ...d, checksum: declarationChecksum(d) } as RetentionDeclaration;
}

async function snapshot() {
  const q = async (sql: string) => (await h.ctx.db.query(sql)).rows;
  return {
    items: await q(`SELECT tenant_id, id, state, tier, state_reason FROM evidence_items ORDER BY tenant_id, id`),
    audit: await q(`SELECT count(*)::int AS n FROM audit_log`),
    log: await q(`SELECT seq, leaf_hash FROM evidence_log ORDER BY seq`),
  };
}

async function runPurge(args: Record<string, unknown>) {
  return h.client.workflow.execute('retentionPurge', {
    taskQueue: h.ctx.cfg.temporal.taskQueue,
    workflowId: `purge-${randomBytes(4).toString('hex')}`,
    args: [{ tenant: T, actor: 'test-operator', ...args }],
  }) as Promise<any>;
}

beforeAll(async () => {
  h = await harness({ blob: 'fs' });
});
afterAll(async () => h?.close());

describe('retention declarations', () => {
  it('applies a valid declaration as a new version, and the same content again is a no-op', async () => {
    const a = await applyDeclaration(h.ctx, { tenant: T, input: decl(), actor: 'op' });
    expect(a).toMatchObject({ version: 1, changed: true });
    expect((await applyDeclaration(h.ctx, { tenant: T, input: decl(), actor: 'op' })).changed).toBe(false);
    const eff = await effectivePolicies(h.ctx.db, T);
    expect(eff.policies.find((p) => p.bundleType === 'sbom')).toMatchObject({ policyId: 'pol-sbom-30', retentionDays: 30, source: 'declaration', version: 1 });
    expect(eff.policies.find((p) => p.bundleType === 'vex')).toMatchObject({ policyId: 'default', retentionDays: 730, source: 'default' });
    expect(eff.tiers).toMatchObject({ hotDays: 180, coldDays: 730 });
  });

  it('refuses a declaration whose checksum does not match its content', async () => {
    const bad = { ...decl(), retention_days: 1 }; // edited after checksumming
    await expect(applyDeclaration(h.ctx, { tenant: T, input: bad, actor: 'op' })).rejects.toMatchObject({
      code: 'INTEGRITY',
      message: expect.stringContaining('checksum mismatch'),
    });
    const n = await h.ctx.db.query(`SELECT count(*)::int AS n FROM retention_policies WHERE retention_days = 1`);
    expect(n.rows[0].n).toBe(0);
  });

  it('validates against the shipped JSON Schema', () => {
    expect(() => checkDeclaration({ ...decl(), extra: 1 })).toThrow(/schema/);
    expect(() => checkDeclaration({ ...decl(), bundle_type: 'photos' })).toThrow(StellaError);
    const noDays = { ...decl() } as Partial<RetentionDeclaration>;
    delete noDays.retention_days;
    expect(() => checkDeclaration(noDays)).toThrow(/retention_days/);
  });

  it('verifies a DSSE-wrapped declaration against the RootPack and refuses a tampered one', async () => {
    const signer = await h.ctx.keys.signer((await h.ctx.keys.active('signing')).kid);
    const d = decl({ retention_policy_id: 'pol-vex-90', bundle_type: 'vex', retention_days: 90 });
    const env = await signEnvelope(DECLARATION_PAYLOAD_TYPE, Buffer.from(JSON.stringify(d)), [signer]);
    const r = await applyDeclaration(h.ctx, { tenant: T, input: env, actor: 'op' });
    expect(r).toMatchObject({ changed: true, signedBy: signer.keyid });
    const tampered = { ...env, payload: Buffer.from(JSON.stringify({ ...d, retention_days: 1 })).toString('base64') };
    await expect(applyDeclaration(h.ctx, { tenant: T, input: tampered, actor: 'op' })).rejects.toMatchObject({ code: 'INTEGRITY' });
  });
});

describe('purge workflow', () => {
  it('dry run reports exactly what would go and changes nothing; the purge then skips held evidence and keeps Merkle leaves', async () => {
    // sbom policy: 30 days (applied above). Items: 2 expired sboms (one held), 1 fresh sbom, 1 expired for an open promotion.
    const expired = await put('sbom', art(1), 40);
    const heldItem = await put('sbom', art(2), 40);
    const fresh = await put('sbom', art(3), 5);
    const promoItem = await put('sbom', art(4), 40);
    const heldByArtifact = await put('sbom', art(5), 40);
    const hold = await createHold(h.ctx, {
      tenant: T,
      scope: 'items',
      values: [heldItem],
      reason: 'INC-42 investigation',
      incidentTicket: 'INC-42',
      actor: 'op',
    });
    await createHold(h.ctx, { tenant: T, scope: 'artifact', values: [art(5)], reason: 'customer dispute', actor: 'op' });
    await h.ctx.db.query(
      `INSERT INTO promotions (tenant_id, id, workflow_id, artifact_digest, from_env, to_env, state, requested_by) VALUES ($1,'p1','wf-p1',$2,'dev','prod','waiting-approval','op')`,
      [T, art(4)],
    );

    const before = await snapshot();
    const dry = await runPurge({ dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, status: 'succeeded', items: 1, bytes: 64, bytesFreed: 64, skippedHeld: 2, skippedPromotion: 1 });
    const planned = await h.ctx.db.query(`SELECT item_id, policy_id FROM retention_run_items WHERE run_id=$1`, [dry.runId]);
    expect(planned.rows).toEqual([{ item_id: expired, policy_id: 'pol-sbom-30' }]);
    expect(await snapshot()).toEqual(before); // nothing changed: index, audit log, Merkle log
    expect(await h.ctx.blobs.primary.stat(expired)).not.toBeNull();

    const res = await runPurge({ reason: 'SP-004 monthly cleanup' });
    expect(res).toMatchObject({ dryRun: false, items: 1, bytesFreed: 64, skippedHeld: 2, skippedPromotion: 1, pendingBlobs: 0 });
    const state = async (id: string) => (await h.ctx.db.query(`SELECT state FROM evidence_items WHERE tenant_id=$1 AND id=$2`, [T, id])).rows[0].state;
    expect(await state(expired)).toBe('purged');
    for (const id of [heldItem, fresh, promoItem, heldByArtifact]) expect(await state(id)).toBe('present');
    expect(await h.ctx.blobs.primary.stat(expired)).toBeNull();
    expect(await h.ctx.blobs.primary.stat(heldItem)).not.toBeNull();
    expect((await h.ctx.evidence.read(T, heldItem)).length).toBe(64);
    // Merkle leaf kept, exactly one audit entry naming who, why, digest and policy.
    const after = await snapshot();
    expect(after.log).toEqual(before.log);
    const a = await h.ctx.db.query(`SELECT actor, reason, details FROM audit_log WHERE action='evidence.purged' AND target=$1`, [expired]);
    expect(a.rows).toHaveLength(1);
    expect(a.rows[0]).toMatchObject({
      actor: 'test-operator',
      reason: expect.stringContaining('SP-004 monthly cleanup'),
      details: { digest: expired, policyId: 'pol-sbom-30', runId: res.runId },
    });

    // Release the hold: the next purge takes the item (and the release is audited + on the timeline).
    await releaseHold(h.ctx, { tenant: T, id: hold.id, actor: 'op', reason: 'INC-42 closed' });
    const ev = await h.ctx.db.query(`SELECT type FROM timeline_events WHERE subject=$1 ORDER BY id`, [hold.id]);
    expect(ev.rows.map((x) => x.type)).toEqual(['replay.hold.created', 'replay.hold.released']);
    const again = await runPurge({});
    expect(again.items).toBe(1);
    expect(await state(heldItem)).toBe('purged');
    expect(await state(heldByArtifact)).toBe('present');
  });

  it('aggressive mode purges past hot retention, and a policy-level legal hold still protects', async () => {
    await applyDeclaration(h.ctx, {
      tenant: T,
      input: decl({ retention_policy_id: 'pol-log-hold', bundle_type: 'log', retention_days: 1, legal_hold: true }),
      actor: 'op',
    });
    const oldAttestation = await put('attestation', art(10), 200); // default 730 days; hot 180
    const oldLog = await put('log', art(11), 400);
    const normal = await runPurge({ dryRun: true });
    const planned = (await h.ctx.db.query(`SELECT item_id FROM retention_run_items WHERE run_id=$1`, [normal.runId])).rows.map((x) => x.item_id);
    expect(planned).not.toContain(oldAttestation);
    const aggr = await runPurge({ aggressive: true });
    const purged = (await h.ctx.db.query(`SELECT item_id, reason FROM retention_run_items WHERE run_id=$1`, [aggr.runId])).rows;
    expect(purged.map((x) => x.item_id)).toContain(oldAttestation);
    expect(purged.find((x) => x.item_id === oldAttestation)!.reason).toMatch(/hot retention of 180 days/);
    expect(purged.map((x) => x.item_id)).not.toContain(oldLog);
  });

  it('does not delete a blob another tenant still references', async () => {
    const body = randomBytes(80);
    const id = sha256Digest(body);
    await h.ctx.db.query(`INSERT INTO tenants (id) VALUES ('other') ON CONFLICT DO NOTHING`);
    await h.ctx.evidence.ingest({ tenant: 'other', data: body, kind: 'vex', mediaType: 'application/json', subjects: [art(20)] });
    await put('vex', art(20), 100, body); // vex policy in default tenant: 90 days
    const r = await runPurge({});
    expect(r.items).toBeGreaterThanOrEqual(1);
    const row = await h.ctx.db.query(`SELECT blob_shared FROM retention_run_items WHERE run_id=$1 AND item_id=$2`, [r.runId, id]);
    expect(row.rows[0].blob_shared).toBe(true);
    expect((await h.ctx.evidence.read('other', id)).equals(body)).toBe(true);
  });
});

describe('tiers', () => {
  it('moves items past hot retention to the cold namespace (verified), keeps them readable, audits each move', async () => {
    await setTiers(h.ctx.db, T, { hotDays: 60 }, 'op');
    const id = await put('attestation', art(30), 70);
    const young = await put('attestation', art(31), 10);
    const r = (await h.client.workflow.execute('retentionTierMove', {
      taskQueue: h.ctx.cfg.temporal.taskQueue,
      workflowId: `tier-${randomBytes(4).toString('hex')}`,
      args: [{ tenant: T, actor: 'op' }],
    })) as any;
    expect(r.items).toBeGreaterThanOrEqual(1);
    expect(r.failed).toBe(0);
    const cold = h.ctx.blobs.primary.withPrefix('cold');
    expect((await cold.hash(id))?.actual).toBe(id);
    expect(await h.ctx.blobs.primary.stat(id)).toBeNull();
    expect((await h.ctx.evidence.get(T, id)).tier).toBe('cold');
    expect((await h.ctx.evidence.get(T, young)).tier).toBe('hot');
    expect(sha256Digest(await h.ctx.evidence.read(T, id))).toBe(id);
    const a = await h.ctx.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE action='evidence.tier.cold' AND target=$1`, [id]);
    expect(a.rows[0].n).toBe(1);
    await setTiers(h.ctx.db, T, { hotDays: 180 }, 'op');
  });
});

describe('archive', () => {
  it('round-trips: the streamed archive verifies offline; a one-byte change fails naming the item', async () => {
    const ids = [await put('sbom', art(40), 20), await put('scan-report', art(41), 20)];
    const plan = await archivePlan(h.ctx, T, 15, true);
    expect(plan.items).toBeGreaterThanOrEqual(2);
    const file = join(inject('scratch'), `archive-${randomBytes(4).toString('hex')}.tar`);
    const w = streamArchive(h.ctx, { tenant: T, olderThanDays: 15, includeReplay: true, skippedReplayBundles: 0 });
    await pipeline(w.readable, createWriteStream(file));
    const ok = await verifyArchiveFile(file);
    expect(ok).toMatchObject({ ok: true, kind: 'evidence-archive', items: plan.items, problems: [] });

    // Flip one byte inside the body of the first item (bodies follow their 512-byte header).
    const buf = await fsp.readFile(file);
    const target = ids.sort()[0]!;
    const at = buf.indexOf(Buffer.from(`items/sha256/${target.slice(7)}`));
    expect(at).toBeGreaterThanOrEqual(0);
    const body = await h.ctx.evidence.read(T, target);
    const pos = buf.indexOf(body, at);
    buf[pos + 3] ^= 0xff;
    await fsp.writeFile(file, buf);
    const bad = await verifyArchiveFile(file);
    expect(bad.ok).toBe(false);
    expect(bad.problems).toEqual([expect.objectContaining({ item: target, reason: 'digest-mismatch' })]);
  });
});
