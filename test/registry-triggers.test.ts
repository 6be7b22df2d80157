import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISTRIBUTION_EVENTS_MEDIA_TYPE, webhookEntries } from '../src/core/scan/webhooks';
import { scanWorkflowId } from '../src/temporal/names';
import { apiFor, bearer } from './support/api';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { buildOciFixture, type OciFixture } from './support/oci-fixture';
import { pushFixture, startRegistry, type TestRegistry } from './support/registry';

/**
 * Issue 14 items 2 (promotion by image reference) and 6 (triggers) against a real registry
 * (Debian's docker-registry, images pushed with skopeo): `promotion start --image <ref>`
 * resolves the digest first; the `promote` auto-scan trigger; `POST /events/push` with
 * distribution's notification envelope and Harbor's webhook payload; `stella events push`.
 */
let h: Harness;
let app: FastifyInstance;
let auth: Record<string, string>;
let env: Record<string, string>;
let reg: TestRegistry;
let locked: TestRegistry;
const fixtures: OciFixture[] = [];
const USER = { user: 'pusher', password: randomBytes(8).toString('hex') };
const D = (c: string) => `sha256:${c.repeat(64)}`;

beforeAll(async () => {
  [reg, locked] = await Promise.all([startRegistry(), startRegistry({ auth: USER })]);
  h = await harness({ blob: 'fs', env: { STELLA_INSECURE_REGISTRIES: `${reg.host},${locked.host}` } });
  app = await apiFor(h);
  auth = await bearer(h, ['admin']);
  env = await cliEnvFor(h, app);
}, 120_000);
afterAll(async () => {
  await app?.close();
  await Promise.all([reg?.stop(), locked?.stop()]);
  for (const f of fixtures) await f.cleanup();
  await h?.close();
});

async function call(method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown, headers: Record<string, string> = {}) {
  const r = await app.inject({ method, url, headers: { ...auth, ...headers }, ...(body === undefined ? {} : { payload: body as object }) });
  return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined };
}

