import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { NativeConnection } from '@temporalio/worker';
import { harness, type Harness } from './support/context';
import { buildOciFixture, type OciFixture } from './support/oci-fixture';
import { countEvidence, TENANT } from './support/scan';
import { createActivities } from '../activities';
import { scanThenAttest } from '../workflows/scan';
import { scanWorkflowId } from '../src/temporal/names';
import { registerImage } from '../src/core/scan/catalogue';
import { setScannerConfig } from '../src/core/scan/config';
import { runTool } from '../src/core/scan/external';
import { createWorkerPair } from './support/queues';

/**
 * An external SBOM tool (engine syft) runs asynchronously: the activity keeps heartbeating while
 * it works, and cancelling the scan kills the tool and what it started. The stand-in never
 * finishes on its own; it records its pid and the pid of a child it spawned.
 */
let h: Harness;
let native: NativeConnection;
let fx: OciFixture;
const bin = mkdtempSync(join(tmpdir(), 'hung-syft-'));
const pids = join(bin, 'pids.json');

beforeAll(async () => {
  writeFileSync(
    join(bin, 'syft'),
    `#!/usr/bin/env node
const fs = require('node:fs');
if (process.argv[2] === '--version') { console.log('syft 0.0.0-hung'); process.exit(0); }
const child = require('node:child_process').spawn('sleep', ['600'], { stdio: 'ignore' });
fs.writeFileSync(${JSON.stringify(pids)}, JSON.stringify({ tool: process.pid, child: child.pid }));
setInterval(() => {}, 1000);
`,
  );
  chmodSync(join(bin, 'syft'), 0o755);
  process.env.PATH = `${bin}:${process.env.PATH}`;
  h = await harness({ blob: 'fs', worker: false });
  native = await NativeConnection.connect({ address: h.ctx.cfg.temporal.address! });
  fx = await buildOciFixture({
    ref: 'hung:1',
    layers: [[{ path: 'app/package-lock.json', content: '{"name":"hung","lockfileVersion":3,"packages":{"":{"name":"hung"}}}' }]],
    archives: true,
  });
  await registerImage(h.ctx, TENANT, 'hung:1', fx.tarPath, 'tester');
  await setScannerConfig(h.ctx, TENANT, 'engine', 'syft');
});
afterAll(async () => {
  await fx?.cleanup();
  await native?.close();
  await h?.close();
});

/** Running (not gone, not a zombie waiting to be reaped). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('external scanner tools', () => {
  it('a tool that outlives its timeout is killed with its children', async () => {
    const script = join(bin, 'slow.sh');
    const marker = join(bin, 'slow.pid');
    writeFileSync(script, `#!/bin/sh\nsleep 600 &\necho $! > ${marker}\nwait\n`);
    chmodSync(script, 0o755);
    await expect(runTool(script, [], { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const child = Number(readFileSync(marker, 'utf8'));
    await until('the timed-out tool child to die', () => (alive(child) ? undefined : true), 15_000);
    expect(alive(child)).toBe(false);
  });

  it('heartbeats continue while the tool runs, and cancelling the scan kills it; nothing is stored', async () => {
    const taskQueue = h.ctx.cfg.temporal.taskQueue;
    const worker = await createWorkerPair({
      connection: native,
      taskQueue,
      workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') },
      activities: createActivities(h.ctx),
      // Deliver heartbeats (and so the cancel request) promptly instead of every ~48 s.
      maxHeartbeatThrottleInterval: '1s',
      shutdownGraceTime: '2s',
    });
    const running = worker.run();
    try {
      const handle = await h.client.workflow.start(scanThenAttest, {
        taskQueue,
        workflowId: scanWorkflowId(TENANT, fx.digest),
        args: [{ tenant: TENANT, artifactDigest: fx.digest, imageRef: 'hung:1', requestedBy: 'tester', trigger: 'manual' }],
      });
      const p = await until('the tool to start', () =>
        existsSync(pids) ? (JSON.parse(readFileSync(pids, 'utf8')) as { tool: number; child: number }) : undefined,
      );
      expect(alive(p.tool)).toBe(true);

      // The event loop is free while the tool runs: the SBOM activity's heartbeat time keeps moving.
      const beat = async () => (await handle.describe()).raw.pendingActivities?.[0]?.lastHeartbeatTime?.seconds?.toString();
      const first = await until('a first heartbeat', beat);
      await until('a later heartbeat', async () => {
        const b = await beat();
        return b && b !== first ? b : undefined;
      });
      expect(alive(p.tool)).toBe(true);

      await handle.cancel();
      await until('the tool to be killed', () => (alive(p.tool) || alive(p.child) ? undefined : true), 30_000);
      expect([alive(p.tool), alive(p.child)]).toEqual([false, false]);
      await expect(handle.result()).rejects.toThrow();
      expect(await countEvidence(h)).toEqual({});
    } finally {
      worker.shutdown();
      await running;
    }
  });
});
