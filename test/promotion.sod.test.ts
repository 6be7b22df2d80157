import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { apiFor } from './support/api';
import { runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { workflowBundle } from './support/time-skipping';
import { waitFor } from './support/promotion';
import { historyFromFile } from './support/history';
import { SIGNING_PURPOSE, TOKEN_PURPOSE } from '../src/core/keys';
import { mintToken, type Scope } from '../src/crypto/tokens';
import { mintActionToken, type ActionClaims } from '../src/crypto/action-tokens';
import { decideAction, mintPromotionActionToken } from '../src/core/promotion/actions';
import { policyDiff } from '../src/core/promotion/policy-diff';
import { sha256Digest } from '../src/lib/hash';

const TENANT = 'default';
const artifact = () => sha256Digest(`registry.example/app@${randomBytes(8).toString('hex')}`);

/**
 * Issue 13: separation of duties (policy:admin for policies, no self-approval, one approval per
 * person) and no way around stella's checks through Temporal (approve/abort/retry need an action
 * token the API mints from the caller's verified identity; everything else is refused and audited).
 */
describe('promotion separation of duties (real Temporal, PostgreSQL)', () => {
  let h: Harness;
  let app: FastifyInstance;
  const tokens = new Map<string, string>();
  const tokenOf = async (sub: string, scopes: Scope[]) => {
    const key = `${sub}:${scopes.join(',')}`;
    if (!tokens.has(key)) tokens.set(key, await mintToken(h.ctx.keys, { sub, tenant: TENANT, scopes, ttlSeconds: 900 }, { purpose: TOKEN_PURPOSE }));
    return tokens.get(key)!;
  };
  const as = (sub: string, scopes: Scope[] = ['promotion:read', 'promotion:write']) => {
    return async (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => {
      const r = await app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${await tokenOf(sub, scopes)}` },
        ...(payload !== undefined ? { payload: payload as never } : {}),
      });
      return { status: r.statusCode, body: r.json() as any };
    };
  };
  const auditRows = async (action: string, target: string) =>
    (await h.ctx.db.query(`SELECT actor, action, reason, details FROM audit_log WHERE action=$1 AND target=$2 ORDER BY id`, [action, target])).rows;
  const policyAdmin = as('policy-owner', ['policy:admin', 'promotion:read']);

  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
    app = await apiFor(h);
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('promotion:write cannot change a policy (403, nothing stored); policy:admin can, each version audited with a diff', async () => {
    const writer = as('ci-pipeline');
    const denied = await writer('PUT', '/promotion-policies/prod-sod', { document: '{"requirements":[],"requireApproval":false}' });
    expect(denied.status).toBe(403);
    expect(denied.body.detail).toMatch(/policy:admin/);
    expect((await h.ctx.db.query(`SELECT count(*)::int AS n FROM promotion_policies WHERE env='prod-sod'`)).rows[0].n).toBe(0);

    const v1 = await policyAdmin('PUT', '/promotion-policies/prod-sod', { document: 'requireApproval: true\n' });
    expect(v1).toMatchObject({ status: 200, body: { version: 1, changed: true } });
    const v2 = await policyAdmin('PUT', '/promotion-policies/prod-sod', { document: 'requirements: []\nrequireApproval: true\napprovals: 2\n' });
    expect(v2).toMatchObject({ status: 200, body: { version: 2, changed: true } });
    // admin implies policy:admin
    const v3 = await as('root', ['admin'])('PUT', '/promotion-policies/prod-sod', { document: 'requirements: []\nrequireApproval: false\n' });
    expect(v3).toMatchObject({ status: 200, body: { version: 3 } });

    const audit = await auditRows('promotion.policy.set', 'env:prod-sod');
    expect(audit.map((a) => a.actor)).toEqual(['policy-owner', 'policy-owner', 'root']);
    expect(audit[0].details).toMatchObject({ version: 1, previousVersion: null, diff: [{ path: 'requireApproval', from: false, to: true }] });
    expect(audit[1].details).toMatchObject({ version: 2, previousVersion: 1, previousChecksum: v1.body.checksum, checksum: v2.body.checksum });
    const diff2 = audit[1].details.diff as { path: string; from?: unknown; to?: unknown }[];
    expect(diff2).toContainEqual({ path: 'approvals', from: 1, to: 2 });
    expect(diff2).toContainEqual({ path: 'requirements/0', from: expect.objectContaining({ kind: 'sbom' }) });
    expect(diff2.some((d) => d.path === 'requireApproval')).toBe(false);
    expect(audit[2].details.diff).toEqual([
      { path: 'approvals', from: 2, to: 1 },
      { path: 'requireApproval', from: true, to: false },
    ]);
  });

  it('approval: not by the requester, once per approver, never through Temporal directly; a proper approval via the API promotes', async () => {
    const put = await policyAdmin('PUT', '/promotion-policies/sod', { document: 'requirements: []\nrequireApproval: true\napprovals: 2\nwaitDeadline: 2h\n' });
    expect(put.status).toBe(200);
    const alice = as('alice');
    const digest = artifact();
    const start = await alice('POST', '/promotions', { artifact: digest, from: 'staging', to: 'sod' });
    expect(start.status).toBe(202);
    const id = start.body.id as string;
    const promotionId = start.body.promotionId as string;
    const status = () => alice('GET', `/promotions/${id}`).then((r) => r.body);
    const waiting = await waitFor(status, (s) => s.state === 'waiting-approval', 'waiting-approval');
    // The status names the policy version (and checksum) the promotion was evaluated against.
    expect(waiting.policy).toEqual({ env: 'sod', version: 1, checksum: put.body.checksum });
    expect(waiting.approvalsRequired).toBe(2);

    // The requester cannot approve their own promotion.
    const self = await alice('POST', `/promotions/${id}/approve`, { comment: 'mine' });
    expect(self.status).toBe(403);
    expect(self.body.detail).toMatch(/alice requested promotion .* cannot approve it/);
    expect(await auditRows('promotion.approve.rejected', id)).toMatchObject([{ actor: 'alice', details: { verified: true, channel: 'update' } }]);

    // Straight to Temporal (what the Web UI or `temporal workflow signal/update` sends).
    const handle = h.client.workflow.getHandle(id);
    await handle.signal('approve', { by: 'anyone-with-ui-access' });
    const forgedKey = await h.ctx.keys.signer((await h.ctx.keys.active(SIGNING_PURPOSE)).kid);
    const tokenKey = await h.ctx.keys.signer((await h.ctx.keys.active(TOKEN_PURPOSE)).kid);
    const claims = (sub: string): ActionClaims => ({ sub, tenant: TENANT, promotionId, workflowId: id, action: 'approve' });
    const attempts: [string, unknown][] = [
      ['made-up approver, no token', { by: 'mallory' }],
      ['forged (wrong key)', { by: 'mallory', token: await mintActionToken(forgedKey, claims('mallory')) }],
      ['expired', { by: 'mallory', token: await mintActionToken(tokenKey, claims('mallory'), { now: new Date(Date.now() - 3600_000) }) }],
      ['API-token shaped', { by: 'mallory', token: await tokenOf('mallory', ['admin']) }],
    ];
    for (const [what, payload] of attempts) {
      const err = await handle.executeUpdate('approve', { args: [payload] }).catch((e) => e);
      expect(err, what).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((err as WorkflowUpdateFailedError).cause?.message, what).toMatch(/approve refused/);
    }
    // Someone else's valid token, claimed as another name: refused under the token's subject.
    const bobsToken = await mintPromotionActionToken(h.ctx.keys, claims('bob'));
    const spoof = await handle.executeUpdate('approve', { args: [{ by: 'carol', token: bobsToken }] }).catch((e) => e);
    expect((spoof as WorkflowUpdateFailedError).cause?.message).toMatch(/claimed approver carol is not the token's subject bob/);
    // Even with a valid token a signal never approves (approval is an update).
    await handle.signal('approve', { by: 'bob', token: bobsToken });
    // A retry Update from the UI is refused and audited too.
    const retry = await handle.executeUpdate('retry', { args: [{ by: 'ui-user' }] }).catch((e) => e);
    expect(retry).toBeInstanceOf(WorkflowUpdateFailedError);

    const rejected = await waitFor(
      () => auditRows('promotion.approve.rejected', id),
      (rows) => rows.length === 8,
      'audited rejections',
    );
    const actors = rejected.map((r) => `${r.actor}:${r.details.channel}:${r.details.verified}`);
    expect(actors).toEqual(
      expect.arrayContaining([
        'alice:update:true',
        'unverified:anyone-with-ui-access:signal:false',
        'unverified:mallory:update:false',
        'bob:update:true',
        'bob:signal:true',
      ]),
    );
    expect(actors.filter((a) => a === 'unverified:mallory:update:false')).toHaveLength(4);
    const reasons = rejected.map((r) => r.reason).join('\n');
    expect(reasons).toMatch(/no action token/);
    expect(reasons).toMatch(/expired/);
    expect(reasons).toMatch(/not the token's subject/);
    expect(reasons).toMatch(/signal/);
    expect(await auditRows('promotion.retry.rejected', id)).toMatchObject([{ actor: 'unverified:ui-user', details: { verified: false } }]);
    expect(await auditRows('promotion.approve', id)).toEqual([]);
    const still = await status();
    expect(still).toMatchObject({ state: 'waiting-approval', approvals: [], temporalStatus: 'RUNNING' });

    // Proper approvals through the API: bob (1 of 2), bob again (409), carol (2 of 2 → promoted).
    const bob = as('bob');
    const first = await bob('POST', `/promotions/${id}/approve`, { comment: 'reviewed' });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ state: 'waiting-approval', approvals: [{ by: 'bob', comment: 'reviewed' }] });
    expect(first.body.message).toMatch(/approved by bob; promotion is waiting-approval \(1\/2 approvals\)/);
    const twice = await bob('POST', `/promotions/${id}/approve`, {});
    expect(twice.status).toBe(409);
    expect(twice.body.detail).toMatch(/bob has already approved/);
    const second = await as('carol')('POST', `/promotions/${id}/approve`, {});
    expect(second.status).toBe(200);
    expect(second.body.state).toBe('promoted');
    expect(second.body.approvals.map((a: { by: string }) => a.by)).toEqual(['bob', 'carol']);

    const done = await waitFor(status, (s) => s.temporalStatus === 'COMPLETED', 'completion');
    expect(done).toMatchObject({ state: 'promoted', policy: { env: 'sod', version: 1, checksum: put.body.checksum } });
    expect((await auditRows('promotion.approve', id)).map((a) => [a.actor, a.details.verified])).toEqual([
      ['bob', true],
      ['carol', true],
    ]);
    const row = await h.ctx.db.query('SELECT policy_env, policy_version, policy_checksum FROM promotions WHERE id=$1', [promotionId]);
    expect(row.rows[0]).toEqual({ policy_env: 'sod', policy_version: 1, policy_checksum: put.body.checksum });
    const final = await h.ctx.db.query(`SELECT details FROM audit_log WHERE action='promotion.promoted' AND target=$1`, [digest]);
    expect(final.rows[0].details.policy).toEqual({ env: 'sod', version: 1, checksum: put.body.checksum });
  });

  it('a promotion started straight through Temporal (made-up requester) cannot be approved', async () => {
    const digest = artifact();
    const workflowId = `promotion-default-sod-${digest.slice(7)}`;
    await h.client.workflow.start('promotion', {
      taskQueue: h.ctx.cfg.temporal.taskQueue,
      workflowId,
      args: [{ tenant: TENANT, artifactDigest: digest, fromEnv: 'staging', toEnv: 'sod', requestedBy: 'someone-else' }],
    });
    await waitFor(
      () => as('erin')('GET', `/promotions/${workflowId}`).then((r) => r.body),
      (s) => s.state === 'waiting-approval',
      'waiting-approval',
    );
    const r = await as('erin')('POST', `/promotions/${workflowId}/approve`, {});
    expect(r.status).toBe(403);
    expect(r.body.detail).toMatch(/was not requested through stella/);
    expect(await auditRows('promotion.approve.rejected', workflowId)).toMatchObject([{ actor: 'erin', details: { verified: true } }]);
    await as('erin')('POST', `/promotions/${workflowId}/abort`, { reason: 'cleanup' });
  });

  it('abort: a signal from the UI does not abort; the CLI aborts through the update and shows the resulting state', async () => {
    await policyAdmin('PUT', '/promotion-policies/sod-abort', { document: 'requirements: []\nrequireApproval: true\n' });
    const digest = artifact();
    const start = await as('alice')('POST', '/promotions', { artifact: digest, to: 'sod-abort' });
    const id = start.body.id as string;
    await waitFor(
      () => as('alice')('GET', `/promotions/${id}`).then((r) => r.body),
      (s) => s.state === 'waiting-approval',
      'waiting-approval',
    );
    await h.client.workflow.getHandle(id).signal('abort', { by: 'ops', reason: 'from the UI' });
    await waitFor(
      () => auditRows('promotion.abort.rejected', id),
      (r) => r.length === 1,
      'audited abort signal',
    );
    expect((await h.client.workflow.getHandle(id).describe()).status.name).toBe('RUNNING');

    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const env = {
      STELLA_API_URL: `http://127.0.0.1:${port}`,
      STELLA_TOKEN: await tokenOf('dave', ['promotion:read', 'promotion:write']),
      STELLA_DATA_DIR: mkdtempSync(join(tmpdir(), 'cli-')),
      STELLA_TENANT: '',
    };
    const run = (...args: string[]) => runStella(env, ...args);
    const aborted = await run('promotion', 'abort', id, '--reason', 'wrong artifact');
    expect(aborted.stderr).toBe('');
    expect(aborted.code).toBe(0);
    expect(aborted.stdout).toMatch(/aborted by dave; promotion is aborted/);
    expect(aborted.stdout).toMatch(/policy\s+sod-abort version 1/);
    const again = await run('promotion', 'approve', id);
    expect(again.code).toBe(7); // CONFLICT
    expect(again.stderr).toMatch(/already aborted/);
    expect(await auditRows('promotion.abort', id)).toMatchObject([{ actor: 'dave', reason: 'wrong artifact', details: { verified: true } }]);

    // policy set: refused for promotion:write (exit 6), stored for policy:admin with the changes printed.
    const file = join(env.STELLA_DATA_DIR, 'policy.yaml');
    writeFileSync(file, 'requirements: []\nrequireApproval: true\napprovals: 2\n');
    const denied = await run('promotion', 'policy', 'set', '--env', 'sod-abort', '--file', file);
    expect(denied.code).toBe(6);
    expect(denied.stderr).toMatch(/policy:admin/);
    env.STELLA_TOKEN = await tokenOf('policy-owner', ['policy:admin']);
    const stored = await run('promotion', 'policy', 'set', '--env', 'sod-abort', '--file', file);
    expect(stored.code).toBe(0);
    expect(stored.stdout).toMatch(/stored policy for sod-abort: version 2 .*changes from version 1:\n {2}approvals: 1 → 2/);
  });

  it('saved histories (before action tokens, and with them) replay without nondeterminism (patched)', async () => {
    // v1: approve/abort/retry signals and a retry update as sent before action tokens; v2: a refused
    // signal and update from "the UI", then two signed approvals through the API.
    for (const f of ['history-v1-approve-signal.json', 'history-v1-abort-signal.json', 'history-v2-signed-approvals.json']) {
      // Recorded with `temporal workflow show --output json` from the workflow as it was before this change.
      const history = historyFromFile(JSON.parse(readFileSync(join(__dirname, 'fixtures', 'promotion', f), 'utf8')));
      await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, f);
    }
  });
});

