import { promises as fsp } from 'node:fs';
import { Transform } from 'node:stream';
import type { Command } from 'commander';
import type { z } from 'zod';
import { action, ctxOf, group, requireDigest, type Ctx } from '../common';
import { API_CODE_TO_EXIT, CliError, EXIT } from '../exit';
import { print, renderTable, renderKv, shortDigest, humanBytes } from '../output';
import { qs } from '../client';
import { progressBar } from '../progress';
import { writeStreamAtomically } from '../../archive/tar-write';
import { verifyArchiveFile } from '../../core/retention/offline';
import {
  ArchiveDeleted,
  CleanupTempResult,
  Hold,
  HoldList,
  HoldTimeline,
  PolicyApplied,
  RetentionPolicySection,
  RunItems,
  RunList,
  RunStarted,
  RunStatus,
  type RunSummary,
  Tiers,
  TiersView,
} from '../../contracts/retention';

/**
 * Retention, legal holds, cleanup and archive (evidence locker runbook SP-004 / INC-004,
 * replay runbook §2.3-§3):
 *   stella evidence policy apply --file decl.json | policy tiers | policy show (retention section)
 *   stella evidence hold create|list|release
 *   stella evidence cleanup --apply-retention [--dry-run] [--aggressive] | --temp-only
 *   stella evidence archive --older-than <N>d [--output <file>] [--compress] [--delete-archived]
 *   stella evidence retention runs|tier-move
 */

/** The retention section of `stella evidence policy show` (src/cli/commands/evidence-policy.ts). */
export async function retentionPolicySection(c: Ctx): Promise<{ value: unknown; human: string[] }> {
  const r = await c.api().call(RetentionPolicySection, 'GET', '/evidence/retention/policies');
  return { value: r, human: [renderRetentionSection(r)] };
}

export function renderRetentionSection(r: RetentionPolicySection): string {
  return [
    `retention for tenant ${r.tenant}: hot tier ${r.tiers.hotDays} days, cold tier ${r.tiers.coldDays} days (${r.tiers.source === 'default' ? 'defaults' : 'tenant setting'}); ${r.activeHolds} active legal hold(s)`,
    renderTable(r.policies, [
      { header: 'BUNDLE TYPE', get: (p) => p.bundleType },
      { header: 'POLICY', get: (p) => p.policyId },
      { header: 'DAYS', get: (p) => p.retentionDays, align: 'right' },
      { header: 'LEGAL HOLD', get: (p) => (p.legalHold ? 'yes' : 'no') },
      { header: 'PURGE AFTER', get: (p) => p.purgeAfter },
      { header: 'SOURCE', get: (p) => `${p.source}${p.version ? ` v${p.version}` : ''}${p.signedBy ? ' (signed)' : ''}` },
    ]),
  ].join('\n');
}

function parseDays(s: string, flag: string): number {
  const m = /^(\d+)d?$/.exec(s.trim());
  if (!m) throw new CliError(`${flag} must be a number of days such as 365d (got ${JSON.stringify(s)})`, EXIT.USAGE);
  return Number(m[1]);
}

function runLine(r: RunSummary): string {
  const skipped = `skipped: ${r.skippedHeld} under legal hold, ${r.skippedPromotion} needed by open promotions`;
  if (r.dryRun)
    return `DRY RUN: would purge ${r.items} item(s), ${humanBytes(r.bytes)} (${humanBytes(r.bytesFreed)} of storage freed); ${skipped}; nothing was changed (run ${r.runId})`;
  return `purged ${r.items} item(s), ${humanBytes(r.bytes)} (${humanBytes(r.bytesFreed)} of storage freed); ${skipped}; Merkle leaves kept; run ${r.runId}${r.aggressive ? ' (aggressive)' : ''}`;
}

