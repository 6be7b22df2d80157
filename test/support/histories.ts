/**
 * Saved workflow histories for the replay test (test/workflow-replay.test.ts): one finished run of
 * every workflow type, recorded against the real servers with `STELLA_RECORD_HISTORIES=1` and kept
 * in test/histories/<workflowType>-<variant>.json (the JSON `temporal workflow show --output json` writes, plus
 * the run's `workflowId`: replay must use it, since workflows derive child and run ids from it).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { sha256Digest } from '../../src/lib/hash';
import { apiFor, bearer } from './api';
import type { Harness } from './context';
import { historyFromFile, historyToFile } from './history';
import { storeAllEvidence, waitFor } from './promotion';
import { buildOciFixture, packTar, realSystemLayer } from './oci-fixture';

export const HISTORIES_DIR = join(import.meta.dirname, '..', 'histories');

export interface SavedHistory {
  file: string;
  workflowType: string;
  workflowId: string;
  history: ReturnType<typeof historyFromFile>;
}

/** Every saved history; its workflow type is read from the first event, not the file name. */
export function savedHistories(dir = HISTORIES_DIR): SavedHistory[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const json = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { workflowId?: string };
      const history = historyFromFile(json);
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      if (!started?.workflowType?.name) throw new Error(`${file}: first event is not WorkflowExecutionStarted`);
      return { file, workflowType: started.workflowType.name, workflowId: json.workflowId ?? file.replace(/\.json$/, ''), history };
    });
}

/** Waits for the run to finish (any outcome) and saves its full history as <workflowType>-<variant>.json. */
export async function saveHistory(h: Harness, workflowId: string, variant: string, runId?: string): Promise<string> {
  const handle = h.client.workflow.getHandle(workflowId, runId);
  await handle.result().catch(() => undefined);
  const desc = await handle.describe();
  const history = await handle.fetchHistory();
  mkdirSync(HISTORIES_DIR, { recursive: true });
  const file = `${desc.type}-${variant}.json`;
  writeFileSync(join(HISTORIES_DIR, file), `${JSON.stringify({ workflowId, ...(historyToFile(history) as object) }, null, 1)}\n`);
  return file;
}

type Call = (method: 'GET' | 'POST', url: string, payload?: unknown) => Promise<{ status: number; body: any }>;

function caller(app: FastifyInstance, auth: Record<string, string>): Call {
  return async (method, url, payload) => {
    const r = await app.inject({ method, url, headers: auth, ...(payload !== undefined ? { payload: payload as never } : {}) });
    const body = r.body ? JSON.parse(r.body) : null;
    if (r.statusCode >= 400) throw new Error(`${method} ${url}: ${r.statusCode} ${r.body}`);
    return { status: r.statusCode, body };
  };
}

/**
 * Runs every workflow type once, small inputs, the way stella starts it (API routes, or the schedule's
 * own arguments for scheduled-only types), and saves each history. Returns the files written.
 */