describe('pure decisions', () => {
  const base = {
    op: 'approve' as const,
    channel: 'update' as const,
    tenant: 't',
    promotionId: 'p',
    workflowId: 'w',
    requestedBy: 'alice',
    state: 'waiting-approval' as const,
    approvers: ['bob'],
  };
  const v = {
    sub: 'carol',
    tenant: 't',
    promotionId: 'p',
    workflowId: 'w',
    action: 'approve' as const,
    jti: 'j',
    kid: 'k',
    issuedAt: new Date(),
    expiresAt: new Date(),
  };
  it('decideAction binds token to tenant, promotion, action and claimed name', () => {
    expect(decideAction(v, base)).toEqual({ ok: true, by: 'carol', jti: 'j' });
    expect(decideAction({ ...v, promotionId: 'other' }, base)).toMatchObject({ ok: false, code: 'FORBIDDEN' });
    expect(decideAction({ ...v, tenant: 'other' }, base)).toMatchObject({ ok: false, code: 'FORBIDDEN' });
    expect(decideAction({ ...v, action: 'abort' }, base)).toMatchObject({ ok: false, reason: /for abort, not approve/ });
    expect(decideAction(v, { ...base, claimedBy: 'dave' })).toMatchObject({ ok: false, verifiedAs: 'carol' });
    expect(decideAction({ ...v, sub: 'alice' }, base)).toMatchObject({ ok: false, code: 'FORBIDDEN' });
    expect(decideAction({ ...v, sub: 'bob' }, base)).toMatchObject({ ok: false, code: 'CONFLICT' });
    expect(decideAction(v, { ...base, state: 'waiting-evidence' })).toMatchObject({ ok: false, code: 'CONFLICT' });
    expect(decideAction(v, { ...base, channel: 'signal' })).toMatchObject({ ok: false, reason: /signal/ });
    expect(decideAction({ ...v, action: 'retry' }, { ...base, op: 'retry', channel: 'signal', state: 'waiting-evidence' })).toMatchObject({ ok: true });
  });
  it('policyDiff lists leaf changes with paths', () => {
    expect(policyDiff({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 3, 4] }, d: true })).toEqual([
      { path: 'b/c/1', from: 2, to: 3 },
      { path: 'b/c/2', to: 4 },
      { path: 'd', to: true },
    ]);
    expect(policyDiff({ x: 1 }, { x: 1 })).toEqual([]);
  });
});
