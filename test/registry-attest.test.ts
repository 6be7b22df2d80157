import { createPublicKey, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateGates } from '../src/core/promotion/evaluate';
import { resolvePolicy, setPolicy } from '../src/core/promotion/policy';
import { publishDecision } from '../src/core/oci-attest/auto';
import { DSSE_LAYER, descriptorOf, EMPTY_CONFIG_BYTES, formatOf, layersOf, planAttLayers, referrerManifest } from '../src/core/oci-attest/layout';
import { sha256Digest } from '../src/lib/hash';
import { cosignAttestationLayer } from '../src/crypto/cosign';
import { createRegistryClient } from '../src/registry/index';
import { apiFor } from './support/api';
import { waitFor } from './support/promotion';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { attestLikeAPipeline, COSIGN_BIN, runCosign, verifyAttestation } from './support/cosign';
import { buildOciFixture, type OciFixture } from './support/oci-fixture';
import { pushFixture, startReferrersRegistry, startRegistry, type TestRegistry } from './support/registry';

/**
 * Attestations in registries (issue 14 items 3 and 4) against real registries: Debian's
 * docker-registry (no referrers API: cosign's `.att` tag) and go-containerregistry's registry
 * (OCI 1.1 referrers), the real cosign binary on both sides: stella's pushed attestation verifies
 * with `cosign verify-attestation --key`, and a pipeline's `cosign attest` is discovered,
 * imported and meets a provenance gate.
 */
const TENANT = 'default';
const PASSWORD = 'pipeline-secret';

let h: Harness;
let app: FastifyInstance;
let cli: Record<string, string>;
let plain: TestRegistry;
let referrers: TestRegistry;
let locked: TestRegistry;
let work: string;
const fixtures: OciFixture[] = [];

const stella = (...args: string[]) => runStella(cli, ...args);
const json = async (...args: string[]) => {
  const r = await stella('--format', 'json', ...args);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};
const itemCount = async () => Number((await h.ctx.db.query('SELECT count(*) AS n FROM evidence_items WHERE tenant_id=$1', [TENANT])).rows[0].n);

/** A fresh image pushed to `reg` as `repo:1`; returns its digest. */
async function pushImage(reg: TestRegistry, repo: string): Promise<string> {
  const f = await buildOciFixture({ ref: 'app', layers: [[{ path: 'etc/os-release', content: `ID=debian\nBUILD=${randomBytes(8).toString('hex')}\n` }]] });
  fixtures.push(f);
  return pushFixture(reg.host, `${repo}:1`, f.dir);
}

/** stella's own SBOM attestation about `digest` (an uploaded SBOM, attested with stella's signing key). */
async function stellaAttestation(digest: string): Promise<string> {
  const bom = JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', serialNumber: `urn:uuid:${randomBytes(16).toString('hex')}`, version: 1 });
  const up = await app.inject({
    method: 'POST',
    url: `/evidence?kind=sbom&artifact=${digest}`,
    headers: { authorization: `Bearer ${cli.STELLA_TOKEN}`, 'content-type': 'application/vnd.cyclonedx+json' },
    payload: bom,
  });
  expect(up.statusCode, up.body).toBe(201);
  const a = await json('attest', 'create', '--subject', digest, '--type', 'sbom');
  return a.id as string;
}

const cosign = (args: string[], cwd = work) => runCosign(args, { cwd, password: PASSWORD });

/** The pipeline's SLSA v1 provenance about `digest`, attested with cosign into the registry (`.att` tag). */
async function pipelineAttest(ref: string): Promise<void> {
  const r = await attestLikeAPipeline(ref, { cwd: work, password: PASSWORD, repository: 'https://git.example/app' });
  expect(r.code, r.stderr).toBe(0);
}

function pemOf(jwk: unknown): string {
  return createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
}

