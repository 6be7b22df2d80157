import { apiFor } from './support/api';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { sha256Digest } from '../src/lib/hash';

const stella = runStella;

describe('stella evidence CLI against a live API', () => {
  let h: Harness;
  let app: FastifyInstance;
  let env: Record<string, string>;
  const ARTIFACT = sha256Digest(`cli-${randomBytes(4).toString('hex')}`);
  const run = (...args: string[]) => stella(env, ...args);

  beforeAll(async () => {
    h = await harness({ blob: 'fs', replica: true });
    app = await apiFor(h);
    env = await cliEnvFor(h, app);
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('put, status, chain, exists: tables, --format json and exit codes', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ev-')), 'sbom.json');
    writeFileSync(file, `{"bomFormat":"CycloneDX","n":"${randomBytes(4).toString('hex')}"}`);
    const put = await run('evidence', 'put', file, '--artifact', ARTIFACT, '--kind', 'sbom', '--format', 'json');
    expect(put.code).toBe(0);
    const id = JSON.parse(put.stdout).id as string;
    expect(id).toBe(sha256Digest(Buffer.from(`${(await import('node:fs')).readFileSync(file)}`)));

    const status = await run('evidence', 'status');
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/Items\s+\d+/);
    expect(status.stdout).toMatch(/Replica\s+fs .* healthy/);

    const chain = await run('evidence', 'chain', '--artifact', ARTIFACT);
    expect(chain.code).toBe(4);
    expect(chain.stdout).toContain('✓ SBOM');
    expect(chain.stdout).toContain('✗ Scan report (missing) — generate: stella scan image');
    const chainJson = await run('evidence', 'chain', '--artifact', ARTIFACT, '--format', 'json');
    expect(JSON.parse(chainJson.stdout)).toMatchObject({ complete: false, artifact: ARTIFACT });

    const unknown = await run('evidence', 'exists', sha256Digest('never stored'));
    expect(unknown.code).toBe(3);
    const malformed = await run('evidence', 'provenance', 'show', 'sha256:nothex');
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/^stella: malformed evidence id/);
    const unknownLookup = await run('evidence', 'index', 'lookup', sha256Digest('never stored either'));
    expect(unknownLookup.code).toBe(3);
  });

  it('storage check finds a flipped byte, recover fixes it, mark-corrupted is audited; doctor exits 0', async () => {
    const r = await h.ctx.evidence.ingest({
      tenant: 'default',
      data: Buffer.from(`{"scan":"${randomBytes(4).toString('hex')}"}`),
      kind: 'scan-report',
      mediaType: 'application/json',
      subjects: [ARTIFACT],
    });
    const good = await h.ctx.blobs.primary.getBuffer(r.id);
    const bad = Buffer.from(good);
    bad[2] = bad[2]! ^ 0x20;
    await h.ctx.blobs.primary.writeRaw(r.id, bad);

    const check = await run('evidence', 'storage', 'check', r.id);
    expect(check.code).toBe(4);
    expect(check.stdout).toMatch(/primary\s+hash-mismatch/);
    const rec = await run('evidence', 'recover', '--id', r.id, '--source', 'replica');
    expect(rec.code).toBe(0);
    expect(rec.stdout).toMatch(/^recovered: /);
    expect((await run('evidence', 'storage', 'check', r.id)).code).toBe(0);

    const mark = await run('evidence', 'mark-corrupted', '--id', r.id, '--reason', 'hash-mismatch', '--format', 'json');
    expect(mark.code).toBe(0);
    expect(JSON.parse(mark.stdout)).toMatchObject({ state: 'corrupted', reason: 'hash-mismatch' });
    const prov = await run('evidence', 'provenance', 'show', r.id, '--format', 'json');
    // mark-corrupted also acknowledges the failure (the corruption lifecycle), in the same audit trail.
    const actions = JSON.parse(prov.stdout).audit.map((a: { action: string }) => a.action);
    expect([...actions].sort()).toEqual(['evidence.integrity.acknowledged', 'evidence.recover', 'evidence.state.corrupted']);

    const doc = await run('doctor', '--check', 'check.storage.evidencelocker', '--format', 'json');
    expect(doc.code).toBe(0);
    const results = JSON.parse(doc.stdout).results as { id: string; status: string }[];
    expect(results.find((x) => x.id === 'check.storage.evidencelocker')?.status).toBe('PASS');
    const docText = await run('doctor', '--category', 'evidence');
    // the corrupted item makes the index check WARN, never FAIL; no verify run yet is a WARN too
    expect(docText.stdout).toMatch(/\[WARN\] check\.evidence\.index: 1 item\(s\) are marked corrupted/);
    expect(docText.stdout).toMatch(/remedy: stella evidence verify --mode quick/);
  });

  it('evidence policy show: the promotion and retention sections, as tables and as JSON', async () => {
    const json = await run('evidence', 'policy', 'show', '--env', 'prod', '--format', 'json');
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout);
    expect(out.promotion.policy.requirements.map((r: { kind: string }) => r.kind)).toEqual(['sbom', 'scan-report', 'attestation']);
    expect(out.retention).toBeDefined();
    const table = await run('evidence', 'policy', 'show', '--env', 'prod');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/promotion policy for prod/);
    expect(table.stdout).toMatch(/retention/i);
    const bad = await run('evidence', 'policy', 'show', '--env', 'no such env!');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/malformed --env/);
  });

  it('bad tokens exit 6; an unreachable API is exit 5 (and a doctor FAIL, exit 4)', async () => {
    const bad = await stella({ ...env, STELLA_TOKEN: 'not.a.jwt' }, 'evidence', 'status');
    expect(bad.code).toBe(6);
    const down = { ...env, STELLA_API_URL: 'http://127.0.0.1:9' };
    expect((await stella(down, 'evidence', 'status')).code).toBe(5);
    const doc = await stella(down, 'doctor', '--category', 'evidence');
    expect(doc.code).toBe(4);
    expect(doc.stdout).toContain('[FAIL] check.api.reachable');
  });
});
