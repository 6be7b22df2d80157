import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { harness, type Harness } from './support/context';
import { buildOciFixture, type OciFixture } from './support/oci-fixture';
import { api, TENANT, token, caller } from './support/scan';
import { externalSbom, parsePurl, packagesFromBom } from '../src/core/scan/external';
import { verifyRun } from '../src/core/replay/runs';

/**
 * `stella scanner config set engine syft`: the configured tool lists the packages, stella
 * still verifies the image and matches advisories. syft itself cannot be installed here, so
 * a stand-in on PATH answers the same command line with a fixed CycloneDX document; this
 * proves the invocation, normalisation, matching and replay path, not syft's own output.
 */
let h: Harness;
let app: FastifyInstance;
let fx: OciFixture;
let auth: Record<string, string>;
const bin = mkdtempSync(join(tmpdir(), 'fake-syft-'));
const argsLog = join(bin, 'args.log');

beforeAll(async () => {
  writeFileSync(
    join(bin, 'syft'),
    `#!/usr/bin/env node
const fs = require('node:fs');
const args = process.argv.slice(2);
if (args[0] === '--version') { console.log('syft 1.99.0-test'); process.exit(0); }
fs.appendFileSync(${JSON.stringify(argsLog)}, args.join(' ') + '\\n');
console.log(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', serialNumber: 'urn:uuid:' + require('node:crypto').randomUUID(),
  metadata: { timestamp: new Date().toISOString(), tools: { components: [{ name: 'syft', version: '1.99.0-test' }] } },
  components: [
    { type: 'library', name: 'left-pad', version: '1.3.0', purl: 'pkg:npm/left-pad@1.3.0' },
    { type: 'library', name: 'lodash', version: '4.17.20', purl: 'pkg:npm/lodash@4.17.20' },
    { type: 'library', name: 'core', version: '7.0.0', purl: 'pkg:npm/%40babel/core@7.0.0' },
  ] }));
`,
  );
  chmodSync(join(bin, 'syft'), 0o755);
  process.env.PATH = `${bin}:${process.env.PATH}`;
  h = await harness({ blob: 'fs' });
  app = await api(h);
  auth = { authorization: `Bearer ${await token(h)}` };
  fx = await buildOciFixture({
    ref: 'engine:1',
    layers: [[{ path: 'app/package-lock.json', content: '{"name":"x","lockfileVersion":3,"packages":{"":{"name":"x"}}}' }]],
    archives: true,
  });
});
afterAll(async () => {
  await app?.close();
  await fx?.cleanup();
  await h?.close();
});

const call = (...a: Parameters<ReturnType<typeof caller>>) => caller(app, () => auth)(...a);

describe('scanner engine chosen by config', () => {
  it('parses purls into matchable packages', () => {
    expect(parsePurl('pkg:npm/%40babel/core@7.0.0')).toMatchObject({ type: 'npm', namespace: '@babel', name: 'core', version: '7.0.0' });
    expect(parsePurl('pkg:deb/debian/openssl@3.0.11-1?arch=amd64&upstream=openssl%403.0.11')).toMatchObject({
      type: 'deb',
      name: 'openssl',
      qualifiers: { arch: 'amd64', upstream: 'openssl@3.0.11' },
    });
    const pk = packagesFromBom({
      bomFormat: 'CycloneDX',
      specVersion: '1.6',
      components: [{ purl: 'pkg:npm/%40babel/core@7.0.0' }, { purl: 'pkg:golang/x@1' }, { purl: 'pkg:deb/debian/libssl3@3.0.11-1?upstream=openssl%403.0.11' }],
    } as never);
    expect(pk.map((p) => [p.ecosystem, p.name, p.version, p.source?.name])).toEqual([
      ['deb', 'libssl3', '3.0.11-1', 'openssl'],
      ['golang', 'x', '1', undefined],
      ['npm', '@babel/core', '7.0.0', undefined],
    ]);
  });

  it('engine syft: the tool lists packages, stella matches, the run records a replay that verifies; bad engine refused', async () => {
    expect((await call('PUT', '/scanner/config', { key: 'engine', value: 'grype' })).status).toBe(400);
    const set = await call('PUT', '/scanner/config', { key: 'engine', value: 'syft' });
    expect(set.body.engine).toBe('syft');
    const feed = [
      {
        id: 'GHSA-35jh-r3h4-6jhm',
        modified: '2021-05-20T00:00:00Z',
        summary: 'lodash command injection',
        database_specific: { severity: 'HIGH' },
        affected: [{ package: { ecosystem: 'npm', name: 'lodash' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '4.17.21' }] }] }],
      },
    ];
    expect((await call('POST', '/feeds', Buffer.from(JSON.stringify(feed)), { 'content-type': 'application/json' })).status).toBe(200);
    const s = await call('POST', '/scans', { image: fx.tarPath });
    expect(s.status, JSON.stringify(s.body)).toBe(202);
    const result = (await h.client.workflow.getHandle(s.body.workflowId, s.body.runId).result()) as any;
    expect(result.phase).toBe('done');
    expect(readFileSync(argsLog, 'utf8')).toContain(`scan oci-archive:${fx.tarPath} -o cyclonedx-json -q`);
    const sbom = JSON.parse((await h.ctx.evidence.read(TENANT, result.sbomId)).toString());
    expect(sbom.components.map((c: any) => c.purl)).toEqual(['pkg:npm/%40babel/core@7.0.0', 'pkg:npm/left-pad@1.3.0', 'pkg:npm/lodash@4.17.20']);
    // normalised: the tool's own timestamp and random serial number are replaced, so a retried
    // activity stores the same bytes
    const a = await externalSbom('syft', fx.tarPath, 'oci-archive', '2026-01-01T00:00:00.000Z', fx.digest);
    const b = await externalSbom('syft', fx.tarPath, 'oci-archive', '2026-01-01T00:00:00.000Z', fx.digest);
    expect(a.digest).toBe(b.digest);
    expect(a.sbom.metadata?.timestamp).toBe('2026-01-01T00:00:00.000Z');
    expect(sbom.metadata.properties).toEqual(expect.arrayContaining([{ name: 'stella:engine', value: 'syft 1.99.0-test' }]));
    const report = JSON.parse((await h.ctx.evidence.read(TENANT, result.reportId)).toString());
    expect(report.findings.map((f: any) => f.id)).toEqual(['GHSA-35jh-r3h4-6jhm']);
    expect(report.counts).toMatchObject({ high: 1, critical: 0 });
    const replay = await verifyRun(h.ctx, TENANT, result.scanId, 'test');
    expect(replay.problems).toEqual([]);
    // the SBOM step ran syft; a second identical scan reuses it (same engine, scanner, feed)
    const again = await call('POST', '/scans', { image: fx.tarPath });
    expect(((await h.client.workflow.getHandle(again.body.workflowId, again.body.runId).result()) as any).phase).toBe('reused');

    // switching back to the built-in scanner does not reuse the syft run
    await call('PUT', '/scanner/config', { key: 'engine', value: 'builtin' });
    const builtin = await call('POST', '/scans', { image: fx.tarPath });
    const r3 = (await h.client.workflow.getHandle(builtin.body.workflowId, builtin.body.runId).result()) as any;
    expect(r3.phase).toBe('done');
    expect(r3.sbomId).not.toBe(result.sbomId);
  });
});
