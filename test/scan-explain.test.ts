import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerImage } from '../src/core/scan/catalogue';
import { importFeed } from '../src/core/scan/feeds';
import { prepareScan, storeReport, storeSbom } from '../src/core/scan/steps';
import { makeStatement, subject } from '../src/crypto/intoto';
import { ScanReportSchema } from '../src/scanner/scan';
import { apiFor } from './support/api';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { buildOciFixture, type OciFixture, realSystemLayer } from './support/oci-fixture';
import { builderKey, envelopeOf } from './support/promotion';
import { realFacts } from './support/scan';

/**
 * `stella scan explain`: a real scan (this machine's dpkg status and package-lock.json, matched
 * against the real OSV records of test/support/scan.ts) explained through the CLI, then a signed
 * OpenVEX statement from a RootPack-trusted key shown as suppressing the finding.
 */
const TENANT = 'default';
let h: Harness;
let app: FastifyInstance;
let env: Record<string, string>;
let fx: OciFixture;
let report: ReturnType<typeof ScanReportSchema.parse>;

beforeAll(async () => {
  h = await harness({ blob: 'fs', worker: false });
  app = await apiFor(h);
  env = await cliEnvFor(h, app);
  fx = await buildOciFixture({ ref: 'explain:1', layers: [await realSystemLayer()], archives: false });
  await registerImage(h.ctx, TENANT, 'explain:1', fx.dir, 'tester');
  await importFeed(h.ctx, TENANT, Buffer.from(JSON.stringify(realFacts().records)), { actor: 'tester' });
  const input = { tenant: TENANT, imageRef: 'explain:1', requestedBy: 'tester', trigger: 'manual' as const, scanTime: '2026-01-01T00:00:00.000Z' };
  const { ctx: c } = await prepareScan(h.ctx, { ...input, scanId: 'explain-1', workflowId: 'wf-explain-1' });
  const sbom = await storeSbom(h.ctx, c);
  const r = await storeReport(h.ctx, c, sbom.sbomId);
  report = ScanReportSchema.parse(JSON.parse((await h.ctx.evidence.read(TENANT, r.reportId!)).toString('utf8')));
});
afterAll(async () => {
  await app?.close();
  await fx?.cleanup();
  await h?.close();
});

const stella = (...args: string[]) => runStella(env, ...args);

describe('stella scan explain', () => {
  it('names package, installed version, matched range, advisory, fixed version; VEX from a trusted signer shows as applied, unsigned VEX as ignored', async () => {
    expect(report.findings.length).toBeGreaterThan(0);
    const f = report.findings.find((x) => x.fixedVersion) ?? report.findings[0]!;
    const json = await stella('scan', 'explain', f.id, f.package.name, '--artifact', fx.digest, '--format', 'json');
    expect(json.code, json.stderr).toBe(0);
    const [item, ...rest] = JSON.parse(json.stdout).items;
    expect(rest.filter((x: any) => x.package.purl === f.package.purl)).toEqual([]);
    expect(item).toMatchObject({
      findingId: `${f.id}@${f.package.purl}`,
      artifact: fx.digest,
      package: f.package,
      installedVersion: f.installedVersion,
      fixedVersion: f.fixedVersion ?? null,
      advisory: { id: f.id, ecosystem: f.advisory.ecosystem, name: f.advisory.name },
      feed: report.feed,
      vex: { suppressed: false, statements: [], policy: { env: 'built-in' } },
    });
    // The range that matched contains the installed version (or the advisory lists it).
    expect(item.match.version).toBe(f.installedVersion);
    expect(item.match.ranges.some((r: any) => r.contains === true) || item.match.versions.contains).toBe(true);
    if (f.fixedVersion) expect(item.match.ranges.some((r: any) => r.events.some((e: any) => e.fixed === f.fixedVersion))).toBe(true);

    const text = await stella('scan', 'explain', `${f.id}@${f.package.purl}`, '--artifact', fx.digest);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`package:    ${f.package.name} ${f.installedVersion}`);
    expect(text.stdout).toMatch(/range: {6}(ECOSYSTEM|SEMVER) .*<- contains/);
    expect(text.stdout).toContain(`fixed in:   ${f.fixedVersion ?? 'no fixed version known'}`);
    expect(text.stdout).toContain('VEX:        no trusted statement (policy built-in)');

    // A signed OpenVEX statement (RootPack-trusted key: the built-in policy's VEX signers) and an unsigned one.
    const vex = {
      '@context': 'https://openvex.dev/ns/v0.2.0',
      '@id': 'https://vex.example/explain-1',
      author: 'app team',
      timestamp: '2026-11-01T00:00:00Z',
      version: 1,
      statements: [
        { vulnerability: { name: f.id }, products: [{ '@id': f.package.purl }], status: 'not_affected', justification: 'inline_mitigations_already_exist' },
      ],
    };
    const st = makeStatement([subject('explain:1', fx.digest)], 'https://openvex.dev/ns/v0.2.0', vex);
    const put = async (body: Buffer | string, contentType: string) =>
      app.inject({
        method: 'POST',
        url: `/evidence?${new URLSearchParams({ kind: 'vex', artifact: fx.digest })}`,
        headers: { authorization: `Bearer ${env.STELLA_TOKEN}`, 'content-type': contentType },
        payload: body,
      });
    const unsigned = await put(JSON.stringify(vex), 'application/json');
    expect(unsigned.statusCode).toBe(201);
    const signed = await put(await envelopeOf(st, await builderKey(h.ctx)), 'application/vnd.dsse.envelope.v1+json');
    expect(signed.statusCode, signed.body).toBe(201);

    const after = JSON.parse((await stella('scan', 'explain', f.id, f.package.purl, '--artifact', fx.digest, '--format', 'json')).stdout).items[0];
    expect(after.vex.suppressed).toBe(true);
    expect(after.vex.statements).toEqual([
      expect.objectContaining({ evidenceId: signed.json().id, status: 'not_affected', justification: 'inline_mitigations_already_exist', suppresses: true }),
    ]);
    expect(after.vex.documents).toContainEqual(expect.objectContaining({ id: unsigned.json().id, accepted: false }));
    const human = await stella('scan', 'explain', f.id, f.package.purl, '--artifact', fx.digest);
    expect(human.stdout).toContain('VEX:        SUPPRESSED (policy built-in)');
    expect(human.stdout).toContain(`ignored: VEX ${unsigned.json().id} is unsigned (uploaded)`);
  });

  it('an unknown finding or artifact is a one-line not-found (exit 3); a malformed digest is a usage error (exit 2)', async () => {
    const missing = await stella('scan', 'explain', 'CVE-1999-0000', '--artifact', fx.digest);
    expect(missing.code).toBe(3);
    expect(missing.stderr.trim()).toMatch(/^stella: no finding CVE-1999-0000 in scan report sha256:[0-9a-f]{64} of sha256:/);
    const noScan = await stella('scan', 'explain', 'CVE-1999-0000', '--artifact', `sha256:${'0'.repeat(64)}`);
    expect(noScan.code).toBe(3);
    expect(noScan.stderr).toMatch(/no scan report for sha256:0{64}; run stella scan image first/);
    expect((await stella('scan', 'explain', 'CVE-1', '--artifact', 'nope')).code).toBe(2);
  });
});