beforeAll(async () => {
  [plain, referrers, locked] = await Promise.all([startRegistry(), startReferrersRegistry(), startRegistry({ auth: { user: 'u', password: 'p' } })]);
  // The promotion resolves its --image with the process's registry settings: the plain test registry is listed as insecure.
  h = await harness({ blob: 'fs', env: { STELLA_INSECURE_REGISTRIES: plain.host } });
  app = await apiFor(h);
  cli = await cliEnvFor(h, app, 'registry-attest');
  work = mkdtempSync(join(tmpdir(), 'stella-cosign-'));
  const rec = await h.ctx.keys.active('signing');
  await writeFile(join(work, 'stella.pub'), pemOf(rec.publicJwk));
  if (COSIGN_BIN) expect((await cosign(['generate-key-pair'])).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await app?.close();
  await Promise.all([plain?.stop(), referrers?.stop(), locked?.stop()]);
  for (const f of fixtures) await f.cleanup();
  await h?.close();
});

describe('layout decisions (pure)', () => {
  it("appends only new DSSE layers to cosign's .att manifest and reads layer kinds", () => {
    const env = (n: number) =>
      Buffer.from(
        JSON.stringify({
          payloadType: 'application/vnd.in-toto+json',
          payload: Buffer.from(`{"n":${n}}`).toString('base64'),
          signatures: [{ keyid: '', sig: 'AAAA' }],
        }),
      );
    const first = planAttLayers([], [{ bytes: env(1), predicateType: 'p' }]);
    expect(first.added).toHaveLength(1);
    const again = planAttLayers(first.layers, [
      { bytes: env(1), predicateType: 'p' },
      { bytes: env(2), predicateType: 'q' },
    ]);
    expect(again.added.map((l) => l.predicateType)).toEqual(['q']);
    expect(again.layers.map((l) => l.digest)).toEqual([
      cosignAttestationLayer(env(1), 'p').descriptor.digest,
      cosignAttestationLayer(env(2), 'q').descriptor.digest,
    ]);
    expect(again.layers[1]!.annotations).toEqual({ 'dev.cosignproject.cosign/signature': '', predicateType: 'q' });
    expect(formatOf('application/vnd.dsse.envelope.v1+json')).toBe('dsse');
    expect(formatOf('application/vnd.dev.sigstore.bundle.v0.3+json')).toBe('sigstore-bundle');
    expect(formatOf('application/vnd.cyclonedx+json')).toBe('cyclonedx');
    expect(formatOf('application/octet-stream')).toBe('other');
    // Malformed layer entries are dropped, not trusted.
    expect(layersOf({ layers: [{ mediaType: 'x', digest: 'sha256:zz', size: 1 }, null] }).layers).toEqual([]);
    // Publishing on promotion: only opted-in environments, only registry references.
    const cfg = { environments: ['prod'], insecure: false };
    expect(publishDecision(cfg, 'prod', 'registry.example/team/app@sha256:x')).toEqual({ publish: true });
    expect(publishDecision(cfg, 'prod', 'localhost:5000/app')).toEqual({ publish: true });
    expect(publishDecision(cfg, 'staging', 'registry.example/team/app')).toMatchObject({ publish: false, reason: expect.stringContaining('staging') });
    expect(publishDecision(cfg, 'prod', 'app')).toMatchObject({ publish: false, reason: 'app is not a registry reference' });
    expect(publishDecision(cfg, 'prod', 'team/app')).toMatchObject({ publish: false });
    expect(publishDecision(cfg, 'prod', null)).toMatchObject({ publish: false });
  });
});

describe("cosign's tag scheme (docker-registry, no referrers API)", () => {
  it("pushes stella's attestation as sha256-<hex>.att without duplicates; cosign verify-attestation --key accepts it", async () => {
    const digest = await pushImage(plain, 'team/app');
    const attId = await stellaAttestation(digest);
    const repo = `${plain.host}/team/app`;
    const pushed = await json('attest', 'push', '--artifact', digest, '--image', `${repo}:1`, '--insecure-registry');
    expect(pushed).toMatchObject({ repository: repo, method: 'cosign-tag' });
    expect(pushed.items).toEqual([expect.objectContaining({ evidenceId: attId, kind: 'attestation', tag: `${digest.replace(':', '-')}.att`, pushed: true })]);
    // Re-pushing is idempotent: the same manifest, still one layer.
    const again = await json('attest', 'push', '--artifact', digest, '--image', repo, '--insecure-registry');
    expect(again.items).toEqual([expect.objectContaining({ evidenceId: attId, pushed: false, manifestDigest: pushed.items[0].manifestDigest })]);
    const att = (await (
      await fetch(`${plain.url}/v2/team/app/manifests/${digest.replace(':', '-')}.att`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    ).json()) as any;
    expect(att.layers).toHaveLength(1);
    expect(att.layers[0]).toMatchObject({
      mediaType: 'application/vnd.dsse.envelope.v1+json',
      digest: attId,
      annotations: { predicateType: 'https://cyclonedx.org/bom' },
    });
    // Recorded (what went where) and audited.
    const published = await json('attest', 'published', '--artifact', digest);
    expect(published.items).toEqual([
      expect.objectContaining({ repository: repo, method: 'cosign-tag', evidenceId: attId, manifestDigest: pushed.items[0].manifestDigest }),
    ]);
    const audit = await h.ctx.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE action='attestation.publish' AND target=$1`, [digest]);
    expect(audit.rows[0].n).toBe(2);

    // Discover finds it, verified with stella's key.
    const found = await json('attest', 'discover', '--image', `${repo}:1`, '--insecure-registry');
    expect(found.digest).toBe(digest);
    expect(found.items).toEqual([expect.objectContaining({ source: 'cosign-tag', format: 'dsse', status: 'verified', layerDigest: attId })]);

    if (COSIGN_BIN) {
      const v = await verifyAttestation(`${repo}@${digest}`, { cwd: work, password: PASSWORD, key: 'stella.pub', type: 'cyclonedx' });
      expect(v.code, v.stderr).toBe(0);
      expect(v.statement!.subject[0]!.digest.sha256).toBe(digest.slice(7));
      // ...and a key that did not sign it is refused by cosign.
      expect((await verifyAttestation(`${repo}@${digest}`, { cwd: work, password: PASSWORD, key: 'cosign.pub', type: 'cyclonedx' })).code).not.toBe(0);
    } else console.warn('cosign binary not found (go install github.com/sigstore/cosign/v2/cmd/cosign): skipping the cosign verification');

    // cosign 2.6 prefers referrer bundles once there are any (then it needs --new-bundle-format and a trusted root), so this comes last.
    // --method referrers on a registry without the API: stella keeps the sha256-<hex> index (OCI 1.1 fallback), so the
    // referrers are found; the bundle carries the same envelope as the .att layer, so it is listed once.
    const viaIndex = await json('attest', 'push', '--artifact', digest, '--image', repo, '--insecure-registry', '--method', 'referrers');
    expect(viaIndex.method).toBe('referrers');
    const index = (await (
      await fetch(`${plain.url}/v2/team/app/manifests/${digest.replace(':', '-')}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } })
    ).json()) as any;
    expect(index.manifests.map((m: { digest: string }) => m.digest).sort()).toEqual(
      viaIndex.items.map((i: { manifestDigest: string }) => i.manifestDigest).sort(),
    );
    const both = await json('attest', 'discover', '--image', `${repo}:1`, '--insecure-registry');
    expect(both.items.map((i: { source: string; format: string; status: string }) => `${i.source} ${i.format} ${i.status}`).sort()).toEqual([
      'referrer cyclonedx unsigned',
      'referrer sigstore-bundle verified',
    ]);
  }, 120_000);

  it.skipIf(!COSIGN_BIN)(
    "a pipeline's cosign attestation is discovered, refused while its key is untrusted, then imported and meets the provenance gate",
    async () => {
      const digest = await pushImage(plain, 'team/pipeline');
      const ref = `${plain.host}/team/pipeline`;
      await pipelineAttest(`${ref}@${digest}`);

      // No policy names the pipeline's key yet: reported with the reason, nothing stored.
      const before = await itemCount();
      const untrusted = await json('attest', 'discover', '--image', `${ref}:1`, '--insecure-registry');
      expect(untrusted.items).toEqual([expect.objectContaining({ source: 'cosign-tag', format: 'dsse', status: 'failed' })]);
      expect(untrusted.items[0].reason).toMatch(/no valid signature by a trusted key/);
      const refused = await stella('attest', 'import', '--image', `${ref}:1`, '--insecure-registry');
      expect(refused.code, refused.stderr).toBe(4);
      expect(refused.stdout).toContain('0 imported, 1 failed verification');
      expect(await itemCount()).toBe(before);

      // The prod policy trusts the pipeline's cosign key (PEM) for provenance.
      const pub = await readFile(join(work, 'cosign.pub'), 'utf8');
      const policy = `requirements:\n  - kind: attestation\n    signers:\n      - pem: |\n${pub
        .trim()
        .split('\n')
        .map((l) => `          ${l}`)
        .join('\n')}\n`;
      await setPolicy(h.ctx.db, { tenant: TENANT, env: 'prod', text: policy, actor: 'test' });
      const prod = (await resolvePolicy(h.ctx.db, TENANT, 'prod')).policy;
      const [gateBefore] = await evaluateGates(h.ctx, { tenant: TENANT, artifactDigest: digest, imageRef: null, policy: prod });
      expect(gateBefore!.passed).toBe(false);

      const imported = await json('attest', 'import', '--image', `${ref}:1`, '--insecure-registry');
      expect(imported).toMatchObject({ digest, imported: 1, failed: 0 });
      const item = imported.items[0];
      expect(item).toMatchObject({ status: 'verified', predicateType: 'https://slsa.dev/provenance/v1', created: true });
      expect(item.signer).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const meta = await app.inject({ method: 'GET', url: `/evidence/${item.evidenceId}/meta`, headers: { authorization: `Bearer ${cli.STELLA_TOKEN}` } });
      expect(meta.json()).toMatchObject({ kind: 'attestation', provenance: 'signed', signer: item.signer, subjects: [digest] });
      const [gate] = await evaluateGates(h.ctx, { tenant: TENANT, artifactDigest: digest, imageRef: null, policy: prod });
      expect(gate).toMatchObject({ passed: true, evidence: { provenance: 'signed', signer: item.signer } });
      // Importing again stores nothing new.
      const twice = await json('attest', 'import', '--image', `${ref}:1`, '--insecure-registry');
      expect(twice.items[0]).toMatchObject({ evidenceId: item.evidenceId, created: false });
    },
    120_000,
  );
});

