#!/usr/bin/env node
// Screenshots of a promotion blocked on missing evidence in the Temporal Web UI (docs/img/), taken
// with headless Chromium against a throwaway `stella dev up` stack. Not a CI test: run it by hand
// after changing what promotions show in the UI.
//
//   node --experimental-websocket scripts/temporal-ui-screenshot.mjs   # Node 20; needs chromium, the temporal CLI, PostgreSQL
//
// CHROMIUM=/path/to/chrome overrides the browser; OUT_DIR the output directory (default docs/img).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = decodeURIComponent(new URL('../', import.meta.url).pathname);
const outDir = process.env.OUT_DIR ?? join(root, 'docs/img');
const chromium = process.env.CHROMIUM ?? 'chromium';

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const dataDir = mkdtempSync(join(tmpdir(), 'stella-ui-shot-'));
const [apiPort, temporalPort, uiPort, pgPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const env = {
  ...process.env,
  STELLA_DATA_DIR: dataDir,
  STELLA_API_PORT: String(apiPort),
  STELLA_DEV_TEMPORAL_PORT: String(temporalPort),
  STELLA_DEV_TEMPORAL_UI_PORT: String(uiPort),
  STELLA_DEV_PG_PORT: String(pgPort),
  STELLA_LOG_LEVEL: 'warn',
};
for (const k of ['STELLA_TEMPORAL_ADDRESS', 'DATABASE_URL', 'STELLA_API_URL', 'STELLA_TOKEN', 'TEMPORAL_ADDRESS']) delete env[k];

function stella(...args) {
  const r = spawnSync(process.execPath, [join(root, 'bin/stella.mjs'), ...args], { env, encoding: 'utf8', cwd: root });
  if (r.status !== 0 && r.status !== 8) throw new Error(`stella ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Headless Chromium driven over the DevTools protocol: load the page, let the single-page app fetch
 * and render for `settleMs` of real time (a running workflow's page keeps polling, so it never goes
 * idle), then capture. Needs a global WebSocket (Node 22, or Node 20 with --experimental-websocket).
 */
async function shoot(url, file, height, settleMs = 12_000) {
  const port = await freePort();
  const profile = mkdtempSync(join(tmpdir(), 'stella-ui-chromium-'));
  const browser = spawn(
    chromium,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--hide-scrollbars',
      `--remote-debugging-port=${port}`,
      `--user-data-dir=${profile}`,
      `--window-size=1440,${height}`,
      'about:blank',
    ],
    { stdio: 'ignore' },
  );
  try {
    let target;
    for (let i = 0; i < 100 && !target; i++) {
      target = await fetch(`http://127.0.0.1:${port}/json/list`)
        .then((r) => r.json())
        .then((l) => l.find((t) => t.type === 'page'))
        .catch(() => undefined);
      if (!target) await new Promise((r) => setTimeout(r, 200));
    }
    if (!target) throw new Error('chromium did not open its DevTools port');
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((r, j) => {
      ws.onopen = r;
      ws.onerror = j;
    });
    let id = 0;
    const pending = new Map();
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.id && pending.has(msg.id)) pending.get(msg.id)(msg);
    };
    const send = (method, params = {}) =>
      new Promise((resolve) => {
        const n = ++id;
        pending.set(n, resolve);
        ws.send(JSON.stringify({ id: n, method, params }));
      });
    await send('Emulation.setDeviceMetricsOverride', { width: 1440, height, deviceScaleFactor: 1, mobile: false });
    await send('Page.navigate', { url });
    await new Promise((r) => setTimeout(r, settleMs));
    const shot = await send('Page.captureScreenshot', { format: 'png' });
    if (!shot.result?.data) throw new Error(`no screenshot of ${url}: ${JSON.stringify(shot.error ?? {})}`);
    writeFileSync(file, Buffer.from(shot.result.data, 'base64'));
    ws.close();
    console.log(`wrote ${file}`);
  } finally {
    const exited = new Promise((r) => browser.once('exit', r));
    browser.kill();
    await exited;
    rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
  }
}

try {
  console.log(`starting a dev stack in ${dataDir} …`);
  stella('dev', 'up');
  const digest = `sha256:${createHash('sha256')
    .update(`registry.example/payments@${randomBytes(8).toString('hex')}`)
    .digest('hex')}`;
  const started = JSON.parse(
    stella('promotion', 'start', '--artifact', digest, '--from', 'staging', '--to', 'prod', '--image', 'registry.example/payments:1.4.2', '--format', 'json'),
  );
  let status;
  for (let i = 0; i < 60; i++) {
    status = JSON.parse(stella('promotion', 'status', started.id, '--format', 'json'));
    if (status.state === 'waiting-evidence') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (status?.state !== 'waiting-evidence') throw new Error(`promotion ${started.id} did not block on evidence (state ${status?.state})`);
  console.log(`blocked promotion ${status.id}: ${status.temporalUiUrl}`);
  mkdirSync(outDir, { recursive: true });
  await shoot(status.temporalUiUrl, join(outDir, 'temporal-ui-blocked-promotion.png'), 1100);
  // The "User Metadata" tab: static summary and details, and the current details (Markdown).
  await shoot(`${status.temporalUiUrl}/user-metadata`, join(outDir, 'temporal-ui-current-details.png'), 1300);
  // Search attributes (StellaMissingEvidence) and the memo.
  await shoot(`${status.temporalUiUrl}/metadata`, join(outDir, 'temporal-ui-promotion-details.png'), 1300);
  const query = encodeURIComponent(`StellaMissingEvidence = 'sbom'`);
  await shoot(`http://127.0.0.1:${uiPort}/namespaces/default/workflows?query=${query}`, join(outDir, 'temporal-ui-missing-evidence-filter.png'), 700);
} finally {
  spawnSync(process.execPath, [join(root, 'bin/stella.mjs'), 'dev', 'down'], { env, stdio: 'ignore' });
  rmSync(dataDir, { recursive: true, force: true });
}
