import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURES } from '../src/app/features';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { harness, type Harness } from './support/context';
import { sha256Digest } from '../src/lib/hash';
import { openKeyStore, SIGNING_PURPOSE } from '../src/core/keys';
import { exportRootPack } from '../src/crypto/rootpack';
import { ensureSchedules } from '../src/temporal/schedules';
import { ANCHOR_SCHEDULE_ID } from '../src/core/anchoring/schedules';
import { exportAnchorById, inclusionProofFor } from '../src/core/anchoring';
import { anchorEvidence, type AnchorEvidenceInput } from '../workflows/anchoring';

let h: Harness;
const ART = sha256Digest('registry.example/app@anchor-schedule');
const ingest = (tag: string) =>
  h.ctx.evidence.ingest({
    tenant: 'default',
    data: Buffer.from(`{"t":"${tag}","r":"${randomBytes(6).toString('hex')}"}`),
    kind: 'attestation',
    mediaType: 'application/json',
    subjects: [ART],
  });

beforeAll(async () => {
  h = await harness({ blob: 'fs' });
});
afterAll(async () => {
  await h.client.schedule
    .getHandle(ANCHOR_SCHEDULE_ID)
    .delete()
    .catch(() => undefined);
  await h?.close();
});

describe('anchoring on Temporal', () => {
  it('anchorEvidence workflow anchors and verifies; a second run without new leaves skips', async () => {
    for (let i = 0; i < 9; i++) await ingest(`wf-${i}`);
    const run = (args: AnchorEvidenceInput) =>
      h.client.workflow.execute(anchorEvidence, {
        args: [args],
        taskQueue: h.ctx.cfg.temporal.taskQueue,
        workflowId: `anchor-${randomBytes(4).toString('hex')}`,
      });
    const r = await run({ reason: 'on demand', verify: true });
    expect(r).toMatchObject({ status: 'created', anchor: { seq: 0, logSize: 9 }, leavesRead: 9, verify: { ok: true, scope: 'latest' } });
    const again = await run({});
    expect(again.status).toBe('skipped');
    const forced = await run({ force: true });
    expect(forced).toMatchObject({ status: 'created', anchor: { seq: 1, logSize: 9, prevAnchorHash: r.anchor!.id } });
  });

  it('the stella-merkle-anchor schedule exists after ensureSchedules with a 6h interval, and a triggered run anchors', async () => {
    const ids = await ensureSchedules(h.client, h.ctx.cfg, FEATURES, [ANCHOR_SCHEDULE_ID]);
    expect(ids).toEqual([ANCHOR_SCHEDULE_ID]);
    const handle = h.client.schedule.getHandle(ANCHOR_SCHEDULE_ID);
    const d = await handle.describe();
    expect(d.spec.intervals?.[0]?.every).toBe(6 * 3600 * 1000);
    expect(d.policies.overlap).toBe('SKIP');
    expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'anchorEvidence', taskQueue: h.ctx.cfg.temporal.taskQueue });

    await ingest('scheduled');
    const before = (await h.ctx.db.query('SELECT count(*)::int AS n FROM anchors')).rows[0].n;
    await handle.trigger();
    let row: Record<string, any> | undefined;
    for (let i = 0; i < 120 && !row; i++) {
      row = (await h.ctx.db.query(`SELECT * FROM anchors WHERE reason = 'scheduled'`)).rows[0];
      if (!row) await new Promise((r) => setTimeout(r, 250));
    }
    expect(row).toBeDefined();
    expect(Number(row!.log_size)).toBe(10);
    expect((await h.ctx.db.query('SELECT count(*)::int AS n FROM anchors')).rows[0].n).toBe(before + 1);
  });

  it('offline: exported anchor and inclusion proof verify in a separate process with no database, API or Temporal', async () => {
    const item = (await h.ctx.db.query('SELECT item_id FROM evidence_log WHERE seq = 4')).rows[0].item_id as string;
    const dir = mkdtempSync(join(tmpdir(), 'anchor-offline-'));
    const proof = await inclusionProofFor(h.ctx, 'default', item);
    writeFileSync(join(dir, 'proof.json'), JSON.stringify(proof));
    writeFileSync(join(dir, 'anchor.json'), JSON.stringify(await exportAnchorById(h.ctx, 'latest')));
    const rec = await h.ctx.keys.active(SIGNING_PURPOSE);
    writeFileSync(join(dir, 'key.json'), JSON.stringify(rec.publicJwk));
    const other = await h.ctx.keys.active('api-token');
    writeFileSync(join(dir, 'wrong-key.json'), JSON.stringify(other.publicJwk));
    const tampered = JSON.parse(readFileSync(join(dir, 'proof.json'), 'utf8'));
    tampered.inclusion.proof[0] = 'ff'.repeat(32);
    writeFileSync(join(dir, 'tampered.json'), JSON.stringify(tampered));

    // No DATABASE_URL, no Temporal, an API URL nothing listens on, an empty data dir.
    const env = { PATH: process.env.PATH!, HOME: dir, STELLA_DATA_DIR: join(dir, 'empty'), STELLA_API_URL: 'http://127.0.0.1:9' };
    const stella = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/stella.mjs', ...args], { cwd: process.cwd(), env, encoding: 'utf8', timeout: 60_000 });

    const ok = stella('evidence', 'proof', 'verify', join(dir, 'proof.json'), '--key', join(dir, 'key.json'), '--evidence-id', item);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/VERIFIED \(offline\)/);
    expect(ok.stdout).toContain(item);

    const bad = stella('evidence', 'proof', 'verify', join(dir, 'tampered.json'), '--key', join(dir, 'key.json'), '--format', 'json');
    expect(bad.status).toBe(4);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, reason: 'inclusion' });

    const exp = stella('evidence', 'anchor', 'verify-export', join(dir, 'anchor.json'), '--key', join(dir, 'key.json'));
    expect(exp.status).toBe(0);
    const wrongKey = stella('evidence', 'anchor', 'verify-export', join(dir, 'anchor.json'), '--key', join(dir, 'wrong-key.json'));
    expect(wrongKey.status).toBe(4);
    expect(wrongKey.stdout).toMatch(/FAILED \(key\)/);
    const wrongItem = stella(
      'evidence',
      'anchor',
      'verify-export',
      join(dir, 'proof.json'),
      '--key',
      join(dir, 'key.json'),
      '--evidence-id',
      sha256Digest('not-this-one'),
    );
    expect(wrongItem.status).toBe(4);

    // The key inside the file is never trusted: with no --key, --rootpack or configured RootPack it refuses.
    const untrusted = stella('evidence', 'anchor', 'verify-export', join(dir, 'anchor.json'));
    expect(untrusted.status).toBe(2);
    expect(untrusted.stderr).toMatch(/no trusted key/);
    // A trusted RootPack (the locker's own, exported out of band) pins the anchor key by kid.
    writeFileSync(join(dir, 'rootpack.json'), JSON.stringify(await exportRootPack(h.ctx.keys)));
    const viaRootPack = stella('evidence', 'proof', 'verify', join(dir, 'proof.json'), '--rootpack', join(dir, 'rootpack.json'), '--evidence-id', item);
    expect(viaRootPack.status, viaRootPack.stderr).toBe(0);
    expect(viaRootPack.stdout).toMatch(/listed in the trusted RootPack/);
    const viaConfig = spawnSync(process.execPath, ['bin/stella.mjs', 'evidence', 'anchor', 'verify-export', join(dir, 'anchor.json')], {
      cwd: process.cwd(),
      env: { ...env, STELLA_TRUSTED_ROOTPACK: join(dir, 'rootpack.json') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(viaConfig.status, viaConfig.stderr).toBe(0);
    // A RootPack that does not list the anchor's key: integrity failure, naming the key.
    writeFileSync(join(dir, 'stranger.json'), JSON.stringify(await exportRootPack(await openKeyStore(join(dir, 'stranger-keys')))));
    const stranger = stella('evidence', 'anchor', 'verify-export', join(dir, 'anchor.json'), '--rootpack', join(dir, 'stranger.json'));
    expect(stranger.status).toBe(4);
    expect(stranger.stdout).toMatch(/FAILED \(key\).*does not list/);
  });
});
