import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { apiFor } from './support/api';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { sha256Digest } from '../src/lib/hash';
import { feedFromRecords, matchPackages } from '../src/scanner/osv';
import type { Package } from '../src/scanner/detectors/types';
import { recordReplay } from '../src/core/replay/record';
import { getRun, verifyRun } from '../src/core/replay/runs';
import { replayArea } from '../src/core/replay/queries/evidence';
import { createMetrics } from '../src/app/metrics';
import { replayVerifyNightly } from '../workflows/replay';
import { createAnchor } from '../src/core/anchoring';

// Issue 18 items 1-3 through the real CLI: replay copies are verified and repaired, the corruption
// lifecycle (acknowledge → repaired / tombstoned), and commands that say what is true.

const ARTIFACT = sha256Digest(`lifecycle-${randomBytes(4).toString('hex')}`);
const packages: Package[] = [{ ecosystem: 'npm', name: 'lodash', version: '4.17.20', purl: 'pkg:npm/lodash@4.17.20', locations: ['/app/package-lock.json'] }];
const records = [
  {
    id: 'GHSA-35jh-r3h4-6jhm',
    modified: '2021-05-20T00:00:00Z',
    summary: 'Command injection in lodash',
    database_specific: { severity: 'HIGH' },
    affected: [{ package: { ecosystem: 'npm', name: 'lodash' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '4.17.21' }] }] }],
  },
];