export async function recordAllHistories(h: Harness, fresh: () => Promise<Harness>): Promise<string[]> {
  const app = await apiFor(h);
  const tenant = 'default';
  const call = caller(app, await bearer(h, ['admin'], tenant));
  const q = h.ctx.cfg.temporal.taskQueue;
  const files: string[] = [];
  const suffix = () => randomBytes(4).toString('hex');
  try {
    // Evidence: a small directory ingested in two batches, then the archive (tar) ingest.
    const dir = mkdtempSync(join(inject('scratch'), 'hist-ingest-'));
    for (let i = 0; i < 3; i++) writeFileSync(join(dir, `item-${i}.json`), JSON.stringify({ i, note: 'history fixture' }));
    const artifact = sha256Digest(`registry.example/history@${suffix()}`);
    const ingest = await call('POST', '/evidence/ingest', { path: dir, artifact, kind: 'sbom', mediaType: 'application/json', batchSize: 2 });
    files.push(await saveHistory(h, ingest.body.workflowId, 'dir'));

    const tarPath = join(inject('scratch'), `hist-${suffix()}.tar`);
    writeFileSync(
      tarPath,
      await packTar([
        { name: 'a.json', type: 'file', body: Buffer.from('{"a":1}') },
        { name: 'b.json', type: 'file', body: Buffer.from('{"b":2}') },
      ]),
    );
    const archive = await call('POST', '/evidence/ingest', { path: tarPath, artifact, kind: 'sbom', mediaType: 'application/json', batchSize: 1 });
    files.push(await saveHistory(h, archive.body.workflowId, 'tar'));

    const verify = await call('POST', '/evidence/verify', { mode: 'full', batchSize: 2 });
    files.push(await saveHistory(h, verify.body.workflowId, 'full'));

    const rebuild = await call('POST', '/evidence/index/rebuild');
    files.push(await saveHistory(h, rebuild.body.workflowId, 'default'));

    // Anchoring and the nightly replay: started with what the API / schedule give them.
    const anchor = await call('POST', '/evidence/anchors?wait=30', { reason: 'history fixture' });
    files.push(await saveHistory(h, anchor.body.workflowId, 'manual'));

    // Retention: purge (dry run), tier move, and the daily schedule with its child workflows.
    const purge = await call('POST', '/evidence/retention/purge', { dryRun: true, batchSize: 2 });
    files.push(await saveHistory(h, purge.body.workflowId, 'dry-run'));
    const tier = await call('POST', '/evidence/retention/tier-move', { batchSize: 2 });
    files.push(await saveHistory(h, tier.body.workflowId, 'default'));
    const daily = await h.client.workflow.start('retentionDaily', {
      taskQueue: q,
      workflowId: `history-retention-daily-${suffix()}`,
      args: [{ actor: 'retention-schedule' }],
    });
    files.push(await saveHistory(h, daily.workflowId, 'schedule'));

    const nightly = await call('POST', '/replay/nightly');
    files.push(await saveHistory(h, nightly.body.workflowId, 'default'));

    // Backup; its restore refused by a locker that holds evidence, and a full restore into an empty one.
    const backupRoot = mkdtempSync(join(inject('scratch'), 'hist-backups-'));
    const backup = await call('POST', '/backups', { outputDir: backupRoot });
    files.push(await saveHistory(h, backup.body.workflowId, 'default'));
    const refused = await call('POST', '/evidence/restore', { backupId: backup.body.backupId, backupDir: backupRoot });
    files.push(await saveHistory(h, refused.body.workflowId, 'refused-nonempty'));
    const empty = await fresh();
    const emptyApp = await apiFor(empty);
    try {
      const r = await caller(emptyApp, await bearer(empty, ['admin'], tenant))('POST', '/evidence/restore', {
        backupId: backup.body.backupId,
        backupDir: backupRoot,
      });
      files.push(await saveHistory(empty, r.body.workflowId, 'full'));
    } finally {
      await emptyApp.close();
      await empty.close();
    }

    // Promotion with every piece of evidence in place, and the bench no-op.
    const digest = sha256Digest(`registry.example/promote@${suffix()}`);
    await storeAllEvidence(h.ctx, tenant, digest);
    const promo = await call('POST', '/promotions?wait=true&timeout=60', { artifact: digest, from: 'staging', to: 'prod' });
    files.push(await saveHistory(h, promo.body.id, 'evidence-present'));
    // A promotion that waits for missing evidence (the wait timer, memo and StellaMissingEvidence), then is retried.
    const waited = sha256Digest(`registry.example/promote-wait@${suffix()}`);
    const blocked = await call('POST', '/promotions', { artifact: waited, from: 'staging', to: 'prod' });
    await waitFor(
      () => call('GET', `/promotions/${blocked.body.id}`).then((r) => r.body as { state: string }),
      (b) => b.state === 'waiting-evidence',
      'waiting-evidence',
    );
    await storeAllEvidence(h.ctx, tenant, waited);
    await call('POST', `/promotions/${blocked.body.id}/retry`);
    files.push(await saveHistory(h, blocked.body.id, 'waited-then-retried'));
    const noop = await h.client.workflow.start('promotionBenchNoop', { taskQueue: q, workflowId: `history-bench-noop-${suffix()}` });
    files.push(await saveHistory(h, noop.workflowId, 'default'));

    // Scan of a small OCI layout (this machine's dpkg status and os-release).
    const fx = await buildOciFixture({ ref: 'history:1', layers: [await realSystemLayer()] });
    try {
      const scan = await call('POST', '/scans', { image: fx.dir, force: true });
      files.push(await saveHistory(h, scan.body.workflowId, 'oci-layout', scan.body.runId));
    } finally {
      await fx.cleanup();
    }
  } finally {
    await app.close();
  }
  return files;
}
