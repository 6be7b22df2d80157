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
import * as tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_PURPOSE } from '../src/core/keys';
import { mintToken } from '../src/crypto/tokens';
import { sha256Digest } from '../src/lib/hash';
import { apiFor } from './support/api';
import { runStella } from './support/cli';
import { harness, type Harness } from './support/context';

type Entry = { header: Partial<tarStream.Header> & { name: string }; body?: string };
/** tar-stream does no path policing: it writes what a hostile archive holds. */
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = tarStream.pack();
  const out = (async () => {
    const parts: Buffer[] = [];
    for await (const c of p) parts.push(c as Buffer);
    return Buffer.concat(parts);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      p.entry({ ...e.header, mtime: new Date(0) }, e.body ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  return out;
}

describe('stella evidence ingest of a hostile tar', () => {
  let h: Harness;
  let app: FastifyInstance;
  let env: Record<string, string>;
  const dir = mkdtempSync(join(tmpdir(), 'hostile-tar-'));

  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
    app = await apiFor(h);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const token = await mintToken(h.ctx.keys, { sub: 'cli-test', tenant: 'default', scopes: ['admin'], ttlSeconds: 600 }, { purpose: TOKEN_PURPOSE });
    env = { STELLA_API_URL: `http://127.0.0.1:${port}`, STELLA_TOKEN: token, STELLA_DATA_DIR: mkdtempSync(join(tmpdir(), 'cli-')), STELLA_TENANT: '' };
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
