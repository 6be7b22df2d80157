import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { freePort } from '../src/dev/proc';
import { sha256Digest } from '../src/lib/hash';

/**
 * The README's first command, for real: `stella dev up` starts its own Temporal dev server,
 * its own PostgreSQL, the worker and the API; the CLI then works against it; `dev down` stops it.
 */
const BIN = join(__dirname, '..', 'bin', 'stella.mjs');
let env: NodeJS.ProcessEnv;

function stella(args: string[], extra: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...env, ...extra }, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('stella dev up (embedded default stack)', () => {
  afterAll(() => {
    if (env) stella(['dev', 'down']);
  });

  it('brings the stack up, serves the CLI, is safe to run twice, and dev down stops it', async () => {
    const dataDir = mkdtempSync(join(inject('scratch'), 'devstack-'));
    env = {
      ...process.env,
      STELLA_DATA_DIR: dataDir,
      STELLA_API_PORT: String(await freePort()),
      STELLA_DEV_TEMPORAL_PORT: String(await freePort()),
      STELLA_DEV_TEMPORAL_UI_PORT: String(await freePort()),
      STELLA_DEV_PG_PORT: String(await freePort()),
      STELLA_LOG_LEVEL: 'warn',
      STELLA_TOKEN: '',
      STELLA_API_URL: '',
    };
    delete env.DATABASE_URL;
    delete env.STELLA_TEMPORAL_ADDRESS;

    const up = stella(['dev', 'up', '--format', 'json']);
    expect(up.code, up.err).toBe(0);
    const info = JSON.parse(up.out);
    expect(info.status).toBe('started');
    expect(info.apiUrl).toBe(`http://127.0.0.1:${env.STELLA_API_PORT}`);
    expect(info.temporalUiUrl).toBe(`http://127.0.0.1:${env.STELLA_DEV_TEMPORAL_UI_PORT}`);
    expect(info.namespace).toBe('default');
    expect(info.token).toMatch(/^ey/);
    expect(existsSync(join(dataDir, 'temporal', 'temporal.db'))).toBe(true);

    const ready = await fetch(`${info.apiUrl}/readyz`);
    expect(ready.status).toBe(200);

    const artifact = sha256Digest('devstack-app');
    const file = join(dataDir, 'sbom.json');
    writeFileSync(file, '{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}');
    const put = stella(['evidence', 'put', file, '--artifact', artifact, '--kind', 'sbom', '--format', 'json']);
    expect(put.code, put.err).toBe(0);
    expect(JSON.parse(put.out).created).toBe(true);
    const list = stella(['evidence', 'list', '--artifact', artifact]);
    expect(list.code).toBe(0);
    expect(list.out).toContain('sbom');
    // The dev token is short-lived and DPoP-bound to this CLI's key, so replay:read routes work from the CLI.
    const claims = JSON.parse(Buffer.from(info.token.split('.')[1], 'base64url').toString('utf8'));
    expect(claims.exp - claims.iat).toBe(12 * 3600);
    expect(claims.cnf.jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const runs = stella(['replay-runs', 'list', '--format', 'json']);
    expect(runs.code, runs.err).toBe(0);
    expect(JSON.parse(runs.out)).toEqual({ runs: [] });
    const verify = stella(['evidence', 'verify', '--mode', 'full', '--format', 'json']);
    expect(verify.code, verify.err).toBe(0);
    expect(JSON.parse(verify.out)).toMatchObject({ status: 'passed', checked: 1, failed: 0 });

    // The runbook's offline check works as written: dev up configured the stack's own RootPack as trusted.
    expect(stella(['evidence', 'anchor', 'create']).code).toBe(0);
    const pack = join(dataDir, 'evidence-pack.tar.gz');
    const exported = stella(['evidence', 'export', '--digest', artifact, '--output', pack]);
    expect(exported.code, exported.err).toBe(0);
    const offline = stella(['evidence', 'verify', '--offline', '--input', pack, '--format', 'json']);
    expect(offline.code, offline.err).toBe(0);
    expect(JSON.parse(offline.out).trustedRootPack).toMatchObject({ path: join(dataDir, 'trusted-rootpack.json') });

    const again = stella(['dev', 'up', '--format', 'json']);
    expect(again.code, again.err).toBe(0);
    expect(JSON.parse(again.out).status).toBe('already running');

    const down = stella(['dev', 'down', '--format', 'json']);
    expect(down.code).toBe(0);
    expect(JSON.parse(down.out).stopped).toEqual(['worker+api', 'temporal', 'postgres']);
    await expect(fetch(`${info.apiUrl}/healthz`)).rejects.toThrow();
  }, 300_000);
});
