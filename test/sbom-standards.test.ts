import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/lib/canonical';
import { cvss2BaseScore, cvss3BaseScore, cvss4BaseScore, cvssVersion, preferredCvss, rateCvss } from '../src/scanner/cvss';
import { buildCycloneDx, cdxLicenses, formattedCpe } from '../src/scanner/cyclonedx';
import { feedFromRecords, matchPackages, severityOf } from '../src/scanner/osv';
import { inventoryImage, type Inventory, scanInventory } from '../src/scanner/scan';
import { buildSpdx, spdxBytes } from '../src/scanner/spdx';
import type { FastifyInstance } from 'fastify';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { buildOciFixture, ecosystemsLayer, type OciFixture, REPO_ROOT, realSystemLayer } from './support/oci-fixture';
import { api } from './support/scan';

/**
 * Standard models: stella's SBOMs validated against the official CycloneDX 1.6 JSON schema
 * (vendored in schemas/cyclonedx from @cyclonedx/cyclonedx-library) and its SPDX 2.3 output
 * against the SPDX project's own validator (spdx-tools from PyPI, `pyspdxtools`); CVSS v3.1 and
 * v4.0 scores from the FIRST specifications' examples.
 */
const run = promisify(execFile);
// ajv-formats-draft2019 (idn-email, iri-reference, … used by the CycloneDX schema) ships no types.
const addFormats2019 = createRequire(import.meta.url)('ajv-formats-draft2019') as (ajv: Ajv) => Ajv;
const NOW = '2026-01-01T00:00:00.000Z';
const FIX = join(REPO_ROOT, 'test/fixtures/scanner-ecosystems');
const fixture = (name: string) => readFileSync(join(FIX, name));

