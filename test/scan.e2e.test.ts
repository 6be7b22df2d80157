import { verifyRun } from '../src/core/replay/runs';
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { harness, type Harness } from './support/context';
import { buildOciFixture, realSystemLayer, type OciFixture } from './support/oci-fixture';
import { api, countEvidence, realFacts, TENANT, token, caller } from './support/scan';
import { CYCLONEDX_BOM, SLSA_PROVENANCE_V1, VULNS_V02 } from '../src/crypto/intoto';
import { scanWorkflowId } from '../src/temporal/names';

/**
 * End to end on real Temporal + PostgreSQL + fs blob store: a real OCI fixture (this
 * machine's dpkg status, the repo's package-lock.json), an OSV feed crafted for packages
 * in it, the scanThenAttest workflow, and the results read back through the API.
 */
let h: Harness;
let app: FastifyInstance;
let fx: OciFixture;
let auth: Record<string, string>;
const facts = realFacts();

beforeAll(async () => {
  h = await harness({ blob: 'fs' });
  app = await api(h);
  auth = { authorization: `Bearer ${await token(h)}` };
  fx = await buildOciFixture({ ref: 'app:1', layers: [await realSystemLayer()] });
});
afterAll(async () => {
  await app?.close();
  await fx?.cleanup();
  await h?.close();
});

const call = (...a: Parameters<ReturnType<typeof caller>>) => caller(app, () => auth)(...a);

async function scanAndWait(image: string, opts: { force?: boolean; sbomOnly?: boolean } = {}) {
  const s = await call('POST', '/scans', { image, ...opts });
  expect(s.status, JSON.stringify(s.body)).toBe(202);
  const result = await h.client.workflow.getHandle(s.body.workflowId, s.body.runId).result();
  // What `stella scan image` polls: the finished run's status carries the workflow's result and the run record.
  const st = await call('GET', `/scans/status?workflowId=${s.body.workflowId}&runId=${s.body.runId}`);
  expect(st.status, JSON.stringify(st.body)).toBe(200);
  expect(st.body).toMatchObject({ status: 'COMPLETED', progress: { phase: (result as { phase: string }).phase }, run: { scanId: s.body.runId } });
  return { start: s.body, result: result as any };
}

/** Independent DSSE check: PAE built by hand, signature verified with node:crypto against the key's JWK. */
function independentVerify(envelope: { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] }, jwks: Record<string, any>) {
  const payload = Buffer.from(envelope.payload, 'base64');
  const type = Buffer.from(envelope.payloadType, 'utf8');
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
  const sig = envelope.signatures[0]!;
  const jwk = jwks[sig.keyid];
  const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, ...(jwk.y ? { y: jwk.y } : {}) }, format: 'jwk' });
  const raw = Buffer.from(sig.sig, 'base64');
  const ok = jwk.kty === 'EC' ? nodeVerify('sha256', pae, { key, dsaEncoding: 'der' }, raw) : nodeVerify(null, pae, key, raw);
  const tampered = Buffer.from(pae);
  tampered[tampered.length - 2] ^= 1;
  const okTampered = jwk.kty === 'EC' ? nodeVerify('sha256', tampered, { key, dsaEncoding: 'der' }, raw) : nodeVerify(null, tampered, key, raw);
  return { ok, okTampered, statement: JSON.parse(payload.toString('utf8')) };
}

