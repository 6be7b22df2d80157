/**
 * `stella evidence ingest` of hostile tars (a `..` path, a symlink out of the archive): the
 * workflow's failure reason reaches the API status and the CLI, which exits 2 (bad input), not
 * with "Activity task failed". Nothing is stored.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type CraftedEntry, craftTar } from './support/crafted-tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../src/lib/hash';
import { apiFor } from './support/api';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';

type Entry = CraftedEntry;
const tarOf = craftTar;

describe('stella evidence ingest of a hostile tar', () => {
  let h: Harness;
  let app: FastifyInstance;
  let env: Record<string, string>;
  const dir = mkdtempSync(join(tmpdir(), 'hostile-tar-'));

  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
    app = await apiFor(h);
    env = await cliEnvFor(h, app);
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  const cases: [string, Entry[], RegExp][] = [
    [
      'a .. path',
      [
        { header: { name: 'ok.json' }, body: '{}' },
        { header: { name: '../../etc/passwd' }, body: 'root:x:0:0' },
      ],
      /\.\.\/\.\.\/etc\/passwd/,
    ],
    ['a symlink out of the archive', [{ header: { name: 'link', type: 'symlink', linkname: '/etc/passwd' } }], /link/],
  ];

  for (const [what, entries, reason] of cases) {
    it(`${what}: the CLI prints the reason and exits 2; nothing stored`, async () => {
      const file = join(dir, `${randomBytes(4).toString('hex')}.tar`);
      writeFileSync(file, await tarOf(entries));
      const before = Number((await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items')).rows[0].n);
      const r = await runStella(env, 'evidence', 'ingest', file, '--artifact', sha256Digest(`hostile-${what}`), '--kind', 'sbom');
      expect(r.stderr).toMatch(reason);
      expect(r.stderr).not.toMatch(/Activity task failed/);
      expect(r.code).toBe(2);
      const after = Number((await h.ctx.db.query('SELECT count(*)::int AS n FROM evidence_items')).rows[0].n);
      expect(after).toBe(before);
    });
  }
});