function cycloneDxSchema() {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  addFormats2019(ajv);
  for (const f of ['spdx', 'jsf-0.82', 'cryptography-defs'])
    ajv.addSchema(JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/cyclonedx', `${f}.schema.json`), 'utf8')));
  const validate = ajv.compile(JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/cyclonedx/bom-1.6.schema.json'), 'utf8')));
  return (doc: unknown) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
}

/** `pyspdxtools -i` prints nothing and exits 0 for a valid document; it lists the issues otherwise. */
async function spdxTools(doc: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stella-spdx-'));
  try {
    const file = join(dir, 'doc.spdx.json');
    await writeFile(file, typeof doc === 'string' || Buffer.isBuffer(doc) ? doc : JSON.stringify(doc));
    const r = await run(process.env.STELLA_PYSPDXTOOLS ?? 'pyspdxtools', ['-i', file], { maxBuffer: 64 << 20 }).catch(
      (e: { code?: number; stdout?: string; stderr?: string }) => {
        if (typeof e.code !== 'number') throw e; // not started at all: spdx-tools is missing
        return { stdout: `exit ${e.code}\n${e.stdout ?? ''}`, stderr: e.stderr ?? '' };
      },
    );
    return `${r.stdout}${r.stderr}`.trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('SBOMs of real images against the official schemas', () => {
  let eco: OciFixture;
  let sys: OciFixture;
  const inv: Record<'eco' | 'sys', Inventory> = {} as never;
  const validateCdx = cycloneDxSchema();

  beforeAll(async () => {
    eco = await buildOciFixture({
      archives: false,
      ref: 'eco',
      layers: [ecosystemsLayer()],
    });
    sys = await buildOciFixture({ archives: false, ref: 'sys', layers: [await realSystemLayer()] });
    inv.eco = await inventoryImage(eco.dir);
    inv.sys = await inventoryImage(sys.dir);
  });
  afterAll(async () => {
    await eco?.cleanup();
    await sys?.cleanup();
  });

  it('CycloneDX 1.6: every image validates against the official JSON schema', () => {
    for (const i of [inv.eco, inv.sys]) {
      const r = scanInventory(i, { now: NOW });
      expect(validateCdx(r.sbom)).toEqual([]);
      expect(r.sbom.components.filter((c) => c.type === 'library')).toHaveLength(i.packages.length);
    }
    // The schema is not a rubber stamp: an expression beside a licence, or an unknown component type, is rejected.
    const bom = scanInventory(inv.eco, { now: NOW }).sbom;
    const broken = structuredClone(bom);
    broken.components[0]!.licenses = [{ license: { id: 'MIT' } }, { expression: 'MIT OR Apache-2.0' }];
    expect(validateCdx(broken).length).toBeGreaterThan(0);
    const badType = structuredClone(bom);
    badType.components[0]!.type = 'widget';
    expect(validateCdx(badType).length).toBeGreaterThan(0);
  });

  it('CycloneDX: purls, SPDX licence ids, escaped CPEs, stella as the tool and the dependency graph', () => {
    const bom = scanInventory(inv.eco, { now: NOW }).sbom;
    const byName = new Map(bom.components.map((c) => [c.name, c]));
    expect(byName.get('stella-tools')).toMatchObject({
      purl: 'pkg:rpm/rocky/stella-tools@0.9-1?arch=noarch&distro=rocky-9.3&epoch=2',
      licenses: [{ license: { id: 'GPL-2.0-or-later' } }],
    });
    expect(byName.get('commons-cli')?.purl).toBe('pkg:maven/commons-cli/commons-cli@1.6.0');
    expect(bom.metadata.tools.components).toEqual([{ type: 'application', name: 'stella-scanner', version: expect.any(String) }]);
    const image = bom.dependencies?.find((d) => d.ref === bom.metadata.component['bom-ref']);
    expect(image?.dependsOn?.sort()).toEqual(bom.components.map((c) => c['bom-ref']!).sort());
    // Declared package → package edges appear in the graph.
    const [a, b] = inv.eco.packages;
    const withDep = buildCycloneDx({
      artifactDigest: inv.eco.artifactDigest,
      packages: [{ ...a!, dependsOn: [b!.purl, 'pkg:npm/not-here@1'] }, b!],
      timestamp: NOW,
    });
    expect(withDep.dependencies?.find((d) => d.ref === a!.purl)?.dependsOn).toEqual([b!.purl]);
    expect(validateCdx(withDep)).toEqual([]);
    // Licences: one compound expression stays one; all-SPDX lists with a compound join with AND; names stay names.
    expect([...cdxLicenses(['MIT OR Apache-2.0'])].map((l) => (l as { expression?: string }).expression)).toEqual(['MIT OR Apache-2.0']);
    expect([...cdxLicenses(['BSD-3-Clause', 'MIT OR Apache-2.0'])].map((l) => (l as { expression?: string }).expression)).toEqual([
      'BSD-3-Clause AND (MIT OR Apache-2.0)',
    ]);
    expect([...cdxLicenses(['Some Custom Licence', 'MIT'])]).toHaveLength(2);
    expect(formattedCpe('cpe:2.3:a:zlib1g:zlib1g:1.2.13+dfsg~1:*:*:*:*:*:*:*')).toBe('cpe:2.3:a:zlib1g:zlib1g:1.2.13\\+dfsg\\~1:*:*:*:*:*:*:*');
  });

  it('SPDX 2.3: spdx-tools validates every image; a broken document is reported', async () => {
    for (const i of [inv.eco, inv.sys]) {
      const doc = buildSpdx({ artifactDigest: i.artifactDigest, packages: i.packages, ...(i.distro ? { distro: i.distro } : {}), timestamp: NOW });
      expect(await spdxTools(spdxBytes(doc))).toBe('');
      expect(doc.packages).toHaveLength(i.packages.length + 1 + (i.distro ? 1 : 0));
    }
    const doc = buildSpdx({ artifactDigest: inv.eco.artifactDigest, packages: inv.eco.packages, timestamp: NOW });
    const broken = structuredClone(doc);
    broken.relationships.push({ spdxElementId: 'SPDXRef-Image', relationshipType: 'CONTAINS', relatedSpdxElement: 'SPDXRef-Nowhere' });
    broken.packages[1]!.SPDXID = 'not an id';
    const out = await spdxTools(broken);
    expect(out).toMatch(/The document is invalid/);
    expect(out).toMatch(/SPDXRef-Nowhere/);
  });

  it('SPDX: purl and CPE references, licences, relationships; deterministic bytes', () => {
    const input = { artifactDigest: inv.eco.artifactDigest, packages: inv.eco.packages, timestamp: NOW };
    const doc = buildSpdx(input);
    const tools = doc.packages.find((p) => p.name === 'stella-tools')!;
    expect(tools.licenseDeclared).toBe('GPL-2.0-or-later');
    expect(tools.externalRefs).toContainEqual({
      referenceCategory: 'PACKAGE-MANAGER',
      referenceType: 'purl',
      referenceLocator: 'pkg:rpm/rocky/stella-tools@0.9-1?arch=noarch&distro=rocky-9.3&epoch=2',
    });
    expect(doc.relationships.filter((r) => r.relationshipType === 'CONTAINS')).toHaveLength(inv.eco.packages.length);
    expect(doc.relationships).toContainEqual({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-Image' });
    expect(canonicalJson(buildSpdx({ ...input, packages: [...input.packages].reverse() }))).toBe(canonicalJson(doc));
    expect(buildSpdx({ ...input, timestamp: '2026-01-02T00:00:00Z' }).documentNamespace).not.toBe(doc.documentNamespace);
    // A licence name that is not SPDX becomes a LicenseRef- with its extracted text.
    const custom = buildSpdx({ ...input, packages: [{ ...inv.eco.packages[0]!, licenses: ['Acme Public Licence'] }] });
    expect(custom.packages[1]!.licenseDeclared).toMatch(/^LicenseRef-Acme-Public-Licence-[0-9a-f]{8}$/);
    expect(custom.hasExtractedLicensingInfos?.[0]).toMatchObject({ licenseId: custom.packages[1]!.licenseDeclared, name: 'Acme Public Licence' });
  });
});

describe('CVSS v3.1 and v4.0 (ae-cvss-calculator)', () => {
  it('scores the specification examples', () => {
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H')).toBe(9.8);
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N')).toBe(6.1);
    expect(cvss3BaseScore('CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N')).toBe(5.5);
    expect(cvss2BaseScore('AV:N/AC:M/Au:N/C:N/I:P/A:N')).toBe(4.3);
    // CVSS v4.0: the FIRST calculator's values.
    expect(cvss4BaseScore('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N')).toBe(9.3);
    expect(cvss4BaseScore('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N')).toBe(0);
    expect(rateCvss('CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N')).toMatchObject({ version: '4.0', severity: 'medium' });
  });

  it('rejects malformed vectors instead of scoring them', () => {
    expect(() => cvss3BaseScore('CVSS:3.1/AV:N')).toThrow(/lacks/);
    expect(() => cvss4BaseScore('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N')).toThrow(/lacks SA/);
    expect(() => cvssVersion('CVSS:4.0/AV:X/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N')).toThrow(/bad value/);
    expect(() => cvssVersion('CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H')).toThrow(/duplicate/);
  });

  it('severity comes from CVSS v4.0 when present, else v3.1', () => {
    const v3 = { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }; // 9.8 critical
    const v4 = { type: 'CVSS_V4', score: 'CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N' }; // medium
    expect(preferredCvss([v3, v4])).toMatchObject({ version: '4.0', severity: 'medium' });
    expect(preferredCvss([v3, { type: 'CVSS_V4', score: 'CVSS:4.0/garbage' }])).toMatchObject({ version: '3.1', severity: 'critical' });
    expect(severityOf({ id: 'X', severity: [v3, v4] } as never)).toMatchObject({ severity: 'medium', vector: v4.score });
    // End to end: a finding's severity from a v4-only advisory.
    const feed = feedFromRecords([
      {
        id: 'GHSA-v4only',
        modified: '2026-01-01T00:00:00Z',
        severity: [v4],
        affected: [{ package: { ecosystem: 'npm', name: 'left' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '2.0.0' }] }] }],
      },
    ]);
    const [f] = matchPackages([{ ecosystem: 'npm', name: 'left', version: '1.0.0', purl: 'pkg:npm/left@1.0.0', locations: ['/x'] }], feed);
    expect(f).toMatchObject({ id: 'GHSA-v4only', severity: 'medium', cvssVector: v4.score });
  });
});

describe('stella scan image --sbom-format spdx (real CLI, API, workflow)', () => {
  let h: Harness;
  let app: FastifyInstance;
  let fx: OciFixture;
  let env: Record<string, string>;
  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
    app = await api(h);
    env = await cliEnvFor(h, app);
    fx = await buildOciFixture({
      ref: 'spdx:1',
      archives: false,
      layers: [
        [
          { path: 'etc/os-release', content: 'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.3"\n' },
          { path: 'var/lib/rpm/rpmdb.sqlite', content: fixture('rpmdb.sqlite') },
          { path: 'opt/app/lib/commons-cli-1.6.0.jar', content: fixture('commons-cli-1.6.0.jar') },
        ],
      ],
    });
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await fx?.cleanup();
    await h?.close();
  });

  it('stores an SPDX 2.3 document beside the CycloneDX SBOM; spdx-tools validates it', async () => {
    const r = await runStella(env, 'scan', 'image', '--image', fx.dir, '--sbom-only', '--sbom-format', 'spdx', '--format', 'json');
    expect(r.code, r.stderr).toBe(0);
    const st = JSON.parse(r.stdout) as { progress: { sbomId: string; spdxId?: string } };
    expect(st.progress.spdxId).toMatch(/^sha256:[0-9a-f]{64}$/);
    const item = await h.ctx.evidence.get('default', st.progress.spdxId!);
    expect(item).toMatchObject({ kind: 'sbom', mediaType: 'application/spdx+json', subjects: [fx.digest] });
    const bytes = await h.ctx.evidence.read('default', st.progress.spdxId!);
    const doc = JSON.parse(bytes.toString('utf8'));
    expect(doc).toMatchObject({ spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT' });
    expect(doc.packages.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['stella-hello', 'stella-tools', 'commons-cli']));
    expect(await spdxTools(bytes)).toBe('');
    // The CycloneDX SBOM is still the scan's SBOM.
    expect(await h.ctx.evidence.get('default', st.progress.sbomId)).toMatchObject({ mediaType: 'application/vnd.cyclonedx+json' });
  }, 300_000);

  it('an unknown format is a usage error (exit 2) and starts nothing', async () => {
    const r = await runStella(env, 'scan', 'image', '--image', fx.dir, '--sbom-format', 'swid');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--sbom-format must be cyclonedx or spdx/);
    const bad = await app.inject({
      method: 'POST',
      url: '/scans',
      headers: { authorization: `Bearer ${env.STELLA_TOKEN}` },
      payload: { image: fx.dir, sbomFormat: 'swid' },
    });
    expect(bad.statusCode).toBe(400);
  });
});