/** A fixture unique to this run (so no earlier scan of its digest exists), pushed as repo:tag. */
async function pushed(repoTag: string, to: TestRegistry = reg): Promise<{ digest: string; ref: string; fx: OciFixture }> {
  const lock = { name: 'x', lockfileVersion: 3, packages: { '': { name: 'x' }, 'node_modules/left-pad': { version: '1.3.0' } } };
  const fx = await buildOciFixture({
    ref: 'app',
    layers: [
      [
        { path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
        { path: 'app/package-lock.json', content: JSON.stringify(lock) },
        { path: 'app/nonce', content: randomBytes(16).toString('hex') },
      ],
    ],
    archives: false,
  });
  fixtures.push(fx);
  const digest = await pushFixture(to.host, repoTag, fx.dir, to.auth ? { creds: to.auth } : {});
  return { digest, ref: `${to.host}/${repoTag}`, fx };
}

const promotionsOf = async (digest: string) =>
  (await h.ctx.db.query(`SELECT count(*)::int AS n FROM promotions WHERE artifact_digest=$1`, [digest])).rows[0].n as number;
const eventsOf = async (digest: string) =>
  (await h.ctx.db.query(`SELECT trigger, status, image, reason FROM scan_events WHERE artifact_digest=$1 ORDER BY id`, [digest])).rows;

describe('webhook payloads (pure)', () => {
  it('distribution envelope: manifest pushes become pinned images; pulls and blob pushes dropped; deletes ignored with a reason', () => {
    const mt = 'application/vnd.oci.image.manifest.v1+json';
    const entries = webhookEntries({
      events: [
        { action: 'push', target: { mediaType: mt, digest: D('a'), repository: 'team/app', tag: '1' }, request: { host: 'reg.example:5000' } },
        { action: 'pull', target: { mediaType: mt, digest: D('a'), repository: 'team/app' }, request: { host: 'reg.example:5000' } },
        { action: 'push', target: { mediaType: 'application/octet-stream', digest: D('b'), repository: 'team/app' }, request: { host: 'reg.example:5000' } },
        { action: 'delete', target: { digest: D('a'), repository: 'team/app' } },
        { action: 'push', target: { mediaType: mt, digest: D('c'), repository: 'team/app', url: 'http://other.example/v2/team/app/manifests/x' } },
      ],
    });
    expect(entries).toEqual([
      { kind: 'push', event: { repository: 'team/app', tag: '1', digest: D('a'), image: `reg.example:5000/team/app@${D('a')}` } },
      { kind: 'dropped', reason: 'pull event' },
      { kind: 'dropped', reason: expect.stringContaining('blob') },
      { kind: 'ignored', event: { repository: 'team/app', digest: D('a') }, reason: 'registry event delete is not a push' },
      { kind: 'push', event: { repository: 'team/app', digest: D('c'), image: `other.example/team/app@${D('c')}` } },
    ]);
  });

  it("Harbor: PUSH_ARTIFACT resources by digest; other types ignored; stella's own body is not a webhook", () => {
    const data = { resources: [{ digest: D('d'), tag: 'v2', resource_url: `harbor.example/lib/app:v2` }], repository: { repo_full_name: 'lib/app' } };
    expect(webhookEntries({ type: 'PUSH_ARTIFACT', event_data: data })).toEqual([
      { kind: 'push', event: { repository: 'lib/app', tag: 'v2', digest: D('d'), image: `harbor.example/lib/app@${D('d')}` } },
    ]);
    expect(webhookEntries({ type: 'PULL_ARTIFACT', event_data: data })).toEqual([{ kind: 'dropped', reason: 'pull event' }]);
    expect(webhookEntries({ type: 'DELETE_ARTIFACT', event_data: data })?.[0]).toMatchObject({
      kind: 'ignored',
      reason: expect.stringContaining('DELETE_ARTIFACT'),
    });
    expect(webhookEntries({ image: 'app:1' })).toBeNull();
  });
});

describe('promotion start --image <registry ref>', () => {
  it('resolves the tag to its digest and promotes the digest, imageRef pinned; the CLI does the same without --artifact', async () => {
    const { digest, ref } = await pushed('team/promo:1.0');
    const s = await call('POST', '/promotions', { imageRef: ref, to: 'prod' });
    expect(s.status, JSON.stringify(s.body)).toBe(202);
    expect(s.body).toMatchObject({ resolvedFrom: ref });
    expect(s.body.workflowId).toContain(digest.slice(7));
    const d = await h.client.workflow.getHandle(s.body.workflowId).describe();
    expect(d.searchAttributes).toMatchObject({ StellaArtifactDigest: [digest] });
    const view = await call('GET', `/promotions/${s.body.workflowId}`);
    expect(view.body).toMatchObject({ artifactDigest: digest, imageRef: `${reg.host}/team/promo@${digest}` });
    // the tag moves: a promotion started from the old pinned digest still names the old one; the CLI resolves the new one
    const moved = await pushed('team/promo:1.0');
    const cli = await runStella(env, '--format', 'json', 'promotion', 'start', '--image', ref, '--to', 'prod');
    expect(cli.code, cli.stderr).toBe(0);
    const out = JSON.parse(cli.stdout);
    expect(out.workflowId).toContain(moved.digest.slice(7));
    expect(out.workflowId).not.toContain(digest.slice(7));
    // both given and agreeing: fine (joins the running one)
    const both = await call('POST', '/promotions', { artifact: moved.digest, imageRef: ref, to: 'prod' });
    expect(both.body).toMatchObject({ joined: true, workflowId: out.workflowId });
  });

  it('bad references: a clear 4xx naming the reference, nothing started', async () => {
    const { digest, ref } = await pushed('team/bad:1');
    const before = await promotionsOf(digest);
    const mismatch = await call('POST', '/promotions', { artifact: D('e'), imageRef: ref, to: 'prod' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.detail).toContain(`resolves to ${digest}, not the artifact ${D('e')}`);
    const missingTag = await call('POST', '/promotions', { imageRef: `${reg.host}/team/bad:nope`, to: 'prod' });
    expect(missingTag.status, JSON.stringify(missingTag.body)).toBe(404);
    expect(missingTag.body.detail).toContain(`${reg.host}/team/bad:nope`);
    const unknownHost = await call('POST', '/promotions', { imageRef: 'no-such-host.invalid/team/app:1', to: 'prod' });
    expect(unknownHost.status, JSON.stringify(unknownHost.body)).toBe(400);
    expect(unknownHost.body.detail).toContain('no-such-host.invalid');
    const lockedRef = (await pushed('team/secret:1', locked)).ref;
    const unauthorized = await call('POST', '/promotions', { imageRef: lockedRef, to: 'prod' });
    expect(unauthorized.status, JSON.stringify(unauthorized.body)).toBeGreaterThanOrEqual(400);
    expect(unauthorized.status).toBeLessThan(500);
    expect(unauthorized.body.detail).toContain(lockedRef);
    const notARef = await call('POST', '/promotions', { imageRef: 'just-a-name', to: 'prod' });
    expect(notARef.status).toBe(400);
    expect(notARef.body.detail).toMatch(/not a registry reference/);
    expect(await promotionsOf(digest)).toBe(before);
    const list = await h.client.workflow.list({ query: `StellaArtifactDigest = '${digest}'` });
    for await (const _ of list) throw new Error('a promotion workflow was started for a refused request');
    // the CLI: one line, exit 2 for usage and for the API's bad input
    const neither = await runStella(env, 'promotion', 'start', '--to', 'prod');
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/--artifact <digest> or --image/);
    const cliMismatch = await runStella(env, 'promotion', 'start', '--image', ref, '--artifact', D('e'), '--to', 'prod');
    expect(cliMismatch.code).toBe(2);
    expect(cliMismatch.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('triggers', () => {
  it("promote: a promotion of an unscanned digest queues its scan (trigger 'promote', recorded); a scanned digest does not", async () => {
    const { digest, ref } = await pushed('team/unscanned:1');
    // off: nothing queued
    const off = await call('POST', '/promotions', { imageRef: ref, to: 'staging' });
    expect(off.body.scan).toBeUndefined();
    expect(await eventsOf(digest)).toEqual([]);
    await call('PUT', '/scanner/config', { key: 'auto_scan.enabled', value: 'true' });
    await call('PUT', '/scanner/config', { key: 'auto_scan.triggers', value: 'promote' });
    const s = await call('POST', '/promotions', { imageRef: ref, to: 'prod' });
    expect(s.status, JSON.stringify(s.body)).toBe(202);
    expect(s.body.scan).toMatchObject({ status: 'started', workflowId: scanWorkflowId('default', digest) });
    expect(await eventsOf(digest)).toEqual([{ trigger: 'promote', status: 'started', image: `${reg.host}/team/unscanned@${digest}`, reason: null }]);
    const audited = await h.ctx.db.query(`SELECT actor, details->>'trigger' AS trigger FROM audit_log WHERE action='scan.requested' AND target=$1`, [digest]);
    expect(audited.rows).toEqual([{ actor: 'test-admin', trigger: 'promote' }]);
    const scan = await h.client.workflow.getHandle(s.body.scan.workflowId).result();
    expect(scan).toMatchObject({ phase: 'done' });
    const run = await h.ctx.db.query(`SELECT trigger, status FROM scan_runs WHERE artifact_digest=$1`, [digest]);
    expect(run.rows).toEqual([{ trigger: 'promote', status: 'completed' }]);
    // the promotion was blocked on evidence; after the scan's evidence landed, a retry sees SBOM and scan pass
    const retried = await call('POST', `/promotions/${s.body.workflowId}/retry`);
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    const view = await call('GET', `/promotions/${s.body.workflowId}`);
    const gates = Object.fromEntries(view.body.gates.map((g: { name: string; passed: boolean }) => [g.name, g.passed]));
    expect(gates).toMatchObject({ sbom: true });
    // a digest the scanner cannot reach (no reference, no catalogue entry): queued with the reason
    const unknown = await call('POST', '/promotions', { artifact: D('9'), to: 'prod' });
    expect(unknown.body.scan).toMatchObject({ status: 'queued', reason: expect.stringContaining('image not available to the scanner') });
    expect(await eventsOf(D('9'))).toEqual([expect.objectContaining({ trigger: 'promote', status: 'queued' })]);
    // ...and registering an image with that digest starts it: the fixture's own digest, registered by name in the catalogue
    const later = await pushed('team/later:1');
    const blocked = await call('POST', '/promotions', { artifact: later.digest, to: 'prod' });
    expect(blocked.body.scan).toMatchObject({ status: 'queued' });
    const registered = await call('POST', '/images', { name: 'later:1', path: later.fx.dir });
    expect(registered.body.queuedScans, JSON.stringify(registered.body)).toMatchObject({ workflowId: scanWorkflowId('default', later.digest) });
    expect((await eventsOf(later.digest)).map((e) => [e.trigger, e.status])).toEqual([['promote', 'started']]);
    await h.client.workflow.getHandle(registered.body.queuedScans.workflowId).result();
    // scanned now: a second promotion does not queue another scan
    const again = await call('POST', '/promotions', { imageRef: ref, to: 'qa' });
    expect(again.body.scan).toBeUndefined();
    expect(await eventsOf(digest)).toHaveLength(1);
  });

  it('push: distribution envelope (its media type) and Harbor payload start the scan by digest; pulls dropped; authenticated', async () => {
    await call('PUT', '/scanner/config', { key: 'auto_scan.enabled', value: 'true' });
    await call('PUT', '/scanner/config', { key: 'auto_scan.triggers', value: 'push' });
    const a = await pushed('team/hooked:1');
    const envelope = {
      events: [
        {
          id: 'e1',
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: a.digest,
            repository: 'team/hooked',
            tag: '1',
            url: `${reg.url}/v2/team/hooked/manifests/${a.digest}`,
          },
          request: { host: reg.host },
        },
        {
          id: 'e2',
          action: 'pull',
          target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.digest, repository: 'team/hooked' },
          request: { host: reg.host },
        },
        { id: 'e3', action: 'delete', target: { digest: a.digest, repository: 'team/hooked' }, request: { host: reg.host } },
      ],
    };
    const noAuth = await app.inject({
      method: 'POST',
      url: '/events/push',
      headers: { 'content-type': DISTRIBUTION_EVENTS_MEDIA_TYPE },
      payload: JSON.stringify(envelope),
    });
    expect(noAuth.statusCode).toBe(401);
    const readOnly = await app.inject({
      method: 'POST',
      url: '/events/push',
      headers: { ...(await bearer(h, ['evidence:read'])), 'content-type': DISTRIBUTION_EVENTS_MEDIA_TYPE },
      payload: JSON.stringify(envelope),
    });
    expect(readOnly.statusCode).toBe(403);
    expect(await eventsOf(a.digest)).toEqual([]);
    const r = await app.inject({
      method: 'POST',
      url: '/events/push',
      headers: { ...auth, 'content-type': DISTRIBUTION_EVENTS_MEDIA_TYPE },
      payload: JSON.stringify(envelope),
    });
    expect(r.statusCode, r.body).toBe(202);
    const body = JSON.parse(r.body);
    expect(body.dropped).toBe(1);
    expect(body.results).toMatchObject([
      { status: 'started', artifactDigest: a.digest, workflowId: scanWorkflowId('default', a.digest) },
      { status: 'ignored', reason: 'registry event delete is not a push' },
    ]);
    expect(await h.client.workflow.getHandle(body.results[0].workflowId).result()).toMatchObject({ phase: 'done' });
    expect((await eventsOf(a.digest)).map((e) => [e.trigger, e.status])).toEqual([
      ['push', 'started'],
      ['push', 'ignored'],
    ]);

    const b = await pushed('lib/harbored:v2');
    const harbor = {
      type: 'PUSH_ARTIFACT',
      occur_at: 1700000000,
      operator: 'robot$ci',
      event_data: {
        resources: [{ digest: b.digest, tag: 'v2', resource_url: `${reg.host}/lib/harbored:v2` }],
        repository: { date_created: 1700000000, name: 'harbored', namespace: 'lib', repo_full_name: 'lib/harbored', repo_type: 'private' },
      },
    };
    const hb = await call('POST', '/events/push', harbor);
    expect(hb.status, JSON.stringify(hb.body)).toBe(202);
    expect(hb.body.results).toMatchObject([{ status: 'started', artifactDigest: b.digest }]);
    await h.client.workflow.getHandle(hb.body.results[0].workflowId).result();
    const runs = await h.ctx.db.query(`SELECT trigger, image_ref FROM scan_runs WHERE artifact_digest=$1`, [b.digest]);
    expect(runs.rows).toEqual([{ trigger: 'push', image_ref: `${reg.host}/lib/harbored@${b.digest}` }]);
  });

  it("a real docker-registry's notifications (endpoint with an evidence:write token) start the scan of what was pushed", async () => {
    await call('PUT', '/scanner/config', { key: 'auto_scan.enabled', value: 'true' });
    await call('PUT', '/scanner/config', { key: 'auto_scan.triggers', value: 'push' });
    const { authorization } = await bearer(h, ['evidence:write']);
    const notifying = await startRegistry({ notify: { url: `${env.STELLA_API_URL}/events/push`, authorization } });
    try {
      // the API speaks plain HTTP to this registry only when told: this test's context lists it
      h.ctx.cfg.registry.insecureRegistries.push(notifying.host);
      const { digest } = await pushed('team/notified:1', notifying);
      let rows: { trigger: string; status: string; image: string }[] = [];
      for (let i = 0; i < 300 && !rows.some((r) => r.status === 'started'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        rows = await eventsOf(digest);
      }
      expect(rows).toContainEqual(expect.objectContaining({ trigger: 'push', status: 'started', image: `${notifying.host}/team/notified@${digest}` }));
      expect(await h.client.workflow.getHandle(scanWorkflowId('default', digest)).result()).toMatchObject({ phase: 'done' });
    } finally {
      await notifying.stop();
    }
  });

  it('stella events push <ref>: started (exit 0), digest mismatch (exit 7), ignored when auto-scan is off (exit 1)', async () => {
    await call('PUT', '/scanner/config', { key: 'auto_scan.enabled', value: 'true' });
    await call('PUT', '/scanner/config', { key: 'auto_scan.triggers', value: 'push' });
    const { digest, ref } = await pushed('team/cli:1');
    const ok = await runStella(env, '--format', 'json', 'events', 'push', ref);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ status: 'started', artifactDigest: digest });
    await h.client.workflow.getHandle(JSON.parse(ok.stdout).workflowId).result();
    const wrong = await runStella(env, 'events', 'push', ref, '--digest', D('f'));
    expect(wrong.code).toBe(7);
    expect(wrong.stderr).toContain(`not the pushed digest ${D('f')}`);
    const bad = await runStella(env, 'events', 'push', ref, '--digest', 'nope');
    expect(bad.code).toBe(2);
    await call('PUT', '/scanner/config', { key: 'auto_scan.enabled', value: 'false' });
    const off = await runStella(env, 'events', 'push', ref);
    expect(off.code).toBe(1);
    expect(off.stdout).toMatch(/^ignored: auto_scan.enabled is false/);
  });
});
