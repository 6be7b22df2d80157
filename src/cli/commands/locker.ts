import { promises as fsp } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { action, ctxOf, requireDigest, group } from '../common';
import { API_CODE_TO_EXIT, CliError, EXIT } from '../exit';
import { print, renderTable, renderKv, shortDigest, humanBytes } from '../output';
import { qs, type ApiClient } from '../client';
import { progressBar } from '../progress';
import {
  BulkIngestStarted,
  BulkIngestStatus,
  Chain,
  IndexLookup,
  IndexStatus,
  LockerStatus,
  Acknowledgement,
  AcknowledgementList,
  MarkCorruptedResult,
  OpStarted,
  OptimizeResult,
  type Probe,
  Provenance,
  RebuildStatus,
  RebuildTotals,
  RecoverResult,
  RefreshResult,
  RetryStoreResult,
  StorageAnalyze,
  StorageCheck,
  StorageStats,
  StorageTest,
  StoreHealth,
  TombstoneResult,
} from '../../contracts/locker';

// Evidence Locker runbook commands beyond put/get/list/verify (those are in ./evidence.ts).

const KINDS = ['sbom', 'scan-report', 'vex', 'attestation', 'replay-bundle', 'log', 'other'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function positiveInt(v: string, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${what} must be a positive integer, got ${JSON.stringify(v)}`, EXIT.USAGE);
  return n;
}

function probeTable(stores: Probe[]): string {
  return renderTable(stores, [
    { header: 'STORE', get: (s) => s.role },
    { header: 'KIND', get: (s) => s.kind },
    { header: 'LOCATION', get: (s) => s.location },
    { header: 'CONNECT', get: (s) => (s.connectivityMs === null ? 'FAIL' : `${s.connectivityMs} ms`), align: 'right' },
    { header: 'WRITE', get: (s) => stepCell(s, 'write'), align: 'right' },
    { header: 'READ', get: (s) => stepCell(s, 'read'), align: 'right' },
    { header: 'DELETE', get: (s) => stepCell(s, 'delete'), align: 'right' },
    { header: 'RESULT', get: (s) => (s.ok ? 'ok' : `FAIL: ${s.error}`) },
  ]);
}
const stepCell = (s: Probe, op: string) => {
  const st = s.steps.find((x) => x.op === op);
  return !st ? '-' : st.ok ? `${st.ms} ms` : 'FAIL';
};

export function registerLockerCommands(program: Command): void {
  const ev = group(program, 'evidence', 'the Evidence Locker');
  for (const register of [
    statusCommand,
    storeCommands,
    provenanceCommands,
    chainCommand,
    indexCommands,
    storageCommands,
    markCorruptedCommand,
    acknowledgeCommand,
    tombstoneCommand,
    recoverCommand,
    retryStoreCommand,
    ingestCommand,
  ])
    register(ev);
}

// ---- overview: status, store health, provenance, chain ------------------------------------

function statusCommand(ev: Command): void {
  ev.command('status')
    .description('locker overview: counts by kind/state, bytes, store health, index size, latest verify run, log size, latest anchor')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const s = await c.api().call(LockerStatus, 'GET', '/evidence/status');
        print(c.format, s, () => renderLockerStatus(s));
      }),
    );
}

function renderLockerStatus(s: LockerStatus): string {
  const store = (x: LockerStatus['replica']) =>
    x ? `${x.kind} ${x.location} — ${x.healthy ? `healthy (${x.latencyMs} ms)` : `UNHEALTHY: ${x.error}`}` : 'not configured';
  const v = s.latestVerify;
  return [
    renderKv({
      Tenant: s.tenant,
      Overall: s.healthy ? 'healthy' : 'ATTENTION NEEDED',
      Items: `${s.items} (${humanBytes(s.bytes)})`,
      States:
        Object.entries(s.byState)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ') || '-',
      Store: store(s.store),
      Capacity: s.store.capacity ? `${humanBytes(s.store.capacity.availableBytes)} free of ${humanBytes(s.store.capacity.totalBytes)}` : 'n/a',
      Replica: store(s.replica),
      'Index size': humanBytes(s.index.bytes),
      Log: `${s.log.size} leaves (${s.log.tenantEntries} this tenant), last ${s.log.lastAppendedAt ?? 'never'}`,
      'Latest verify': v
        ? `${v.runId} ${v.mode} ${v.status}: ${v.checked} checked, ${v.failed} failed${v.acknowledged ? `, ${v.acknowledged} acknowledged` : ''} (${v.finishedAt ?? 'running'})`
        : 'never (stella evidence verify --mode quick)',
      'Latest anchor': s.latestAnchor.none ? 'none yet' : JSON.stringify(s.latestAnchor),
      Acknowledged: s.acknowledged?.open
        ? s.acknowledged.items.map((a) => `${a.id} by ${a.actor}: ${a.reason}`).join('; ') +
          (s.acknowledged.open > s.acknowledged.items.length ? ` (+${s.acknowledged.open - s.acknowledged.items.length} more)` : '')
        : 'none',
    }),
    '',
    s.byKind.length
      ? renderTable(s.byKind, [
          { header: 'KIND', get: (k) => k.kind },
          { header: 'ITEMS', get: (k) => k.items, align: 'right' },
          { header: 'BYTES', get: (k) => humanBytes(k.bytes), align: 'right' },
        ])
      : 'no evidence stored yet',
  ].join('\n');
}

function storeCommands(ev: Command): void {
  const store = ev.command('store').description('the evidence blob store');
  store
    .command('health')
    .description('store connectivity and a write/read/delete probe, primary and replica (exit 5 if unhealthy)')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const h = await c.api().call(StoreHealth, 'GET', '/evidence/store/health');
        print(
          c.format,
          h,
          () => `${probeTable(h.stores)}\n\n${h.healthy ? 'store healthy' : 'store UNHEALTHY'}${h.replicaConfigured ? '' : ' (no replica configured)'}`,
        );
        return h.healthy ? EXIT.OK : EXIT.UNAVAILABLE;
      }),
    );
}

function provenanceCommands(ev: Command): void {
  const prov = ev.command('provenance').description('where evidence came from');
  prov
    .command('show <id>')
    .description('producer, parent chain, children, Merkle log entry and audit trail of an item')
    .action(
      action(async (id: string, _o, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(id, 'evidence id');
        const p = await c.api().call(Provenance, 'GET', `/evidence/${id}/provenance`);
        print(c.format, p, () => renderProvenance(p));
      }),
    );
}

function renderProvenance(p: Provenance): string {
  const graph = (nodes: Provenance['ancestors'], dir: string) =>
    nodes.length
      ? nodes.map((n) => `${'  '.repeat(n.depth)}${dir} ${n.relation} ${n.id} ${n.kind ? `(${n.kind}, ${n.state})` : '(NOT INDEXED)'}`).join('\n')
      : '  (none)';
  return [
    renderKv({
      id: p.id,
      kind: p.kind,
      state: p.state + (p.stateReason ? ` (${p.stateReason})` : ''),
      created: p.createdAt,
      producer: p.producer,
      subjects: p.subjects.join(', '),
      'log seq': p.log ? `${p.log.seq} leaf ${p.log.leafHash.slice(0, 16)}… at ${p.log.appendedAt}` : 'not in log',
    }),
    '',
    'Parents (chain up):',
    graph(p.ancestors, '↑'),
    'Children (derived):',
    graph(p.descendants, '↓'),
    '',
    'Audit trail:',
    p.audit.length
      ? renderTable(p.audit, [
          { header: 'AT', get: (a) => a.at },
          { header: 'ACTOR', get: (a) => a.actor },
          { header: 'ACTION', get: (a) => a.action },
          { header: 'REASON', get: (a) => a.reason },
        ])
      : '  (no audit entries)',
    ...(p.verifyHistory.length
      ? [
          '',
          'Verification findings:',
          renderTable(p.verifyHistory, [
            { header: 'RUN', get: (v) => v.runId },
            { header: 'RESULT', get: (v) => v.result },
            { header: 'DETAIL', get: (v) => v.detail },
          ]),
        ]
      : []),
  ].join('\n');
}

function chainCommand(ev: Command): void {
  ev.command('chain')
    .description('the evidence graph for an artifact: SBOM → scan report → attestations, with missing nodes (exit 4 if incomplete)')
    .requiredOption('--artifact <digest>', 'subject artifact digest sha256:…')
    .option('--verbose', 'every item, its links and other evidence')
    .action(
      action(async (o: { artifact: string; verbose?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(o.artifact, 'artifact digest');
        const r = await c.api().call(Chain, 'GET', `/evidence/chain${qs({ artifact: o.artifact })}`);
        print(c.format, r, () => renderChain(r, o.artifact, !!o.verbose));
        return r.complete ? EXIT.OK : EXIT.INTEGRITY;
      }),
    );
}

function renderChain(r: Chain, artifact: string, verbose: boolean): string {
  const lines = [`Evidence chain for ${artifact}: ${r.complete ? 'COMPLETE' : `INCOMPLETE (${r.missing.length} missing)`}`, ''];
  const w = Math.max(...r.nodes.map((n) => n.label.length));
  for (const n of r.nodes) {
    if (n.status === 'missing') lines.push(`✗ ${n.label} (missing) — generate: ${n.remedy}`);
    else if (n.status === 'unusable') lines.push(`✗ ${n.label} (${n.items.map((i) => i.state).join(', ')}) — regenerate: ${n.remedy}`);
    else {
      const link = n.expectedParent ? (n.linked === false ? `  ! not linked to ${n.expectedParent}` : n.linked ? `  ← ${n.expectedParent}` : '') : '';
      lines.push(
        `✓ ${n.label.padEnd(w)}  ${n.items
          .filter((i) => i.state === 'present')
          .map((i) => shortDigest(i.id))
          .join(', ')}${link}`,
      );
    }
    if (verbose)
      for (const i of n.items)
        lines.push(
          `    ${i.id}  ${i.state}  ${i.predicateType ?? ''}  ${i.createdAt}${i.linkedTo.length ? `  derived-from ${i.linkedTo.map(shortDigest).join(',')}` : ''}`,
        );
  }
  if (verbose) {
    lines.push('', r.other.length ? 'Other evidence:' : 'Other evidence: none');
    for (const i of r.other) lines.push(`    ${i.id}  ${i.kind}  ${i.state}  ${i.predicateType ?? ''}`);
  }
  return lines.join('\n');
}

// ---- the PostgreSQL evidence index (SP-002) -----------------------------------------------

function indexCommands(ev: Command): void {
  const index = ev.command('index').description('the PostgreSQL evidence index (SP-002)');
  for (const register of [indexStatusCommand, indexRefreshCommand, indexRebuildCommand, indexOptimizeCommand, indexLookupCommand]) register(index);
}

function indexStatusCommand(index: Command): void {
  index
    .command('status')
    .description('row counts, dangling links, unindexed blobs (sampled; --full for all), last maintenance')
    .option('--full', 'check every blob in the store for an index row (slow on big stores)')
    .option('--sample <n>', 'blobs to sample for unindexed ones', '1000')
    .action(
      action(async (o: { full?: boolean; sample: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const s = await c.api().call(IndexStatus, 'GET', `/evidence/index/status${qs({ full: o.full, sample: positiveInt(o.sample, '--sample') })}`);
        print(c.format, s, () => renderIndexStatus(s));
      }),
    );
}

function renderIndexStatus(s: IndexStatus): string {
  return renderKv({
    Index: s.healthy ? 'healthy' : 'NEEDS ATTENTION',
    Items: `${s.rows.items} (${s.rows.corrupted} corrupted, ${s.rows.quarantined} quarantined)`,
    Subjects: s.rows.subjects,
    Edges: `${s.rows.edges} (${s.danglingEdges.parentNotIndexed} to unindexed parents, ${s.danglingEdges.childNotIndexed} from unindexed children)`,
    'Log entries': s.rows.logEntries,
    'Items w/o subject': s.itemsWithoutSubjects,
    'Items w/o log leaf': s.itemsWithoutLogLeaf,
    'Unindexed blobs': `${s.blobs.unindexed} of ${s.blobs.scanned} ${s.blobs.mode === 'full' ? 'blobs (full scan)' : s.blobs.complete ? 'blobs (all)' : 'sampled'}${s.blobs.unindexed ? ' → stella evidence index rebuild' : ''}`,
    'Index size': humanBytes(s.indexBytes),
    'Last rebuild': s.lastRebuild ? `${s.lastRebuild.startedAt} ${s.lastRebuild.status}` : 'never',
    'Last refresh': s.lastRefresh ? `${s.lastRefresh.startedAt} ${s.lastRefresh.status}` : 'never',
    'Last optimize': s.lastOptimize ? `${s.lastOptimize.startedAt} ${s.lastOptimize.status}` : 'never',
  });
}

function indexRefreshCommand(index: Command): void {
  index
    .command('refresh')
    .description('reconcile index rows with the store (missing or wrong-size blobs → corrupted; restored ones → present)')
    .option('--dry-run', 'report what would change')
    .action(
      action(async (o: { dryRun?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(RefreshResult, 'POST', '/evidence/index/refresh', { dryRun: !!o.dryRun }, { timeoutMs: 3_600_000 });
        print(c.format, r, () =>
          [
            `${o.dryRun ? 'dry run: ' : ''}checked ${r.checked} item(s): ${r.markedCorrupted} marked corrupted, ${r.restored} restored, ${r.danglingEdges} edge(s) to unindexed parents`,
            ...(r.changes.length
              ? [
                  '',
                  renderTable(r.changes, [
                    { header: 'ID', get: (x) => x.id },
                    { header: 'FROM', get: (x) => x.from },
                    { header: 'TO', get: (x) => x.to },
                    { header: 'REASON', get: (x) => x.reason },
                  ]),
                ]
              : []),
          ].join('\n'),
        );
      }),
    );
}

function indexRebuildCommand(index: Command): void {
  index
    .command('rebuild')
    .description('scan the blob store and index blobs missing from the index (quarantined, subject unknown); durable workflow')
    .option('--no-wait', 'start and return the operation id')
    .action(
      action(async (o: { wait: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const api = c.api();
        const { opId } = await api.call(OpStarted, 'POST', '/evidence/index/rebuild', {});
        if (!o.wait) {
          print(c.format, { opId }, () => `started ${opId}`);
          return;
        }
        const st = await followRebuild(api, opId, c.quiet || c.format === 'json');
        if (st.workflowStatus !== 'COMPLETED')
          throw new CliError(`index rebuild ${opId} ended ${st.workflowStatus}${st.result?.error ? `: ${st.result.error}` : ''}`, EXIT.FAILURE);
        const r = RebuildTotals.parse(st.result);
        print(c.format, { opId, ...r }, () =>
          [
            `index rebuild ${opId}: ${r.scanned} blob(s) scanned, ${r.alreadyIndexed} already indexed, ${r.reindexed} re-indexed (quarantined), ${r.damaged} damaged`,
            ...r.reindexedIds.map((id) => `  re-indexed  ${id}  (kind other, subject unknown: attribute it or purge it)`),
            ...r.damagedIds.map((id) => `  DAMAGED     ${id}  (bytes do not match the name; not indexed)`),
          ].join('\n'),
        );
        return r.damaged ? EXIT.INTEGRITY : EXIT.OK;
      }),
    );
}

/** Polls an index rebuild until its workflow leaves RUNNING, with a progress line on a TTY. */
async function followRebuild(api: ApiClient, opId: string, quiet: boolean): Promise<RebuildStatus> {
  let st: RebuildStatus;
  for (;;) {
    st = await api.call(RebuildStatus, 'GET', `/evidence/index/rebuild/${opId}`);
    if (!quiet && process.stderr.isTTY && st.result?.scanned !== undefined)
      process.stderr.write(`\rrebuild: ${st.result.scanned} blobs scanned, ${st.result.reindexed ?? 0} re-indexed`);
    if (st.workflowStatus !== 'RUNNING') break;
    await sleep(500);
  }
  if (!quiet && process.stderr.isTTY) process.stderr.write('\n');
  return st;
}

function indexOptimizeCommand(index: Command): void {
  index
    .command('optimize')
    .description('VACUUM ANALYZE and REINDEX the evidence tables')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(OptimizeResult, 'POST', '/evidence/index/optimize', {}, { timeoutMs: 3_600_000 });
        print(
          c.format,
          r,
          () =>
            `${renderTable(r.tables, [
              { header: 'TABLE', get: (t) => t.table },
              { header: 'TIME', get: (t) => `${t.ms} ms`, align: 'right' },
            ])}\n\nindex size ${humanBytes(r.bytesBefore)} → ${humanBytes(r.bytesAfter)}`,
        );
      }),
    );
}

function indexLookupCommand(index: Command): void {
  index
    .command('lookup <id>')
    .description('index row(s) for an id (all tenants with an admin token) and where its blob lives')
    .action(
      action(async (id: string, _o, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(id, 'evidence id');
        const r = await c.api().call(IndexLookup, 'GET', `/evidence/index/lookup/${id}`);
        print(c.format, r, () => renderIndexLookup(r, id));
        return r.indexed ? EXIT.OK : EXIT.NOT_FOUND;
      }),
    );
}

function renderIndexLookup(r: IndexLookup, id: string): string {
  return [
    r.rows.length
      ? renderTable(r.rows, [
          { header: 'TENANT', get: (x) => x.tenant },
          { header: 'KIND', get: (x) => x.kind },
          { header: 'SIZE', get: (x) => x.size, align: 'right' },
          { header: 'STATE', get: (x) => x.state + (x.stateReason ? ` (${x.stateReason})` : '') },
          { header: 'LOG', get: (x) => x.logSeq },
          { header: 'CREATED', get: (x) => x.createdAt },
        ])
      : `not indexed: ${id} (blob present → stella evidence index rebuild)`,
    '',
    renderKv({
      blob: `${r.blob.location} ${r.blob.present ? `(${r.blob.size} bytes)` : '(MISSING)'}`,
      replica: r.replica ? `${r.replica.location} ${r.replica.present ? `(${r.replica.size} bytes)` : '(missing)'}` : 'not configured',
    }),
  ].join('\n');
}

// ---- storage usage and checks (SP-004, INC-002, INC-004) ---------------------------------

function storageCommands(ev: Command): void {
  const storage = ev.command('storage').description('storage usage and checks (SP-004, INC-002, INC-004)');
  for (const register of [storageStatsCommand, storageCheckCommand, storageTestCommand, storageAnalyzeCommand]) register(storage);
}

function storageStatsCommand(storage: Command): void {
  storage
    .command('stats')
    .description('bytes and items by kind, tier, tenant and state; temp and spool files')
    .option('--all-tenants', 'every tenant (admin)')
    .action(
      action(async (o: { allTenants?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const s = await c.api().call(StorageStats, 'GET', `/evidence/storage/stats${qs({ allTenants: o.allTenants })}`);
        print(c.format, s, () => renderStorageStats(s));
      }),
    );
}

function renderStorageStats(s: StorageStats): string {
  const t = (title: string, rows: { key: string; items: number; bytes: number }[]) =>
    `${title}\n${
      rows.length
        ? renderTable(rows, [
            { header: 'KEY', get: (r) => r.key },
            { header: 'ITEMS', get: (r) => r.items, align: 'right' },
            { header: 'BYTES', get: (r) => humanBytes(r.bytes), align: 'right' },
          ])
        : '  (none)'
    }`;
  return [
    renderKv({
      Store: `${s.store.kind} ${s.store.location}`,
      Capacity: s.store.capacity
        ? `${humanBytes(s.store.capacity.availableBytes)} free of ${humanBytes(s.store.capacity.totalBytes)} (${((s.store.capacity.availableBytes / s.store.capacity.totalBytes) * 100).toFixed(1)}%)`
        : 'n/a',
      Replica: s.replica ? `${s.replica.kind} ${s.replica.location}` : 'not configured',
      'Distinct blobs': `${s.totals.blobs} (${humanBytes(s.totals.bytes)})`,
      'Temp files': `${s.tempFiles.count} (${humanBytes(s.tempFiles.bytes)})`,
      Spool: `${s.spool.files} file(s) (${humanBytes(s.spool.bytes)}) in ${s.spool.dir}`,
    }),
    '',
    t('By kind', s.byKind),
    '',
    t('By tier', s.byTier),
    '',
    t('By state', s.byState),
    ...(s.scope === '*' ? ['', t('By tenant', s.byTenant)] : []),
  ].join('\n');
}

function storageCheckCommand(storage: Command): void {
  storage
    .command('check <id>')
    .description('stat and re-hash one blob (primary and replica) and compare with the index (exit 4 on mismatch)')
    .action(
      action(async (id: string, _o, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(id, 'evidence id');
        const r = await c.api().call(StorageCheck, 'GET', `/evidence/storage/check/${id}`);
        const line = (x: StorageCheck['replica']) =>
          x
            ? `${x.result}${x.size !== null ? ` (${x.size} bytes)` : ''}${x.result === 'hash-mismatch' ? ` hashes to ${x.actual}` : ''}${x.error ? `: ${x.error}` : ''} — ${x.location}`
            : 'not configured';
        print(c.format, r, () =>
          renderKv({
            id: r.id,
            index: r.indexed ? `${r.indexed.state}${r.indexed.stateReason ? ` (${r.indexed.stateReason})` : ''}, ${r.indexed.size} bytes` : 'NOT INDEXED',
            primary: line(r.primary),
            replica: line(r.replica),
            result: r.ok ? 'ok' : 'PROBLEM',
          }),
        );
        return r.ok ? EXIT.OK : EXIT.INTEGRITY;
      }),
    );
}

function storageTestCommand(storage: Command): void {
  storage
    .command('test')
    .description('write/read/delete probe with latency on the primary and replica stores (exit 5 on failure)')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(StorageTest, 'POST', '/evidence/storage/test', {});
        print(c.format, r, () => `${probeTable(r.stores)}\n\n${r.ok ? 'storage test passed' : 'storage test FAILED'}`);
        return r.ok ? EXIT.OK : EXIT.UNAVAILABLE;
      }),
    );
}

function storageAnalyzeCommand(storage: Command): void {
  storage
    .command('analyze')
    .description('largest or oldest items')
    .option('--sort <key>', 'size or age', 'size')
    .option('--limit <n>', 'how many', '20')
    .option('--all-tenants', 'every tenant (admin)')
    .action(
      action(async (o: { sort: string; limit: string; allTenants?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.sort !== 'size' && o.sort !== 'age') throw new CliError('--sort must be size or age', EXIT.USAGE);
        const r = await c
          .api()
          .call(StorageAnalyze, 'GET', `/evidence/storage/analyze${qs({ sort: o.sort, limit: positiveInt(o.limit, '--limit'), allTenants: o.allTenants })}`);
        print(c.format, r, () =>
          r.items.length
            ? renderTable(r.items, [
                { header: 'ID', get: (i) => i.id },
                { header: 'KIND', get: (i) => i.kind },
                { header: 'SIZE', get: (i) => humanBytes(i.size), align: 'right' },
                { header: 'TIER', get: (i) => i.tier },
                { header: 'STATE', get: (i) => i.state },
                { header: 'CREATED', get: (i) => i.createdAt },
                ...(o.allTenants ? [{ header: 'TENANT', get: (i: StorageAnalyze['items'][number]) => i.tenant }] : []),
              ])
            : 'no evidence stored',
        );
      }),
    );
}

// ---- repair: mark-corrupted, recover, retry-store -----------------------------------------

function markCorruptedCommand(ev: Command): void {
  ev.command('mark-corrupted')
    .description('flag an item corrupted (audited) when it cannot be recovered')
    .requiredOption('--id <id>', 'evidence id sha256:…')
    .requiredOption('--reason <reason>', 'why, e.g. hash-mismatch')
    .action(
      action(async (o: { id: string; reason: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(o.id, 'evidence id');
        if (!o.reason.trim()) throw new CliError('--reason must not be empty', EXIT.USAGE);
        const r = await c.api().call(MarkCorruptedResult, 'POST', `/evidence/${o.id}/mark-corrupted`, { reason: o.reason });
        print(c.format, r, () => `marked corrupted and acknowledged: ${r.id} (was ${r.previousState}; reason: ${r.reason})`);
      }),
    );
}

function recoverCommand(ev: Command): void {
  ev.command('recover')
    .description('restore a corrupted or missing blob from a verified intact copy (audited); replay/<digest> restores a replay copy')
    .requiredOption('--id <id>', 'evidence id sha256:…, or replay/sha256:… for the copy replay reads (as verify-report names it)')
    .option('--source <source>', 'where to recover from: replica (default for items); locker (default for replay copies) or replica')
    .action(
      action(async (o: { id: string; source?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const replay = o.id.startsWith('replay/');
        const id = replay ? o.id.slice('replay/'.length) : o.id;
        requireDigest(id, 'evidence id');
        const source = o.source ?? (replay ? 'locker' : 'replica');
        const allowed = replay ? ['locker', 'replica'] : ['replica'];
        if (!allowed.includes(source)) throw new CliError(`--source must be ${allowed.join(' or ')}, got ${JSON.stringify(source)}`, EXIT.USAGE);
        const r = await c.api().call(RecoverResult, 'POST', `/evidence/${id}/recover`, { source, area: replay ? 'replay' : 'locker' });
        print(
          c.format,
          r,
          () =>
            `recovered: ${r.id} from ${r.replica} (${r.bytes} bytes; ${replay ? 'copy' : 'primary'} was ${r.primaryWas}, state was ${r.previousState}; now ${r.state})`,
        );
      }),
    );
}

function acknowledgeCommand(ev: Command): void {
  const cmd = ev
    .command('acknowledge')
    .description('acknowledge a verification failure (reason and who, audited): later runs list it without failing; --list shows them')
    .option('--id <id>', 'what verify-report names: an evidence id, an unindexed blob, or replay/sha256:…')
    .option('--reason <reason>', 'why it is accepted for now, e.g. "INC-1234 waiting for backup restore"')
    .option('--list', 'list this tenant’s acknowledgements (open first)');
  cmd.action(
    action(async (o: { id?: string; reason?: string; list?: boolean }, command: Command) => {
      const c = ctxOf(command);
      if (o.list) {
        const r = await c.api().call(AcknowledgementList, 'GET', '/evidence/integrity/acknowledgements');
        print(c.format, r, () =>
          r.acknowledgements.length
            ? renderTable(r.acknowledgements, [
                { header: 'ID', get: (x) => x.id },
                { header: 'STATUS', get: (x) => x.resolution ?? 'open' },
                { header: 'BY', get: (x) => x.actor },
                { header: 'AT', get: (x) => x.acknowledgedAt },
                { header: 'REASON', get: (x) => x.reason },
              ])
            : 'no acknowledgements',
        );
        return;
      }
      if (!o.id || !o.reason?.trim()) throw new CliError('--id and a non-empty --reason are required (or --list)', EXIT.USAGE);
      requireDigest(o.id.startsWith('replay/') ? o.id.slice('replay/'.length) : o.id, 'id');
      const r = await c.api().call(Acknowledgement, 'POST', '/evidence/integrity/acknowledgements', { id: o.id, reason: o.reason });
      print(c.format, r, () => `acknowledged: ${r.id} by ${r.actor} (reason: ${r.reason})`);
    }),
  );
}

function tombstoneCommand(ev: Command): void {
  ev.command('tombstone')
    .description('give up an unrecoverable item (audited): its index row becomes purged with the reason, later runs skip it')
    .requiredOption('--id <id>', 'evidence id sha256:…')
    .requiredOption('--reason <reason>', 'why it cannot be recovered')
    .action(
      action(async (o: { id: string; reason: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(o.id, 'evidence id');
        if (!o.reason.trim()) throw new CliError('--reason must not be empty', EXIT.USAGE);
        const r = await c.api().call(TombstoneResult, 'POST', `/evidence/${o.id}/tombstone`, { reason: o.reason });
        print(c.format, r, () => `tombstoned: ${r.id} (was ${r.previousState}; reason: ${r.reason})`);
      }),
    );
}

function retryStoreCommand(ev: Command): void {
  ev.command('retry-store')
    .description('re-drive storage of evidence for an artifact: parked spool files, blobs missing from the primary (from replica), missing replica copies')
    .requiredOption('--artifact <digest>', 'subject artifact digest sha256:…')
    .action(
      action(async (o: { artifact: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(o.artifact, 'artifact digest');
        const r = await c.api().call(RetryStoreResult, 'POST', '/evidence/retry-store', { artifact: o.artifact }, { timeoutMs: 3_600_000 });
        print(c.format, r, () =>
          [
            `retry-store ${o.artifact}: ${r.checked} indexed item(s) checked, ${r.retried} retried, ${r.unrecoverable} unrecoverable`,
            ...(r.outcomes.length
              ? [
                  '',
                  renderTable(r.outcomes, [
                    { header: 'ID', get: (x) => x.id },
                    { header: 'ACTION', get: (x) => x.action },
                    { header: 'DETAIL', get: (x) => x.detail },
                  ]),
                ]
              : ['nothing needed retrying']),
          ].join('\n'),
        );
        return r.unrecoverable ? EXIT.INTEGRITY : EXIT.OK;
      }),
    );
}

/** Bulk ingest of a server-side directory or tar archive. */
function ingestCommand(ev: Command): void {
  ev.command('ingest <path>')
    .description('bulk-ingest every file of a directory or tar archive (durable workflow; the path is read by the stella worker, tars are extracted safely)')
    .requiredOption('--artifact <digest>', 'subject artifact digest sha256:…')
    .requiredOption('--kind <kind>', `evidence kind: ${KINDS.join(', ')}`)
    .option('--media-type <type>', 'media type for every file (default: by extension)')
    .option('--batch-size <n>', 'files per activity', '200')
    .option('--no-wait', 'start and return the workflow id')
    .action(
      action(async (path: string, o: { artifact: string; kind: string; mediaType?: string; batchSize: string; wait: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(o.artifact, 'artifact digest');
        if (!KINDS.includes(o.kind)) throw new CliError(`unknown kind ${o.kind}; expected one of ${KINDS.join(', ')}`, EXIT.USAGE);
        const abs = resolve(path);
        const st = await fsp.stat(abs).catch(() => null);
        if (!st) throw new CliError(`${path}: no such file or directory`, EXIT.USAGE);
        if (!st.isDirectory() && !(st.isFile() && /\.(tar|tar\.gz|tgz|tar\.zst|tar\.zstd)$/i.test(abs))) {
          throw new CliError(`${path} is neither a directory nor a .tar/.tar.gz/.tar.zst archive; use stella evidence put for a single file`, EXIT.USAGE);
        }
        const api = c.api();
        const { workflowId } = await api.call(BulkIngestStarted, 'POST', '/evidence/ingest', {
          path: abs,
          artifact: o.artifact,
          kind: o.kind,
          mediaType: o.mediaType,
          batchSize: positiveInt(o.batchSize, '--batch-size'),
        });
        if (!o.wait) {
          print(c.format, { workflowId }, () => `started ${workflowId}`);
          return;
        }
        await followIngest(api, workflowId, c.quiet || c.format === 'json').then((r) =>
          print(
            c.format,
            { workflowId, ...r },
            () => `ingested ${r.total} file(s) from ${abs}: ${r.created} new, ${r.present} already present, ${humanBytes(r.bytes)} (workflow ${workflowId})`,
          ),
        );
      }),
    );
}

async function followIngest(api: ApiClient, workflowId: string, quiet: boolean) {
  const bar = progressBar('ingest', quiet);
  for (;;) {
    const asked = Date.now();
    // The API answers when the ingest ends (or after a second, with its progress for the bar).
    const st = await api.call(BulkIngestStatus, 'GET', `/evidence/ingest/${workflowId}?wait=1`);
    if (st.progress) bar.update(st.progress.done, st.progress.total);
    if (st.status === 'COMPLETED') {
      bar.stop();
      return st.result as { total: number; done: number; created: number; present: number; bytes: number };
    }
    if (st.status !== 'RUNNING') {
      bar.stop();
      const exit = (st.errorCode && API_CODE_TO_EXIT[st.errorCode]) || EXIT.FAILURE;
      throw new CliError(`ingest ${workflowId} ${st.status.toLowerCase()}${st.error ? `: ${st.error}` : ''}`, exit);
    }
    // An API without `wait` answers at once: ask again in half a second, not in a busy loop.
    await sleep(Math.max(0, 500 - (Date.now() - asked)));
  }
}