describe('integrity without blind spots: replay copies, corruption lifecycle, truthful commands', () => {
  let h: Harness;
  let app: FastifyInstance;
  let env: Record<string, string>;
  const run = (...args: string[]) => runStella(env, ...args);
  const fullVerify = () => run('evidence', 'verify', '--mode', 'full');

  beforeAll(async () => {
    h = await harness({ blob: 'fs', replica: true });
    app = await apiFor(h);
    env = await cliEnvFor(h, app);
  }, 300_000);
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('a corrupt replay copy: explain says corrupt (or missing), full verify names it, recover restores it, nightly replay passes', async () => {
    const feed = feedFromRecords(records);
    await recordReplay(h.ctx, {
      tenant: 'default',
      scanId: 'scan-lifecycle',
      artifactDigest: ARTIFACT,
      packages,
      feed,
      sbom: { bomFormat: 'CycloneDX', specVersion: '1.6' },
      findings: matchPackages(packages, feed),
      createdAt: new Date().toISOString(),
    });
    expect((await fullVerify()).code).toBe(0);
    const r = await getRun(h.ctx, 'default', 'scan-lifecycle');
    const area = replayArea(h.ctx);
    await area.writeRaw(r.outputDigest, Buffer.from('rotten'));
    await area.delete(r.inputDigest);

    // What `stella verify <scan-id> --explain` prints (its route needs replay scopes with DPoP: test/replay.test.ts).
    const explain = await verifyRun(h.ctx, 'default', 'scan-lifecycle', 'test');
    expect(explain.ok).toBe(false);
    const details = explain.problems.map((p) => p.detail).join('\n');
    expect(details).toMatch(/outputbundle\.tar\.zst is corrupt in the replay store/);
    expect(details).toMatch(/inputbundle\.tar\.zst is missing from the replay store/);

    const failed = await fullVerify();
    expect(failed.code, failed.stdout + failed.stderr).toBe(4);
    const report = await run('evidence', 'verify-report', '--latest', '--filter', 'failed');
    expect(report.code).toBe(4);
    expect(report.stdout).toContain(`replay/${r.outputDigest}`);
    expect(report.stdout).toMatch(new RegExp(`replay/${r.outputDigest}\\s+replay-copy-mismatch`));
    expect(report.stdout).toMatch(new RegExp(`replay/${r.inputDigest}\\s+replay-copy-missing`));

    for (const d of [r.outputDigest, r.inputDigest]) {
      const rec = await run('evidence', 'recover', '--id', `replay/${d}`);
      expect(rec.code, rec.stderr).toBe(0);
      expect(rec.stdout).toMatch(/^recovered: replay\/sha256:/);
    }
    expect((await fullVerify()).code).toBe(0);
    expect((await verifyRun(h.ctx, 'default', 'scan-lifecycle', 'test')).ok).toBe(true);
    const nightly = await h.client.workflow.execute(replayVerifyNightly, {
      args: [{ latestN: 5, concurrency: 1 }],
      taskQueue: h.ctx.cfg.temporal.taskQueue,
      workflowId: `nightly-lifecycle-${Date.now()}`,
    });
    expect(nightly.failed, JSON.stringify(nightly)).toHaveLength(0);
  }, 300_000);

  it('exists checks the blob (stat by default, --deep re-hashes); an acknowledged failure stops failing runs and the alert but stays listed; index refresh clears the flag after a manual repair', async () => {
    const data = Buffer.from(`{"scan":"${randomBytes(8).toString('hex')}"}`);
    const item = await h.ctx.evidence.ingest({ tenant: 'default', data, kind: 'scan-report', mediaType: 'application/json', subjects: [ARTIFACT] });
    const bad = Buffer.from(data);
    bad[3] = bad[3]! ^ 0x20;
    await h.ctx.blobs.primary.writeRaw(item.id, bad);

    const shallow = await run('evidence', 'exists', item.id);
    expect(shallow.code).toBe(0);
    expect(shallow.stdout).toMatch(/--deep re-hashes it/);
    const deep = await run('evidence', 'exists', item.id, '--deep');
    expect(deep.code).toBe(4);
    expect(deep.stdout).toMatch(/blob hash-mismatch/);

    expect((await fullVerify()).code).toBe(4);
    const ack = await run('evidence', 'mark-corrupted', '--id', item.id, '--reason', 'INC-42 waiting for the backup');
    expect(ack.code, ack.stderr).toBe(0);

    const again = await fullVerify();
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).toMatch(/0 failed, 1 acknowledged/);
    const report = await run('evidence', 'verify-report', '--latest', '--filter', 'failed');
    expect(report.code).toBe(0);
    expect(report.stdout).toMatch(new RegExp(`${item.id}\\s+hash-mismatch\\s+api:cli-test: INC-42`));
    const status = await run('evidence', 'status', '--format', 'json');
    expect(JSON.parse(status.stdout).acknowledged.items).toEqual([expect.objectContaining({ id: item.id, reason: 'INC-42 waiting for the backup' })]);
    const metrics = await createMetrics(h.ctx.db).registry.metrics();
    expect(metrics).not.toMatch(/stella_evidence_verify_results\{result="hash-mismatch"/);
    expect(metrics).toMatch(/stella_evidence_verify_acknowledged 1/);
    const audit = await h.ctx.db.query(`SELECT actor FROM audit_log WHERE action='evidence.integrity.acknowledged' AND target=$1`, [item.id]);
    expect(audit.rows[0]).toMatchObject({ actor: 'api:cli-test' });

    // An unknown id cannot be acknowledged; nothing stored.
    const unknown = await run('evidence', 'acknowledge', '--id', sha256Digest('never failed'), '--reason', 'x');
    expect(unknown.code).toBe(3);

    // Manual repair, then index refresh re-checks and clears the hash-mismatch flag.
    await h.ctx.blobs.primary.writeRaw(item.id, data);
    const refresh = await run('evidence', 'index', 'refresh', '--format', 'json');
    expect(refresh.code, refresh.stderr).toBe(0);
    expect(JSON.parse(refresh.stdout).changes).toContainEqual(expect.objectContaining({ id: item.id, to: 'present' }));
    const list = await run('evidence', 'acknowledge', '--list', '--format', 'json');
    expect(JSON.parse(list.stdout).acknowledgements).toContainEqual(expect.objectContaining({ id: item.id, resolution: 'repaired' }));
    expect((await run('evidence', 'exists', item.id, '--deep')).code).toBe(0);
  }, 300_000);

  it('an unrecoverable item is tombstoned: later runs skip it, the audit says who and why', async () => {
    const data = Buffer.from(`{"vex":"${randomBytes(8).toString('hex')}"}`);
    const item = await h.ctx.evidence.ingest({ tenant: 'default', data, kind: 'vex', mediaType: 'application/json', subjects: [ARTIFACT] });
    await h.ctx.blobs.primary.delete(item.id);
    expect((await run('evidence', 'exists', item.id)).code).toBe(4);
    expect((await fullVerify()).code).toBe(4);
    const t = await run('evidence', 'tombstone', '--id', item.id, '--reason', 'no copy anywhere (INC-43)');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^tombstoned: /);
    expect((await fullVerify()).code).toBe(0);
    expect((await run('evidence', 'exists', item.id)).code).toBe(3);
    const audit = await h.ctx.db.query(`SELECT reason FROM audit_log WHERE action='evidence.tombstoned' AND target=$1`, [item.id]);
    expect(audit.rows[0]).toMatchObject({ reason: 'no copy anywhere (INC-43)' });
  }, 300_000);

  it('anchor recover says "intact, nothing to do" for an intact anchor; anchor list --show-links marks the first break', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      await h.ctx.evidence.ingest({
        tenant: 'default',
        data: Buffer.from(`{"log":"${randomBytes(8).toString('hex')}"}`),
        kind: 'log',
        mediaType: 'application/json',
        subjects: [ARTIFACT],
      });
      ids.push((await createAnchor(h.ctx, { force: true } as never)).anchor!.id);
    }
    const intact = await run('evidence', 'anchor', 'recover', '--id', ids[1]!);
    expect(intact.code, intact.stderr).toBe(0);
    expect(intact.stdout).toMatch(/is intact .* nothing to do/);
    const audits = async () => (await h.ctx.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE action='evidence.anchor.recover'`)).rows[0].n;
    expect(await audits()).toBe(0);

    const clean = await run('evidence', 'anchor', 'list', '--show-links');
    expect(clean.stdout).toContain('links: no break among the anchors listed');
    // Two broken links: the older one is the first break.
    await h.ctx.db.query('UPDATE anchors SET prev_anchor_hash = $1 WHERE id = ANY($2)', ['cd'.repeat(32), [ids[1], ids[2]]]);
    const broken = await run('evidence', 'anchor', 'list', '--show-links');
    expect(broken.stdout).toMatch(new RegExp(`first break: anchor ${ids[1]!.slice(0, 12)}`));
    expect(broken.stdout.match(/>> FIRST BREAK/g)).toHaveLength(1);

    const restored = await run('evidence', 'anchor', 'recover', '--id', ids[1]!);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/^restored anchor /);
    expect(await audits()).toBe(1);
  }, 300_000);
});
