import { createPublicKey, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiFor } from './support/api';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { attestLikeAPipeline, COSIGN_BIN, runCosign, verifyAttestation } from './support/cosign';
import { buildOciFixture, type OciFixture } from './support/oci-fixture';
import { pushFixture, startRegistry, type TestRegistry } from './support/registry';

/**
 * Issue 14's "Done means", as an operator runs it (docs/runbooks/release-orchestrator-evidence-not-found.md
 * section 7) with the real CLI against a real registry (Debian's docker-registry) and the real cosign:
 * an image pushed from a fixture; `promotion start --image <ref> --to prod` blocks; `scan image
 * --image <ref>` stores the SBOM and findings; the pipeline's cosign-signed provenance attached in
 * the registry is discovered and imported and meets the provenance gate; stella's attestations,
 * pushed to the registry, verify with `cosign verify-attestation`; the promotion completes.
 */
const PASSWORD = 'pipeline-secret';

let h: Harness;
let app: FastifyInstance;
let env: Record<string, string>;
let reg: TestRegistry;
let fx: OciFixture;
let work: string;

const stella = (...args: string[]) => runStella(env, ...args);
const json = async (...args: string[]) => {
  const r = await stella('--format', 'json', ...args);
  expect(r.code, `stella ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
};
const cosign = (args: string[]) => runCosign(args, { cwd: work, password: PASSWORD });

beforeAll(async () => {
  reg = await startRegistry();
  h = await harness({ blob: 'fs', env: { STELLA_INSECURE_REGISTRIES: reg.host } });
  app = await apiFor(h);
  env = await cliEnvFor(h, app, 'release-operator');
  work = mkdtempSync(join(tmpdir(), 'stella-story-'));
  const lock = { name: 'shop', lockfileVersion: 3, packages: { '': { name: 'shop' }, 'node_modules/left-pad': { version: '1.3.0' } } };
  fx = await buildOciFixture({
    ref: 'shop',
    layers: [
      [
        { path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
        { path: 'srv/shop/package-lock.json', content: JSON.stringify(lock) },
        { path: 'srv/shop/build-id', content: randomBytes(16).toString('hex') },
      ],
    ],
    archives: false,
  });
}, 120_000);
afterAll(async () => {
  await app?.close();
  await reg?.stop();
  await fx?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
  await h?.close();
});

describe('the runbook story against an image in a real registry', () => {
  it.skipIf(!COSIGN_BIN)(
    'push → promotion blocks → scan by reference → cosign provenance imported → stella attestations verify with cosign → promoted',
    async () => {
      // The pipeline pushes the image and attests its provenance with its own cosign key.
      const digest = await pushFixture(reg.host, 'team/shop:1.0', fx.dir);
      const repo = `${reg.host}/team/shop`;
      const ref = `${repo}:1.0`;
      expect((await cosign(['generate-key-pair'])).code).toBe(0);
      const attested = await attestLikeAPipeline(`${repo}@${digest}`, { cwd: work, password: PASSWORD, repository: 'https://git.example/shop' });
      expect(attested.code, attested.stderr).toBe(0);

      // The operator: prod trusts the pipeline's key for provenance; an advisory feed is loaded.
      const pub = (await readFile(join(work, 'cosign.pub'), 'utf8')).trim();
      const policy = [
        'requirements:',
        '  - kind: sbom',
        '  - kind: scan-report',
        '    thresholds: { critical: 0 }',
        '  - kind: attestation',
        '    predicateType: https://slsa.dev/provenance/v1',
        '    signers:',
        '      - pem: |',
        ...pub.split('\n').map((l) => `          ${l}`),
        '',
      ].join('\n');
      await writeFile(join(work, 'prod.yaml'), policy);
      await json('promotion', 'policy', 'set', '--env', 'prod', '--file', join(work, 'prod.yaml'));
      const advisory = {
        id: 'STELLA-STORY-LEFTPAD',
        modified: '2026-01-01T00:00:00Z',
        summary: 'test advisory for left-pad',
        affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['1.3.0'], database_specific: { severity: 'MEDIUM' } }],
      };
      await writeFile(join(work, 'feed.json'), JSON.stringify([advisory]));
      await json('feeds', 'import', join(work, 'feed.json'));

      // 1. promotion start --image <ref> --to prod: resolved to the digest, and it blocks on evidence.
      const blocked = await stella('--format', 'json', 'promotion', 'start', '--image', ref, '--to', 'prod', '--wait', '--timeout', '5');
      expect(blocked.code, blocked.stderr).toBe(8);
      const started = JSON.parse(blocked.stdout);
      expect(started).toMatchObject({ state: 'waiting-evidence', artifactDigest: digest, imageRef: `${repo}@${digest}`, resolvedFrom: ref });
      const id = started.id as string;
      const missingRun = await stella('--format', 'json', 'promotion', 'evidence', id, '--missing');
      expect(missingRun.code, missingRun.stderr).toBe(8); // still pending
      const missing = JSON.parse(missingRun.stdout);
      // The pipeline's provenance is not missing: with evidence missing, the promotion looked in the
      // image's registry once and imported the cosign attestation that verifies against prod's key.
      expect(missing.missing.map((m: { kind: string }) => m.kind).sort()).toEqual(['sbom', 'scan-report']);
      const blockedView = await json('promotion', 'status', id);
      expect(blockedView.gates.find((g: { name: string }) => g.name === 'provenance')).toMatchObject({ passed: true, evidence: { provenance: 'signed' } });

      // 2. scan image --image <ref>: SBOM and findings, read from the registry.
      const scanned = await stella('--format', 'json', 'scan', 'image', '--image', ref);
      expect(scanned.code, scanned.stderr).toBe(0);
      const runs = await h.ctx.db.query(`SELECT image_ref, status, components, counts FROM scan_runs WHERE artifact_digest=$1`, [digest]);
      expect(runs.rows).toHaveLength(1);
      expect(runs.rows[0]).toMatchObject({ image_ref: `${repo}@${digest}`, status: 'completed' });
      expect(runs.rows[0].components).toBeGreaterThanOrEqual(1);
      expect(runs.rows[0].counts).toMatchObject({ medium: 1, critical: 0 });
      const kinds = await h.ctx.db.query(
        `SELECT DISTINCT i.kind FROM evidence_items i JOIN evidence_subjects s ON s.tenant_id=i.tenant_id AND s.item_id=i.id WHERE s.artifact_digest=$1`,
        [digest],
      );
      expect(kinds.rows.map((r) => r.kind)).toEqual(expect.arrayContaining(['attestation', 'sbom', 'scan-report']));

      // 3. The pipeline's cosign provenance in the registry, as an operator checks it: discovered and
      // verified; importing it again stores nothing new (the promotion already imported it).
      const found = await json('attest', 'discover', '--image', ref, '--insecure-registry');
      expect(found.items).toEqual(expect.arrayContaining([expect.objectContaining({ source: 'cosign-tag', status: 'verified' })]));
      const imported = await json('attest', 'import', '--image', ref, '--insecure-registry');
      expect(imported).toMatchObject({ digest, imported: 1, failed: 0 });
      expect(imported.items.filter((i: { created?: boolean }) => i.created)).toEqual([]);

      // 4. stella's attestations pushed to the registry verify with cosign verify-attestation.
      const pushed = await json('attest', 'push', '--artifact', digest, '--image', repo, '--insecure-registry');
      expect(pushed).toMatchObject({ repository: repo });
      const rec = await h.ctx.keys.active('signing');
      await writeFile(
        join(work, 'stella.pub'),
        createPublicKey({ key: rec.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string,
      );
      const verified = await verifyAttestation(`${repo}@${digest}`, { cwd: work, password: PASSWORD, key: 'stella.pub', type: 'cyclonedx' });
      expect(verified.code, verified.stderr).toBe(0);
      expect(verified.statement!.subject[0]!.digest.sha256).toBe(digest.slice(7));

      // 5. The promotion completes.
      const retried = await stella('--format', 'json', 'promotion', 'retry', id);
      const final = await json('promotion', 'status', id);
      expect(final.state, retried.stdout + retried.stderr).toBe('promoted');
      expect(final).toMatchObject({ artifactDigest: digest, imageRef: `${repo}@${digest}`, toEnv: 'prod' });
      const gate = final.gates.find((g: { name: string }) => g.name === 'provenance');
      expect(gate).toMatchObject({ passed: true, evidence: { provenance: 'signed' } });
    },
    300_000,
  );
});
