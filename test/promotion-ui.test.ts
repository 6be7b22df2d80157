import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { harness, type Harness } from './support/context';
import { apiFor } from './support/api';
import { storeAllEvidence, waitFor } from './support/promotion';
import { TOKEN_PURPOSE } from '../src/core/keys';
import { mintToken } from '../src/crypto/tokens';
import { sha256Digest } from '../src/lib/hash';
import { SA } from '../src/temporal/names';

/**
 * Issue 16 item 9: why a promotion waits is readable in the Temporal UI without running a query —
 * read back through the client's describe (static summary/details, memo, search attributes) and the
 * SDK's metadata query (current details, handler descriptions), for a promotion blocked on missing evidence.
 */
const TENANT = 'default';

interface WorkflowMetadata {
  definition?: {
    type?: string;
    queryDefinitions?: { name?: string; description?: string }[];
    signalDefinitions?: { name?: string; description?: string }[];
    updateDefinitions?: { name?: string; description?: string }[];
  };
  currentDetails?: string;
}

describe('a blocked promotion in the Temporal UI', () => {
  let h: Harness;
  let app: FastifyInstance;
  let auth: { authorization: string };
  const api = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const r = await app.inject({ method, url, headers: auth, ...(payload !== undefined ? { payload: payload as never } : {}) });
    return { status: r.statusCode, body: r.json() as any };
  };

  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
    app = await apiFor(h);
    const token = await mintToken(
      h.ctx.keys,
      { sub: 'ci-pipeline', tenant: TENANT, scopes: ['promotion:read', 'promotion:write', 'evidence:read'], ttlSeconds: 3600 },
      { purpose: TOKEN_PURPOSE },
    );
    auth = { authorization: `Bearer ${token}` };
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('shows summary, details, memo, missing-evidence attribute and handler descriptions; clears them once promoted', async () => {
    const digest = sha256Digest(`registry.example/ui@${randomBytes(8).toString('hex')}`);
    const start = await api('POST', '/promotions', { artifact: digest, from: 'staging', to: 'prod' });
    expect(start.status).toBe(202);
    const id: string = start.body.id;
    const blocked = await waitFor(
      () => api('GET', `/promotions/${id}`).then((r) => r.body),
      (s) => s.state === 'waiting-evidence',
      'waiting-evidence',
    );
    // `stella promotion status` prints this link (the API's STELLA_TEMPORAL_UI_URL, the dev UI by default).
    expect(blocked.temporalUiUrl).toBe(`http://127.0.0.1:8233/namespaces/default/workflows/${encodeURIComponent(id)}/${blocked.promotionId}`);

    const handle = h.client.workflow.getHandle(id);
    const d = await handle.describe();
    expect(await d.staticSummary()).toBe(`promote ${digest.slice(7, 19)} staging → prod (tenant default)`);
    const details = await d.staticDetails();
    expect(details).toContain(`\`${digest}\` from **staging** to **prod**`);
    expect(details).toContain(`stella promotion status ${id}`);

    expect(d.memo).toMatchObject({ state: 'waiting-evidence', missing: ['attestation', 'sbom', 'scan-report'], deadline: blocked.deadline });
    expect((d.memo as { nextStep: string }).nextStep).toContain(`stella scan image --image ${digest} --sbom-only`);
    expect((d.memo as { nextStep: string }).nextStep).toContain(`stella promotion retry ${id}`);
    expect(d.typedSearchAttributes.get(SA.missingEvidence)).toEqual(['attestation', 'sbom', 'scan-report']);
    expect(d.typedSearchAttributes.get(SA.promotionState)).toBe('waiting-evidence');

    // Operators filter by what is missing.
    const listed: string[] = [];
    await waitFor(
      async () => {
        listed.length = 0;
        for await (const w of h.client.workflow.list({ query: `StellaMissingEvidence = 'sbom' AND WorkflowId = '${id}'` })) listed.push(w.workflowId);
        return listed;
      },
      (l) => l.length === 1,
      'visible by StellaMissingEvidence',
    );

    // Current details (the UI's "Current Details") and handler descriptions, via the SDK's metadata query.
    const meta = (await handle.query('__temporal_workflow_metadata')) as WorkflowMetadata;
    const current = meta.currentDetails ?? '';
    expect(current).toMatch(/^\*\*State:\*\* waiting-evidence — waiting for evidence: /);
    expect(current).toContain(`**Deadline:** ${blocked.deadline}`);
    expect(current).toMatch(/\| sbom \| yes \| missing \| SBOM not found/);
    expect(current).toContain(`- \`sbom\`: \`stella scan image --image ${digest} --sbom-only\``);
    expect(current).toContain(`**Next step:**`);
    const described = (defs: { name?: string; description?: string }[] | undefined) => Object.fromEntries((defs ?? []).map((q) => [q.name, q.description]));
    expect(described(meta.definition?.queryDefinitions).state).toMatch(/each gate/);
    expect(described(meta.definition?.updateDefinitions)).toMatchObject({
      approve: expect.stringMatching(/action token/),
      retry: expect.any(String),
      abort: expect.any(String),
    });
    expect(described(meta.definition?.signalDefinitions).approve).toMatch(/Always refused/);

    // The wait timer and the local activities carry summaries (what the UI shows instead of "1").
    const history = await handle.fetchHistory();
    const timer = history.events?.find((e) => e.timerStartedEventAttributes);
    expect(timer?.userMetadata?.summary?.data).toBeDefined();
    expect(Buffer.from(timer!.userMetadata!.summary!.data!).toString()).toMatch(
      /waiting for evidence: .*sbom.* \(until the deadline, or stella promotion retry\)/,
    );
    const evaluate = history.events?.find((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity' && e.userMetadata?.summary);
    expect(Buffer.from(evaluate!.userMetadata!.summary!.data!).toString()).toContain('evaluate gates (attempt 1)');

    // Evidence stored, retried: promoted, nothing missing any more.
    await storeAllEvidence(h.ctx, TENANT, digest);
    const retried = await api('POST', `/promotions/${id}/retry`);
    expect(retried.body.state).toBe('promoted');
    await handle.result();
    const done = await handle.describe();
    expect(done.memo).toMatchObject({ state: 'promoted', nextStep: 'none: promoted' });
    // The server drops an upserted empty list, as it does for search attributes: nothing missing.
    expect((done.memo as { missing?: string[] }).missing ?? []).toEqual([]);
    expect(done.typedSearchAttributes.get(SA.missingEvidence) ?? []).toEqual([]);
  });
});