async function waitRun(c: Ctx, runId: string, label: string): Promise<RunSummary> {
  const api = c.api();
  const bar = progressBar(label, c.quiet || c.format === 'json');
  try {
    for (;;) {
      const st = await api.call(RunStatus, 'GET', `/evidence/retention/runs/${encodeURIComponent(runId)}`);
      if (st.progress) bar.update(st.progress.items, Math.max(st.progress.items, st.run?.items ?? 0, 1));
      if (st.status !== 'RUNNING' && st.status !== 'UNKNOWN' && st.run) {
        if (st.status !== 'COMPLETED') {
          const exit = (st.errorCode && API_CODE_TO_EXIT[st.errorCode]) || EXIT.FAILURE;
          const why = st.error ? `: ${st.error}` : ' (see the Temporal UI)';
          throw new CliError(`retention run ${runId} ended ${st.status}${why}; counts so far: ${st.run.items} item(s)`, exit);
        }
        return st.run;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    bar.stop();
  }
}

export function registerRetentionCommands(program: Command): void {
  const ev = group(program, 'evidence', 'the Evidence Locker');
  const pol = group(ev, 'policy', 'evidence policies');
  for (const register of [policyApplyCommand, policyTiersCommand]) register(pol);
  const hold = group(ev, 'hold', 'legal holds: held evidence is never purged or archive-deleted');
  for (const register of [holdCreateCommand, holdListCommand, holdReleaseCommand, holdTimelineCommand]) register(hold);
  for (const register of [cleanupCommand, archiveCommand]) register(ev);
  const ret = group(ev, 'retention', 'retention runs and tiering');
  for (const register of [retentionRunsCommand, tierMoveCommand]) register(ret);
}

// ---- policies -----------------------------------------------------------------------------

async function readJsonFile(file: string): Promise<unknown> {
  const text = await fsp.readFile(file, 'utf8').catch(() => {
    throw new CliError(`${file}: cannot read`, EXIT.USAGE);
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${file}: not valid JSON`, EXIT.USAGE);
  }
}

function policyApplyCommand(pol: Command): void {
  pol
    .command('apply')
    .description('apply a retention declaration (schemas/replay-retention.schema.json; plain or DSSE-signed)')
    .requiredOption('--file <path>', 'declaration JSON, or a DSSE envelope around one')
    .action(
      action(async (o: { file: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const body = await readJsonFile(o.file);
        const r = await c.api().call(PolicyApplied, 'POST', '/evidence/retention/policies', body);
        const d = r.declaration;
        print(c.format, r, () =>
          r.changed
            ? `applied retention policy ${d.retention_policy_id} for ${d.bundle_type}: ${d.retention_days} days, version ${r.version} (${d.checksum.slice(0, 19)}…)${r.signedBy ? `, signed by ${r.signedBy}` : ''}`
            : `unchanged: ${d.retention_policy_id} for ${d.bundle_type} is already version ${r.version}`,
        );
      }),
    );
}

function policyTiersCommand(pol: Command): void {
  pol
    .command('tiers')
    .description('show or set the tenant hot/cold tier retention (defaults: hot 180 days, cold 730 days)')
    .option('--hot-days <n>', 'days in the hot tier before moving to cold')
    .option('--cold-days <n>', 'default total retention (days) for bundle types without a declaration')
    .action(
      action(async (o: { hotDays?: string; coldDays?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const body: Record<string, number> = {};
        if (o.hotDays) body.hotDays = parseDays(o.hotDays, '--hot-days');
        if (o.coldDays) body.coldDays = parseDays(o.coldDays, '--cold-days');
        const r = Object.keys(body).length
          ? await c.api().call(Tiers, 'PUT', '/evidence/retention/tiers', body)
          : await c.api().call(TiersView, 'GET', '/evidence/retention/tiers');
        print(c.format, r, () => renderKv({ 'hot tier': `${r.hotDays} days`, 'cold tier': `${r.coldDays} days` }));
      }),
    );
}

// ---- legal holds ---------------------------------------------------------------------------

type HoldCreateOptions = {
  scope?: string;
  value?: string[];
  item?: string[];
  artifact?: string[];
  bundleType?: string[];
  tenantWide?: boolean;
  reason: string;
  ticket?: string;
};

/** The one scope the flags pick, with its values (exit 2 unless exactly one is given). */
function holdScope(o: HoldCreateOptions): [string, string[]] {
  const picked = [
    o.item && ['items', o.item],
    o.artifact && ['artifact', o.artifact],
    o.bundleType && ['bundle_type', o.bundleType],
    o.tenantWide && ['tenant', []],
  ].filter(Boolean) as [string, string[]][];
  if (o.scope) picked.push([o.scope === 'bundle-type' ? 'bundle_type' : o.scope, o.value ?? []]);
  if (picked.length !== 1) throw new CliError('give exactly one of --scope, --item, --artifact, --bundle-type, --tenant-wide', EXIT.USAGE);
  const [scope, values] = picked[0]!;
  if (scope === 'items' || scope === 'artifact') for (const v of values) requireDigest(v, scope === 'items' ? 'evidence id' : 'artifact digest');
  return [scope, values];
}

function holdCreateCommand(hold: Command): void {
  hold
    .command('create')
    .description('place a legal hold (audited; timeline event replay.hold.created)')
    .option('--scope <scope>', 'items | artifact | tenant | bundle-type')
    .option('--value <v...>', 'scope values (evidence ids, artifact digests or bundle types)')
    .option('--item <id...>', 'hold these evidence items (scope items)')
    .option('--artifact <digest...>', 'hold all evidence of these artifacts (scope artifact)')
    .option('--bundle-type <kind...>', 'hold every item of these bundle types (scope bundle-type)')
    .option('--tenant-wide', 'hold everything of the tenant (scope tenant)')
    .requiredOption('--reason <text>', 'why (recorded in the audit log)')
    .option('--ticket <id>', 'incident ticket reference')
    .action(
      action(async (o: HoldCreateOptions, cmd: Command) => {
        const c = ctxOf(cmd);
        const [scope, values] = holdScope(o);
        const h = await c.api().call(Hold, 'POST', '/evidence/holds', { scope, values, reason: o.reason, incidentTicket: o.ticket });
        print(
          c.format,
          h,
          () =>
            `created legal hold ${h.id} (${h.scope}${h.values.length ? `: ${h.values.map(shortDigest).join(', ')}` : ''})${h.incidentTicket ? ` for ${h.incidentTicket}` : ''}`,
        );
      }),
    );
}

function renderHolds(holds: Hold[]): string {
  return renderTable(holds, [
    { header: 'ID', get: (h) => h.id },
    { header: 'SCOPE', get: (h) => h.scope },
    {
      header: 'VALUES',
      get: (h) => (h.values.length > 2 ? `${h.values.slice(0, 2).map(shortDigest).join(',')},… (${h.values.length})` : h.values.map(shortDigest).join(',')),
    },
    { header: 'REASON', get: (h) => h.reason },
    { header: 'TICKET', get: (h) => h.incidentTicket },
    { header: 'BY', get: (h) => h.createdBy },
    { header: 'CREATED', get: (h) => h.createdAt },
    { header: 'RELEASED', get: (h) => (h.releasedAt ? `${h.releasedAt} by ${h.releasedBy}` : '-') },
  ]);
}

function holdListCommand(hold: Command): void {
  hold
    .command('list')
    .description('legal holds (active by default)')
    .option('--all', 'include released holds')
    .action(
      action(async (o: { all?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(HoldList, 'GET', `/evidence/holds${qs({ all: o.all })}`);
        print(c.format, r, () => (r.holds.length ? renderHolds(r.holds) : 'no legal holds'));
      }),
    );
}

function holdReleaseCommand(hold: Command): void {
  hold
    .command('release <id>')
    .description('release a legal hold (audited; timeline event replay.hold.released)')
    .option('--reason <text>', 'why it is released')
    .action(
      action(async (id: string, o: { reason?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const h = await c.api().call(Hold, 'DELETE', `/evidence/holds/${encodeURIComponent(id)}`, { reason: o.reason });
        print(c.format, h, () => `released legal hold ${h.id} (${h.scope}) at ${h.releasedAt}`);
      }),
    );
}

function holdTimelineCommand(hold: Command): void {
  hold
    .command('timeline <id>')
    .description('a legal hold and everything audited about it (created, released), oldest first')
    .action(
      action(async (id: string, _o, cmd: Command) => {
        const c = ctxOf(cmd);
        const t = await c.api().call(HoldTimeline, 'GET', `/evidence/holds/${encodeURIComponent(id)}/timeline`);
        print(c.format, t, () =>
          [
            `legal hold ${t.hold.id} (${t.hold.scope}${t.hold.values.length ? `: ${t.hold.values.map(shortDigest).join(', ')}` : ''}) — ${t.hold.active ? 'active' : 'released'}`,
            '',
            renderTable(t.events, [
              { header: 'AT', get: (e) => e.at },
              { header: 'ACTION', get: (e) => e.action },
              { header: 'BY', get: (e) => e.actor },
              { header: 'REASON', get: (e) => e.reason ?? '-' },
            ]),
          ].join('\n'),
        );
      }),
    );
}

// ---- cleanup ----------------------------------------------------------------------------------

type CleanupOptions = { applyRetention?: boolean; dryRun?: boolean; aggressive?: boolean; tempOnly?: boolean; reason?: string; limit: string; wait: boolean };

function cleanupCommand(ev: Command): void {
  ev.command('cleanup')
    .description('apply retention (durable purge workflow) or remove stale temp files')
    .option('--apply-retention', 'purge expired evidence per retention policy (holds and open promotions respected)')
    .option('--dry-run', 'report exactly what would go and the bytes freed; change nothing')
    .option('--aggressive', 'storage emergency: also purge items past the hot-tier retention and superseded scan reports (holds still respected)')
    .option('--temp-only', 'only stale temp files and partial uploads (older than 1h)')
    .option('--reason <text>', 'recorded in every audit entry')
    .option('--limit <n>', 'dry run: items listed in the table (json lists all)', '50')
    .option('--no-wait', 'start the purge and print its run id')
    .action(
      action(async (o: CleanupOptions, cmd: Command) => {
        const c = ctxOf(cmd);
        if (!!o.applyRetention === !!o.tempOnly) throw new CliError('give one of --apply-retention or --temp-only', EXIT.USAGE);
        const api = c.api();
        if (o.tempOnly) return cleanupTemp(c, api, o);
        await applyRetention(c, api, o);
      }),
    );
}

type Api = ReturnType<Ctx['api']>;

/** `cleanup --temp-only`: stale temp files and partial uploads. */
async function cleanupTemp(c: Ctx, api: Api, o: CleanupOptions): Promise<void> {
  if (o.aggressive) throw new CliError('--aggressive applies to --apply-retention only', EXIT.USAGE);
  const r = await api.call(CleanupTempResult, 'POST', '/evidence/cleanup/temp', { dryRun: !!o.dryRun });
  print(c.format, r, () =>
    [
      renderTable(r.results, [
        { header: 'LOCATION', get: (x) => x.where },
        { header: 'FILES', get: (x) => x.removed, align: 'right' },
        { header: 'BYTES', get: (x) => humanBytes(x.bytes), align: 'right' },
      ]),
      `${r.dryRun ? 'DRY RUN: would remove' : 'removed'} ${r.removed} stale temp file(s), ${humanBytes(r.bytes)}`,
    ].join('\n'),
  );
}

/** `cleanup --apply-retention`: starts the purge workflow, waits for it, and (dry run) lists what would go. */
async function applyRetention(c: Ctx, api: Api, o: CleanupOptions): Promise<void> {
  const { runId } = await api.call(RunStarted, 'POST', '/evidence/retention/purge', {
    dryRun: !!o.dryRun,
    aggressive: !!o.aggressive,
    reason: o.reason,
  });
  if (!o.wait) {
    print(c.format, { runId }, () => `started ${runId}`);
    return;
  }
  const run = await waitRun(c, runId, o.dryRun ? 'retention dry run' : 'retention purge');
  const limit = Math.max(0, Number(o.limit) || 0);
  const items = o.dryRun
    ? (
        await api.call(
          RunItems,
          'GET',
          `/evidence/retention/runs/${encodeURIComponent(runId)}/items${qs({ limit: c.format === 'json' ? 10_000 : Math.max(limit, 1) })}`,
        )
      ).items
    : [];
  print(c.format, { ...run, ...(o.dryRun ? { wouldPurge: items } : {}) }, () =>
    [runLine(run), ...(o.dryRun && items.length && limit ? renderWouldPurge(run, items, limit) : [])].filter(Boolean).join('\n'),
  );
}

function renderWouldPurge(run: RunSummary, items: z.infer<typeof RunItems>['items'], limit: number): string[] {
  return [
    renderTable(items.slice(0, limit), [
      { header: 'ID', get: (i) => shortDigest(i.id) },
      { header: 'KIND', get: (i) => i.kind },
      { header: 'SIZE', get: (i) => humanBytes(i.size), align: 'right' },
      { header: 'TIER', get: (i) => i.tier },
      { header: 'POLICY', get: (i) => i.policyId },
      { header: 'WHY', get: (i) => i.reason },
    ]),
    run.items > limit ? `(${run.items - limit} more: --limit ${run.items} or --format json)` : '',
  ];
}

// ---- archive --------------------------------------------------------------------------------

type ArchiveOptions = { olderThan: string; output?: string; compress?: boolean; deleteArchived?: boolean };

function archiveCommand(ev: Command): void {
  ev.command('archive')
    .description('stream evidence older than N days into a tar with a manifest of digests (verify later: evidence verify --offline --input)')
    .requiredOption('--older-than <Nd>', 'age, e.g. 365d')
    .option('--output <file>', 'archive file (default evidence-archive-<date>.tar[.gz] in the current directory)')
    .option('--compress', 'gzip the archive')
    .option('--delete-archived', 'after the archive verifies, purge the archived items from the locker (audited; legal holds respected)')
    .action(
      action(async (o: ArchiveOptions, cmd: Command) => {
        const c = ctxOf(cmd);
        const days = parseDays(o.olderThan, '--older-than');
        const out = o.output ?? `evidence-archive-${new Date().toISOString().slice(0, 10)}.tar${o.compress ? '.gz' : ''}`;
        const { bytes, skippedReplay } = await downloadArchive(c, days, out, !!o.compress);
        // Verify what landed on disk before reporting success (and before any deletion).
        const v = await verifyWritten(out);
        const size = (await fsp.stat(out)).size;
        const result: Record<string, unknown> = {
          output: out,
          items: v.items,
          bytes,
          archiveBytes: size,
          manifestSha256: v.manifestSha256,
          skippedReplayBundles: skippedReplay,
          compressed: !!o.compress,
        };
        const lines = [`archived ${v.items} item(s) (${humanBytes(bytes)}) to ${out} (${humanBytes(size)}), manifest ${v.manifestSha256}; verified`];
        if (skippedReplay) lines.push(`left out ${skippedReplay} replay bundle(s): the token lacks replay:read`);
        if (o.deleteArchived && v.items) {
          const { purged, kept } = await deleteArchived(c, out, v.manifestSha256);
          result.deleted = purged;
          result.kept = kept;
          lines.push(
            `deleted ${purged} archived item(s) from the locker (audited; Merkle leaves kept)${kept.length ? `; kept ${kept.length} under legal hold / open promotion / policy hold` : ''}`,
          );
        } else lines.push('nothing deleted from the locker (--delete-archived to purge archived items)');
        print(c.format, result, () => lines.join('\n'));
      }),
    );
}

/** Streams GET /evidence/archive into `out` (atomically, with a progress bar); nothing is left behind on failure. */
async function downloadArchive(c: Ctx, days: number, out: string, compress: boolean): Promise<{ bytes: number; skippedReplay: number }> {
  const res = await c.api().raw('GET', `/evidence/archive${qs({ olderThanDays: days })}`, { timeoutMs: 24 * 3600_000 });
  const items = Number(res.headers.get('x-stella-archive-items') ?? 0);
  const bytes = Number(res.headers.get('x-stella-archive-bytes') ?? 0);
  const skippedReplay = Number(res.headers.get('x-stella-archive-skipped-replay') ?? 0);
  // Tar size estimate for the bar: a header per item + bodies padded to 512, plus the manifest.
  const estimate = bytes + items * 1024 + 1024 + items * 400;
  const bar = progressBar(`archive ${items} items`, c.quiet || c.format === 'json');
  bar.start(estimate);
  let seen = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      seen += chunk.length;
      bar.update(Math.min(seen, estimate));
      cb(null, chunk);
    },
  });
  const body = res.body.pipe(meter);
  try {
    await writeStreamAtomically(
      out,
      body,
      { compression: compress ? 'gzip' : 'none' },
      async () => {},
      (err) => body.destroy(err),
    );
  } catch (e) {
    throw new CliError(`archive failed, nothing written to ${out}: ${(e as Error).message}`, EXIT.FAILURE);
  } finally {
    bar.stop();
  }
  return { bytes, skippedReplay };
}

/** The archive as written verifies (exit 4 naming the first problem otherwise). */
async function verifyWritten(out: string): Promise<Awaited<ReturnType<typeof verifyArchiveFile>>> {
  const v = await verifyArchiveFile(out);
  if (!v.ok) {
    const p = v.problems[0]!;
    throw new CliError(`archive ${out} does not verify: ${p.item ?? p.path}: ${p.reason}`, EXIT.INTEGRITY);
  }
  return v;
}

/** `--delete-archived`: purges the archive's items from the locker in batches; held items are kept. */
async function deleteArchived(c: Ctx, out: string, manifestSha256: string | null): Promise<{ purged: number; kept: string[] }> {
  const ids = await archivedIds(out);
  let purged = 0;
  const kept: string[] = [];
  for (let i = 0; i < ids.length; i += 5000) {
    const r = await c.api().call(ArchiveDeleted, 'POST', '/evidence/archive/delete', { ids: ids.slice(i, i + 5000), manifestSha256 });
    purged += r.items;
    kept.push(...r.keptIds);
  }
  return { purged, kept };
}

// ---- runs / tiering -------------------------------------------------------------------------

function retentionRunsCommand(ret: Command): void {
  ret
    .command('runs')
    .description('recent retention runs (purges, dry runs, tier moves, archive deletions)')
    .option('--limit <n>', 'how many', '20')
    .action(
      action(async (o: { limit: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(RunList, 'GET', `/evidence/retention/runs${qs({ limit: o.limit })}`);
        print(c.format, r, () =>
          r.runs.length
            ? renderTable(r.runs, [
                { header: 'RUN', get: (x) => x.runId },
                { header: 'KIND', get: (x) => `${x.kind}${x.dryRun ? ' (dry)' : ''}${x.aggressive ? ' (aggr)' : ''}` },
                { header: 'STATUS', get: (x) => x.status },
                { header: 'ITEMS', get: (x) => x.items, align: 'right' },
                { header: 'FREED', get: (x) => humanBytes(x.bytesFreed), align: 'right' },
                { header: 'HELD', get: (x) => x.skippedHeld, align: 'right' },
                { header: 'BY', get: (x) => x.actor },
                { header: 'STARTED', get: (x) => x.startedAt },
              ])
            : 'no retention runs yet',
        );
      }),
    );
}

function tierMoveCommand(ret: Command): void {
  ret
    .command('tier-move')
    .description('move evidence past the hot-tier retention to the cold tier now (the daily schedule does this too)')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const { runId } = await c.api().call(RunStarted, 'POST', '/evidence/retention/tier-move', {});
        const r = await waitRun(c, runId, 'tier move');
        print(c.format, r, () => `moved ${r.items} item(s) (${humanBytes(r.bytes)}) to the cold tier; run ${r.runId}`);
      }),
    );
}

async function archivedIds(file: string): Promise<string[]> {
  const { readTar, parseManifest, MANIFEST_PATH } = await import('../../archive');
  for await (const e of readTar(file, { maxEntries: 10_000_000, maxTotalBytes: 16 * 1024 ** 4, maxEntryBytes: 1024 ** 4 })) {
    if (e.path !== MANIFEST_PATH) continue;
    const m = parseManifest(await e.buffer());
    return m.entries.map((x) => String((x.meta as { id?: string } | undefined)?.id ?? '')).filter((id) => /^sha256:[0-9a-f]{64}$/.test(id));
  }
  return [];
}

/** `stella evidence verify --offline --input <archive>`: local, no API. Exit 4 naming the item on failure. */
export async function verifyOffline(c: Ctx, input: string): Promise<number> {
  let v: Awaited<ReturnType<typeof verifyArchiveFile>>;
  try {
    v = await verifyArchiveFile(input);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'BAD_INPUT') throw new CliError((e as Error).message, EXIT.USAGE);
    throw new CliError(`${input}: not a verifiable archive: ${(e as Error).message}`, EXIT.INTEGRITY);
  }
  print(c.format, v, () =>
    v.ok
      ? `VERIFIED: ${input}: ${v.items} item(s) match manifest ${v.manifestSha256}${v.kind ? ` (${v.kind})` : ''}`
      : [
          `FAILED: ${input}: ${v.problems.length} problem(s)`,
          ...v.problems.map(
            (p) =>
              `  ${p.item ?? p.path}: ${p.reason}${p.expected !== undefined ? ` (expected ${p.expected}, got ${p.actual})` : ''}${p.item ? ` [${p.path}]` : ''}`,
          ),
        ].join('\n'),
  );
  return v.ok ? EXIT.OK : EXIT.INTEGRITY;
}