describe('OCI 1.1 referrers (go-containerregistry registry)', () => {
  it("pushes stella's attestation as a Sigstore bundle referrer and the SBOM as a CycloneDX referrer; discover verifies them", async () => {
    const digest = await pushImage(referrers, 'team/app');
    const attId = await stellaAttestation(digest);
    const repo = `${referrers.host}/team/app`;
    const pushed = await json('attest', 'push', '--artifact', digest, '--image', repo, '--insecure-registry');
    expect(pushed.method).toBe('referrers');
    expect(pushed.items.map((i: { kind: string; artifactType: string; pushed: boolean }) => [i.kind, i.artifactType, i.pushed])).toEqual([
      ['attestation', 'application/vnd.dev.sigstore.bundle.v0.3+json', true],
      ['sbom', 'application/vnd.cyclonedx+json', true],
    ]);
    // The registry's referrers API lists both, with the image as subject.
    const idx = (await (await fetch(`${referrers.url}/v2/team/app/referrers/${digest}`)).json()) as any;
    expect(idx.manifests.map((m: { digest: string }) => m.digest).sort()).toEqual(pushed.items.map((i: { manifestDigest: string }) => i.manifestDigest).sort());
    const again = await json('attest', 'push', '--artifact', digest, '--image', repo, '--insecure-registry');
    expect(again.items.every((i: { pushed: boolean }) => !i.pushed)).toBe(true);

    const found = await json('attest', 'discover', '--image', `${repo}:1`, '--insecure-registry');
    const byFormat = Object.fromEntries(found.items.map((i: { format: string }) => [i.format, i]));
    expect(byFormat['sigstore-bundle']).toMatchObject({ source: 'referrer', status: 'verified', predicateType: 'https://cyclonedx.org/bom' });
    expect(byFormat.cyclonedx).toMatchObject({ source: 'referrer', status: 'unsigned' });
    // Importing stella's own bundle back finds the stored envelope (the same bytes, nothing new).
    const imported = await json('attest', 'import', '--image', `${repo}:1`, '--insecure-registry');
    // cosign v2.4+ reads the referrer bundles with --new-bundle-format; keyed, no tlog: an empty trusted root (no CAs, no logs) suffices.
    if (COSIGN_BIN) {
      await writeFile(
        join(work, 'empty-root.json'),
        JSON.stringify({
          mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
          tlogs: [],
          certificateAuthorities: [],
          ctlogs: [],
          timestampAuthorities: [],
        }),
      );
      const v = await verifyAttestation(`${repo}@${digest}`, {
        cwd: work,
        password: PASSWORD,
        key: 'stella.pub',
        type: 'cyclonedx',
        trustedRoot: 'empty-root.json',
      });
      expect(v.code, v.stderr).toBe(0);
      expect(v.statement!.subject[0]!.digest.sha256).toBe(digest.slice(7));
    }
    const bundle = imported.items.find((i: { format: string }) => i.format === 'sigstore-bundle');
    expect(bundle, JSON.stringify(imported.items)).toMatchObject({ evidenceId: attId, created: false });
  }, 120_000);

  it.skipIf(!COSIGN_BIN)(
    "a pipeline's cosign attestation in a referrers-capable registry is imported too",
    async () => {
      const digest = await pushImage(referrers, 'team/pipeline');
      const ref = `${referrers.host}/team/pipeline`;
      await pipelineAttest(`${ref}@${digest}`);
      const imported = await json('attest', 'import', '--image', `${ref}@${digest}`, '--insecure-registry');
      expect(imported).toMatchObject({ imported: 1, failed: 0 });
      expect(imported.items[0]).toMatchObject({ source: 'cosign-tag', status: 'verified', predicateType: 'https://slsa.dev/provenance/v1' });
    },
    120_000,
  );
});

