/**
 * Upgrade safety (issue 16): every saved history in test/histories/ replays against the workflows bundle the
 * worker runs (WORKFLOWS_PATH), so a non-deterministic change to a workflow fails here before it reaches a
 * running execution; and every workflow type workflows/ exports has a saved history. See docs/upgrading-workflows.md.
 *
 * Re-record (after a deliberate, patched change or a new workflow type):
 *   STELLA_RECORD_HISTORIES=1 npx vitest run test/workflow-replay.test.ts
 */
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKFLOWS_PATH } from '../workers/worker';
import * as workflows from '../workflows';
import { harness, type Harness } from './support/context';
import { recordAllHistories, savedHistories } from './support/histories';

const RECORD = process.env.STELLA_RECORD_HISTORIES === '1';

describe.runIf(RECORD)('record workflow histories (STELLA_RECORD_HISTORIES=1)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });
  it('runs each workflow type once and saves its history', async () => {
    const files = await recordAllHistories(h, () => harness({ blob: 'fs' }));
    expect(files.length).toBeGreaterThan(0);
  }, 600_000);
});

describe('saved workflow histories replay against the current workflows', () => {
  let bundle: { code: string };
  beforeAll(async () => {
    // The bundle the worker builds from WORKFLOWS_PATH (fresh: local edits to workflows/ are what is checked).
    bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
  }, 180_000);

  it('every workflow type exported by workflows/ has at least one saved history', () => {
    const recorded = new Set(savedHistories().map((s) => s.workflowType));
    const types = Object.entries(workflows)
      .filter(([, v]) => typeof v === 'function')
      .map(([k]) => k)
      .sort();
    expect(types.length).toBeGreaterThan(10);
    expect(types.filter((t) => !recorded.has(t))).toEqual([]);
  });

  it('every saved history replays without a nondeterminism error', async () => {
    const saved = savedHistories();
    const failures: string[] = [];
    let replayed = 0;
    for await (const r of Worker.runReplayHistories(
      { workflowBundle: bundle, replayName: 'stella-workflow-replay' },
      saved.map((s) => ({ workflowId: s.workflowId, history: s.history })),
    )) {
      replayed++;
      if (r.error) failures.push(`${r.workflowId}: ${r.error.name}: ${r.error.message}`);
    }
    expect(replayed).toBe(saved.length);
    expect(failures).toEqual([]);
  }, 300_000);
});
