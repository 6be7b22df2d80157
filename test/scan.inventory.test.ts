import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerImage } from '../src/core/scan/catalogue';
import { importFeed } from '../src/core/scan/feeds';
import { prepareScan, storeReport, storeSbom } from '../src/core/scan/steps';
import { harness, type Harness } from './support/context';
import { buildOciFixture, realSystemLayer, type OciFixture } from './support/oci-fixture';
import { realFacts, TENANT } from './support/scan';

/**
 * One pass: the SBOM step reads the image once and stores its inventory; matching (and any
 * later run over the same image and scanner) builds from the stored inventory. Proven by
 * deleting the layer blobs after the SBOM step: matching still produces its report.
 */
let h: Harness;
let fx: OciFixture;

beforeAll(async () => {
  h = await harness({ blob: 'fs', worker: false });
  fx = await buildOciFixture({ ref: 'inventory:1', layers: [await realSystemLayer()], archives: false });
  await registerImage(h.ctx, TENANT, 'inventory:1', fx.dir, 'tester');
  await importFeed(h.ctx, TENANT, Buffer.from(JSON.stringify(realFacts().records)), { actor: 'tester' });
});
afterAll(async () => {
  await fx?.cleanup();
  await h?.close();
});

const inventories = async () =>
  (await h.ctx.db.query('SELECT packages, unidentified FROM scan_inventories WHERE tenant_id=$1 AND artifact_digest=$2', [TENANT, fx.digest])).rows;

describe('scan inventory stored once per image and scanner', () => {
  it('matching reads the stored inventory, not the image', async () => {
    const input = { tenant: TENANT, imageRef: 'inventory:1', requestedBy: 'tester', trigger: 'manual' as const, scanTime: '2026-01-01T00:00:00.000Z' };
    const { ctx: c } = await prepareScan(h.ctx, { ...input, scanId: 'inv-1', workflowId: 'wf-inv-1' });
    const sbom = await storeSbom(h.ctx, c);
    const rows = await inventories();
    expect(rows).toHaveLength(1);
    expect(rows[0].packages).toBe(sbom.packages);
    expect(sbom.packages).toBeGreaterThan(10);

    // Without its layers the image cannot be read any more.
    for (const l of fx.layerDigests) await rm(join(fx.dir, 'blobs/sha256', l.slice('sha256:'.length)));
    expect((await readdir(join(fx.dir, 'blobs/sha256'))).length).toBe(2); // manifest and config only
    const report = await storeReport(h.ctx, c, sbom.sbomId);
    expect(report.reportId).toMatch(/^sha256:/);
    expect(report.findings).toBeGreaterThan(0);

    // A second run over the same image and scanner version reuses the inventory (same SBOM bytes).
    const { ctx: c2 } = await prepareScan(h.ctx, { ...input, scanId: 'inv-2', workflowId: 'wf-inv-2', force: true });
    expect((await storeSbom(h.ctx, c2)).sbomId).toBe(sbom.sbomId);
    expect(await inventories()).toHaveLength(1);
  });
});