describe('publishing on promotion (opt-in per environment)', () => {
  it("a promotion to an opted-in environment pushes stella's attestations to the image's registry; others do not", async () => {
    const digest = await pushImage(plain, 'team/promo');
    const attId = await stellaAttestation(digest);
    const image = `${plain.host}/team/promo:1`;
    await setPolicy(h.ctx.db, { tenant: TENANT, env: 'edge', text: 'requirements: []\n', actor: 'test' });
    await setPolicy(h.ctx.db, { tenant: TENANT, env: 'lab', text: 'requirements: []\n', actor: 'test' });
    expect(await json('attest', 'push-config')).toEqual({ environments: [], insecure: false });
    expect(await json('attest', 'push-config', '--environments', 'edge', '--insecure-registry')).toEqual({ environments: ['edge'], insecure: true });
    const bad = await stella('attest', 'push-config', '--environments', 'Not An Env');
    expect(bad.code).toBe(2);

    const promote = async (to: string) => {
      const r = await app.inject({
        method: 'POST',
        url: '/promotions',
        headers: { authorization: `Bearer ${cli.STELLA_TOKEN}` },
        payload: { artifact: digest, from: 'staging', to, imageRef: image },
      });
      expect(r.statusCode, r.body).toBeLessThan(300);
      const id = r.json().id as string;
      const get = async () => (await app.inject({ method: 'GET', url: `/promotions/${id}`, headers: { authorization: `Bearer ${cli.STELLA_TOKEN}` } })).json();
      await waitFor(get, (s) => s.state === 'promoted', `promotion to ${to}`, 60_000);
      return id;
    };
    /** The local activities a promotion ran, from its Temporal history (each is a marker naming its type). */
    const steps = async (id: string) => {
      const handle = h.client.workflow.getHandle(id);
      await handle.result();
      const events = (await handle.fetchHistory()).events ?? [];
      return events
        .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')
        .map((e) => JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details!.data!.payloads![0]!.data!).toString('utf8')).activity_type);
    };
    const rows = async () => (await h.ctx.db.query('SELECT evidence_id, method, repository FROM oci_publications WHERE artifact_digest=$1', [digest])).rows;
    const lab = await promote('lab');
    expect(await rows()).toEqual([]);
    // An environment that does not publish runs no publish step at all (the finalize result says so).
    expect(await steps(lab)).toEqual(['evaluateGates', 'promotionFinalize']);
    const edge = await promote('edge');
    const published = await waitFor(rows, (r) => r.length > 0, 'the publish step', 60_000);
    expect(await steps(edge)).toEqual(['evaluateGates', 'promotionFinalize', 'publishAfterPromotion']);
    expect(published).toEqual([{ evidence_id: attId, method: 'cosign-tag', repository: `${plain.host}/team/promo` }]);
    const att = (await (
      await fetch(`${plain.url}/v2/team/promo/manifests/${digest.replace(':', '-')}.att`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    ).json()) as any;
    expect(att.layers.map((l: { digest: string }) => l.digest)).toEqual([attId]);
  }, 180_000);
});

