import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { apiFor } from './support/api';
import { cliEnvFor, runStella, type CliRun } from './support/cli';
import { harness, type Harness } from './support/context';
import { sha256Digest } from '../src/lib/hash';
import { createAnchor } from '../src/core/anchoring';

// docs/runbooks/dr-drill.md, run as written: its `# live` commands against one locker, its
// `# drill` commands against a second one (new database, new store), then the comparison.

const RUNBOOK = readFileSync(join(import.meta.dirname, '..', 'docs', 'runbooks', 'dr-drill.md'), 'utf8');

/** The drill's commands from §1 on, each with the stack it runs against. */
function drillCommands(): { on: 'live' | 'drill'; args: string[] }[] {
  const out: { on: 'live' | 'drill'; args: string[] }[] = [];
  const body = RUNBOOK.slice(RUNBOOK.indexOf('## 1.'));
  for (const block of body.matchAll(/```bash\n([\s\S]*?)```/g)) {
    let on: 'live' | 'drill' = 'live';
    for (const line of block[1]!.split('\n')) {
      if (/^# (live|drill)\b/.test(line)) on = line.startsWith('# live') ? 'live' : 'drill';
      else if (line.startsWith('stella '))
        out.push({
          on,
          args: line
            .replace(/\s+#.*$/, '')
            .split(/\s+/)
            .slice(1),
        });
    }
  }
  return out;
}

describe('DR drill runbook: restore into a second locker, verify, compare', () => {
  let live: Harness;
  let drill: Harness;
  let liveApp: FastifyInstance;
  let drillApp: FastifyInstance;
  let liveEnv: Record<string, string>;
  let drillEnv: Record<string, string>;

  beforeAll(async () => {
    live = await harness({ blob: 'fs', replica: true });
    drill = await harness({ blob: 'fs' });
    liveApp = await apiFor(live);
    drillApp = await apiFor(drill);
    liveEnv = await cliEnvFor(live, liveApp, 'drill-operator');
    drillEnv = await cliEnvFor(drill, drillApp, 'drill-operator');
  }, 300_000);
  afterAll(async () => {
    await liveApp?.close();
    await drillApp?.close();
    await live?.close();
    await drill?.close();
  });

  it('every command of the drill works as written; the drill locker equals the live one; a restore into the live locker refuses and names the drill', async () => {
    const artifact = sha256Digest(`drill-${randomBytes(4).toString('hex')}`);
    for (let i = 0; i < 5; i++)
      await live.ctx.evidence.ingest({
        tenant: 'default',
        data: Buffer.from(`{"drill":${i},"n":"${randomBytes(6).toString('hex')}"}`),
        kind: 'scan-report',
        mediaType: 'application/json',
        subjects: [artifact],
      });
    await createAnchor(live.ctx, { force: true } as never);

    const vars: Record<string, string> = { $DRILL: mkdtempSync(join(live.ctx.cfg.dataDir, 'drill-')) };
    const statuses: Record<'live' | 'drill', Record<string, unknown>> = { live: {}, drill: {} };
    const commands = drillCommands();
    expect(commands.length).toBeGreaterThanOrEqual(6);
    for (const c of commands) {
      const args = c.args.map((a) => Object.entries(vars).reduce((s, [k, v]) => s.split(k).join(v), a));
      const r: CliRun = await runStella(c.on === 'live' ? liveEnv : drillEnv, ...args);
      expect(r.code, `${c.on}: stella ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
      if (args[0] === 'backup' && args[1] === 'create') vars.$BACKUP_ID = JSON.parse(r.stdout).id;
      if (args.join(' ') === 'evidence status --format json') statuses[c.on] = JSON.parse(r.stdout);
    }
    // §4: the same items, log size and root.
    const pick = (s: Record<string, any>) => ({ items: s.items, log: s.log?.size, root: s.latestAnchor?.rootHash });
    expect(pick(statuses.drill)).toEqual(pick(statuses.live));
    expect(pick(statuses.live).items).toBe(5);

    // A full restore into the live (non-empty) locker refuses with the reason and the safe way.
    const before = (await live.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items')).rows[0].n;
    const refused = await runStella(liveEnv, 'evidence', 'restore', '--backup-id', vars.$BACKUP_ID!, '--backup-dir', join(vars.$DRILL!, 'backups'));
    expect(refused.code, refused.stderr).not.toBe(0);
    expect(refused.stderr).toMatch(/already holds 5 evidence items.*never overwrites a live locker.*docs\/runbooks\/dr-drill\.md/);
    expect((await live.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items')).rows[0].n).toBe(before);
  }, 600_000);
});