describe('scanThenAttest end to end', () => {
  it('registers the image, imports the feed, scans, stores SBOM + report + 3 verified attestations', async () => {
    // Without a feed the report must say so.
    const reg = await call('POST', '/images', { name: 'app:1', path: fx.dir });
    expect(reg.status).toBe(200);
    expect(reg.body.digest).toBe(fx.digest);
    expect((await call('GET', '/images')).body.items.map((i: any) => i.name)).toEqual(['app:1']);

    const feed = await call('POST', '/feeds', Buffer.from(JSON.stringify(facts.records)), { 'content-type': 'application/json' });
    expect(feed.status, JSON.stringify(feed.body)).toBe(200);
    expect(feed.body).toMatchObject({ version: 1, records: 4, created: true });
    // The snapshot is in the blob store under the feeds prefix and hashes to the feed digest.
    const snap = await h.ctx.blobs.primary.withPrefix('feeds').getBuffer(feed.body.digest);
    expect('sha256:' + createHash('sha256').update(snap).digest('hex')).toBe(feed.body.digest);
    expect(
      (await call('POST', '/feeds', Buffer.from(JSON.stringify([...facts.records].reverse())), { 'content-type': 'application/json' })).body,
    ).toMatchObject({ version: 1, created: false });

    const { start, result } = await scanAndWait('app:1');
    expect(start.workflowId).toBe(scanWorkflowId(TENANT, fx.digest));
    expect(result.phase).toBe('done');
    expect(result.attestationIds).toHaveLength(3);

    // SBOM: every installed dpkg package of this machine and the lockfile's zod.
    const sbom = JSON.parse((await h.ctx.evidence.read(TENANT, result.sbomId)).toString());
    expect(sbom.bomFormat).toBe('CycloneDX');
    const purls: string[] = sbom.components.map((c: any) => c.purl).filter(Boolean);
    for (const d of facts.debs.slice(0, 20)) expect(purls.some((p) => p.startsWith(`pkg:deb/`) && p.includes(`/${d.name}@`))).toBe(true);
    expect(purls).toContain(`pkg:npm/zod@${facts.zod}`);
    const sbomItem = await h.ctx.evidence.get(TENANT, result.sbomId);
    expect(sbomItem).toMatchObject({ kind: 'sbom', mediaType: 'application/vnd.cyclonedx+json', subjects: [fx.digest] });

    // Report: counts from the crafted feed; parent = SBOM; feed digest and scanner version recorded.
    const report = JSON.parse((await h.ctx.evidence.read(TENANT, result.reportId)).toString());
    expect(report.counts).toMatchObject({ critical: 1, high: 1, medium: 1, low: 0, unknown: 0 });
    expect(report.findings.map((f: any) => f.id).sort()).toEqual(['STELLA-TEST-DEB-CRIT', 'STELLA-TEST-DEB-HIGH', 'STELLA-TEST-NPM-ZOD']);
    expect(report.feed).toMatchObject({ digest: feed.body.digest, version: 1 });
    expect(report.scanner.version).toBeTruthy();
    expect((await h.ctx.evidence.get(TENANT, result.reportId)).parents).toEqual([{ id: result.sbomId, relation: 'derived-from' }]);

    // Attestations: DSSE envelopes, predicate types set, edges to what they attest, verifiable independently.
    const jwks = Object.fromEntries((await h.ctx.keys.list()).map((k) => [k.kid, k.publicJwk]));
    const byType: Record<string, any> = {};
    for (const id of result.attestationIds) {
      const item = await h.ctx.evidence.get(TENANT, id);
      expect(item.kind).toBe('attestation');
      expect(item.mediaType).toBe('application/vnd.dsse.envelope.v1+json');
      const env = JSON.parse((await h.ctx.evidence.read(TENANT, id)).toString());
      const v = independentVerify(env, jwks);
      expect(v.ok).toBe(true);
      expect(v.okTampered).toBe(false);
      expect(v.statement.subject[0].digest.sha256).toBe(fx.digest.slice(7));
      expect(item.predicateType).toBe(v.statement.predicateType);
      byType[item.predicateType!] = { item, st: v.statement };
    }
    expect(Object.keys(byType).sort()).toEqual([CYCLONEDX_BOM, SLSA_PROVENANCE_V1, VULNS_V02].sort());
    expect(byType[CYCLONEDX_BOM].item.parents).toEqual([{ id: result.sbomId, relation: 'attests' }]);
    expect(byType[VULNS_V02].item.parents).toEqual([{ id: result.reportId, relation: 'attests' }]);
    expect(byType[VULNS_V02].st.predicate.scanner.result).toHaveLength(3);
    expect(byType[SLSA_PROVENANCE_V1].st.predicate.buildDefinition.externalParameters).toMatchObject({ imageRef: 'app:1', artifactDigest: fx.digest });

    // The API's view: list with signer, valid and trusted now; verify one.
    const list = await call('GET', `/attestations?subject=${fx.digest}`);
    expect(list.body.items).toHaveLength(3);
    for (const a of list.body.items) expect(a).toMatchObject({ valid: true, trustedNow: true });
    expect(list.body.items[0].signer).toBe((await h.ctx.keys.active('signing')).kid);

    // Scan run record: replay inputs and outputs.
    const runs = await call('GET', `/scans?artifact=${fx.digest}`);
    expect(runs.body.items).toHaveLength(1);
    expect(runs.body.items[0]).toMatchObject({
      status: 'completed',
      temporalStatus: 'COMPLETED',
      feedVersion: 1,
      feedDigest: feed.body.digest,
      sbomId: result.sbomId,
      reportId: result.reportId,
      imagePath: fx.dir,
    });
    expect(runs.body.items[0].attestationIds.sort()).toEqual([...result.attestationIds].sort());

    // `attest create` after the scan rebuilds the same statement and returns the existing attestation.
    const again = await call('POST', '/attestations', { subject: fx.digest, type: 'slsa-provenance' });
    expect(again.body).toMatchObject({ id: byType[SLSA_PROVENANCE_V1].item.id, reused: true });

    // evidence list / chain by artifact show all five items.
    const ev = await call('GET', `/evidence?artifact=${fx.digest}`);
    expect(
      ev.body.items
        .map((i: any) => i.kind)
        .filter((k: string) => k !== 'replay-bundle')
        .sort(),
    ).toEqual(['attestation', 'attestation', 'attestation', 'sbom', 'scan-report']);

    // The run recorded a signed replay manifest whose verdict replays from its input bundle.
    expect(result.replayManifest).toMatch(/^sha256:/);
    expect(ev.body.items.filter((i: any) => i.kind === 'replay-bundle')).toHaveLength(4);
    const replay = await verifyRun(h.ctx, TENANT, result.scanId, 'test');
    expect(replay.problems).toEqual([]);
    expect(replay.recomputed).toMatchObject({ status: 'fail', counts: { critical: 1, high: 1, medium: 1 } });
    const chain = await call('GET', `/evidence/chain?artifact=${fx.digest}`);
    if (chain.status === 200) expect(JSON.stringify(chain.body)).toContain(result.sbomId);
  });

  it('joins / reuses without --force, regenerates with --force, and sbom-only stops after the SBOM', async () => {
    const before = await countEvidence(h);
    const again = await scanAndWait('app:1');
    expect(again.result.phase).toBe('reused');
    expect(await countEvidence(h)).toEqual(before);

    const forced = await scanAndWait(fx.digest, { force: true });
    expect(forced.result.phase).toBe('done');
    const after = await countEvidence(h);
    // New scan time → a fresh SBOM, report and three attestations, and a new replay record whose
    // input bundle (same inventory, feed, policy, tools) is byte-identical, so stored once.
    expect(after).toEqual({
      ...before,
      sbom: before.sbom! + 1,
      'scan-report': before['scan-report']! + 1,
      attestation: before.attestation! + 3,
      'replay-bundle': before['replay-bundle']! + 3,
    });

    const fx2 = await buildOciFixture({
      ref: 'tiny:1',
      layers: [
        [
          {
            path: 'app/package-lock.json',
            content: JSON.stringify({ name: 'x', lockfileVersion: 3, packages: { '': { name: 'x' }, 'node_modules/left-pad': { version: '1.3.0' } } }),
          },
        ],
      ],
      archives: true,
    });
    try {
      const only = await scanAndWait(fx2.tarPath, { sbomOnly: true });
      expect(only.result).toMatchObject({ phase: 'done', reportId: null, attestationIds: [] });
      const items = (await call('GET', `/evidence?artifact=${fx2.digest}`)).body.items;
      expect(items.map((i: any) => i.kind)).toEqual(['sbom']);
      // attest create on demand: provenance (no scan report needed), idempotent on repeat.
      const a1 = await call('POST', '/attestations', { subject: fx2.digest, type: 'slsa-provenance' });
      expect(a1.status, JSON.stringify(a1.body)).toBe(201);
      const v = await call('GET', `/attestations/${a1.body.id}`);
      expect(v.body).toMatchObject({ valid: true, trustedNow: true, predicateType: SLSA_PROVENANCE_V1 });
      const sb = await call('POST', '/attestations', { subject: fx2.digest, type: 'sbom' });
      expect(sb.status).toBe(201);
      expect((await call('POST', '/attestations', { subject: fx2.digest, type: 'sbom' })).body).toMatchObject({ id: sb.body.id, reused: true });
      expect((await call('POST', '/attestations', { subject: fx2.digest, type: 'vuln' })).status).toBe(404);
    } finally {
      await fx2.cleanup();
    }
  });

  it('concurrent requests for one artifact join a single run', async () => {
    const fx3 = await buildOciFixture({ ref: 'c:1', layers: [await realSystemLayer(), [{ path: 'etc/marker', content: 'concurrent' }]], archives: false });
    try {
      const [a, b] = await Promise.all([call('POST', '/scans', { image: fx3.dir, force: true }), call('POST', '/scans', { image: fx3.dir, force: true })]);
      expect(a.body.workflowId).toBe(b.body.workflowId);
      expect(a.body.runId).toBe(b.body.runId);
      expect([a.body.joined, b.body.joined].sort()).toEqual([false, true]);
      await h.client.workflow.getHandle(a.body.workflowId, a.body.runId).result();
      expect((await countEvidence(h)).sbom).toBeGreaterThan(0);
      const runs = await h.ctx.db.query('SELECT count(*)::int AS n FROM scan_runs WHERE artifact_digest=$1', [fx3.digest]);
      expect(runs.rows[0].n).toBe(1);
    } finally {
      await fx3.cleanup();
    }
  });

  it('auto-scan on push: ignored when disabled, started when enabled for push', async () => {
    const ev = { repository: 'registry.local/app', tag: '1', digest: fx.digest, image: 'app:1' };
    const ignored = await call('POST', '/events/push', ev);
    expect(ignored.body).toMatchObject({ status: 'ignored' });
    expect(ignored.body.reason).toContain('auto_scan.enabled');
    expect((await call('PUT', '/scanner/config', { key: 'auto_scan.enabled', value: 'true' })).status).toBe(200);
    expect((await call('PUT', '/scanner/config', { key: 'auto_scan.triggers', value: 'push,promote' })).body.auto_scan).toEqual({
      enabled: true,
      triggers: ['push', 'promote'],
    });
    expect((await call('PUT', '/scanner/config', { key: 'auto_scan.triggers', value: 'push,bogus' })).status).toBe(400);
    const started = await call('POST', '/events/push', ev);
    expect(started.body).toMatchObject({ status: 'started', artifactDigest: fx.digest });
    await h.client.workflow.getHandle(started.body.workflowId, started.body.runId).result();
    const queued = await call('POST', '/events/push', { repository: 'registry.local/unknown', tag: '2' });
    expect(queued.body.status).toBe('queued');
    const q = await call('GET', '/scans/queue');
    expect(q.body.events.map((e: any) => e.status).sort()).toEqual(['ignored', 'queued']);
    const runs = (await call('GET', `/scans?artifact=${fx.digest}`)).body.items;
    expect(runs.some((r: any) => r.trigger === 'push')).toBe(true);

    // Registering the pushed image later starts the queued scan.
    const fx3 = await buildOciFixture({
      ref: 'unknown:2',
      layers: [
        [
          {
            path: 'app/package-lock.json',
            content: JSON.stringify({ name: 'y', lockfileVersion: 3, packages: { '': { name: 'y' }, 'node_modules/is-number': { version: '7.0.0' } } }),
          },
        ],
      ],
      archives: true,
    });
    try {
      const reg = await call('POST', '/images', { name: 'registry.local/unknown:2', path: fx3.tarPath });
      expect(reg.body.queuedScans.eventIds).toEqual([queued.body.eventId]);
      await h.client.workflow.getHandle(reg.body.queuedScans.workflowId).result();
      // no longer pending in the queue; the event row records the run it started
      const after = await call('GET', '/scans/queue');
      expect(after.body.events.find((e: any) => e.id === queued.body.eventId)).toBeUndefined();
      const row = (await h.ctx.db.query('SELECT status, artifact_digest, workflow_id FROM scan_events WHERE id=$1', [queued.body.eventId])).rows[0];
      expect(row).toMatchObject({ status: 'started', artifact_digest: fx3.digest, workflow_id: reg.body.queuedScans.workflowId });
      expect((await h.ctx.evidence.list({ tenant: TENANT, artifact: fx3.digest, kind: 'sbom' })).items).toHaveLength(1);
    } finally {
      await fx3.cleanup();
    }
  });
});