describe('evidence missing: the promotion looks in the registry', () => {
  it.skipIf(!COSIGN_BIN)(
    'a promotion of an image whose pipeline attached cosign provenance imports it and promotes without a manual import',
    async () => {
      const digest = await pushImage(plain, 'team/gated');
      await pipelineAttest(`${plain.host}/team/gated@${digest}`);
      const pub = await readFile(join(work, 'cosign.pub'), 'utf8');
      const policy = `requirements:\n  - kind: attestation\n    signers:\n      - pem: |\n${pub
        .trim()
        .split('\n')
        .map((l) => `          ${l}`)
        .join('\n')}\n`;
      await setPolicy(h.ctx.db, { tenant: TENANT, env: 'gated', text: policy, actor: 'test' });
      const r = await app.inject({
        method: 'POST',
        url: '/promotions',
        headers: { authorization: `Bearer ${cli.STELLA_TOKEN}` },
        payload: { artifact: digest, from: 'staging', to: 'gated', imageRef: `${plain.host}/team/gated:1` },
      });
      expect(r.statusCode, r.body).toBeLessThan(300);
      const get = async () =>
        (await app.inject({ method: 'GET', url: `/promotions/${r.json().id}`, headers: { authorization: `Bearer ${cli.STELLA_TOKEN}` } })).json();
      const done = await waitFor(get, (s) => s.state === 'promoted' || s.state === 'failed', 'the promotion', 60_000);
      expect(done.state, JSON.stringify(done.gates)).toBe('promoted');
      expect(done.gates[0]).toMatchObject({ passed: true, evidence: { provenance: 'signed' } });
      const audit = await h.ctx.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE action='attestation.registry-import' AND target=$1`, [digest]);
      expect(audit.rows[0].n).toBe(1);
    },
    120_000,
  );
});

describe('bad input', () => {
  it('a tampered attestation is reported with its reason and not stored; registry errors name the reference; nothing pushed without evidence', async () => {
    const digest = await pushImage(plain, 'team/bad');
    const repo = `${plain.host}/team/bad`;
    const other = `sha256:${'ab'.repeat(32)}`;
    // A cosign-layout .att whose envelope's payload was altered after signing.
    const attId = await stellaAttestation(digest);
    const env = JSON.parse((await h.ctx.evidence.read(TENANT, attId)).toString('utf8'));
    const st = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
    st.predicate = { tampered: true };
    const bad = Buffer.from(JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(st)).toString('base64') }));
    const client = createRegistryClient({ insecureRegistries: [plain.host] });
    await json('attest', 'push', '--artifact', digest, '--image', repo, '--insecure-registry');
    const layer = cosignAttestationLayer(bad, 'https://cyclonedx.org/bom');
    await client.pushBlob(repo, bad);
    const { cosignAttestationManifest } = await import('../src/crypto/cosign');
    const current = await client.getManifest(`${repo}:${digest.replace(':', '-')}.att`);
    const m = cosignAttestationManifest([...layersOf(current.json).layers, layer.descriptor]);
    await client.pushBlob(repo, m.config.bytes);
    await client.putManifest(`${repo}:${digest.replace(':', '-')}.att`, m.manifest, 'application/vnd.oci.image.manifest.v1+json');

    const before = await itemCount();
    const r = await stella('--format', 'json', 'attest', 'import', '--image', `${repo}@${digest}`, '--insecure-registry');
    expect(r.code).toBe(4);
    const out = JSON.parse(r.stdout);
    expect(out.failed).toBe(1);
    const failed = out.items.find((i: { status: string }) => i.status === 'failed');
    expect(failed.layerDigest).toBe(layer.descriptor.digest);
    expect(failed.reason).toMatch(/signature/);
    expect(out.items.find((i: { status: string }) => i.status === 'verified')).toMatchObject({ evidenceId: attId, created: false });
    expect(await itemCount()).toBe(before);

    // A referrer (through the referrers tag schema) whose manifest is about another image: failed, named, not stored.
    const good = await h.ctx.evidence.read(TENANT, attId);
    const liar = referrerManifest({
      artifactType: DSSE_LAYER,
      layer: descriptorOf(DSSE_LAYER, good),
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: other, size: 2 },
    });
    await client.pushBlob(repo, EMPTY_CONFIG_BYTES);
    const liarDigest = await client.putManifest(`${repo}@${sha256Digest(liar)}`, liar, 'application/vnd.oci.image.manifest.v1+json');
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: liarDigest, size: liar.length, artifactType: DSSE_LAYER }],
      }),
    );
    await client.putManifest(`${repo}:${digest.replace(':', '-')}`, index, 'application/vnd.oci.image.index.v1+json');
    const lied = await json('attest', 'discover', '--image', `${repo}@${digest}`, '--insecure-registry');
    expect(lied.items.find((i: { source: string }) => i.source === 'referrer')).toMatchObject({
      status: 'failed',
      manifestDigest: liarDigest,
      reason: `referrer ${liarDigest} is about ${other}, not ${digest}`,
    });

    // 401 from the registry: a clear 4xx naming the registry, not a 500.
    const denied = await stella('attest', 'discover', '--image', `${locked.host}/team/app:1`, '--insecure-registry');
    expect(denied.code).toBe(6);
    expect(denied.stderr).toContain(locked.host);
    // An unknown host.
    const unknown = await stella('attest', 'discover', '--image', 'registry.invalid/team/app:1');
    expect([2, 5]).toContain(unknown.code);
    expect(unknown.stderr).toContain('registry.invalid');
    // A digest that is not in the repository, and an image naming another digest than the artifact.
    const missing = await stella('attest', 'push', '--artifact', digest, '--image', `${plain.host}/team/none`, '--insecure-registry');
    expect(missing.code, missing.stderr).toBe(3);
    expect(missing.stderr).toContain(`${plain.host}/team/none`);
    const mismatch = await stella('attest', 'push', '--artifact', digest, '--image', `${repo}@${other}`, '--insecure-registry');
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain(`names digest ${other}, not the artifact ${digest}`);
    // Nothing stella signed about an artifact: nothing to push (404, nothing recorded).
    const none = await stella('attest', 'push', '--artifact', other, '--image', repo, '--insecure-registry');
    expect(none.code).toBe(3);
    expect(none.stderr).toContain(`nothing stella signed about ${other}`);
    expect((await h.ctx.db.query('SELECT count(*)::int AS n FROM oci_publications WHERE artifact_digest=$1', [other])).rows[0].n).toBe(0);
  }, 120_000);
});
