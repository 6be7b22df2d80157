import { createWriteStream, promises as fsp } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { action, ctxOf, group, requireDigest, type Ctx } from '../common';
import { API_CODE_TO_EXIT, CliError, EXIT } from '../exit';
import { print, renderTable, renderKv, humanBytes, shortDigest } from '../output';
import { qs } from '../client';
import { progressBar } from '../progress';
import { writeManifestArchive } from '../../archive';
import { compressionFor } from '../../core/backup/pack/format';
import { verifyEvidencePack, isEvidencePack } from '../../core/backup/pack/verify';
import { trustedRootPack, trustLines } from '../trust';
import { BackupAccepted, BackupList, BackupStatus, Diagnostics, ProvisionResult, RestoreAccepted, RestoreStatus } from '../../contracts/backup';

/** Directories are resolved here (the API may run elsewhere); s3:// URLs pass through. */
const loc = (d?: string) => (d ? (/^s3:\/\//i.test(d) ? d : resolve(d)) : undefined);

type WfStatus = BackupStatus | RestoreStatus;
type Progress = NonNullable<WfStatus['progress']>;

/** Polls a backup/restore status route (answers parsed with its contract) until the run ends. */
async function waitFor<T extends WfStatus>(
  c: Ctx,
  poll: () => Promise<T>,
  label: string,
  total: (p: Progress) => [number, number],
): Promise<T & { result: NonNullable<T['result']> }> {
  const bar = progressBar(label, c.quiet || c.format === 'json');
  let st: T;
  for (;;) {
    st = await poll();
    if (st.progress) {
      const [n, of] = total(st.progress);
      bar.update(n, of);
    }
    if (!st.running) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  bar.stop();
  if (st.status !== 'COMPLETED' || !st.result)
    throw new CliError(
      `${label} ${st.id} ended ${st.status}${st.error ? `: ${st.error}` : ''}`,
      (st.errorCode && API_CODE_TO_EXIT[st.errorCode]) || /integrity|damaged|mismatch/i.test(st.error ?? '')
        ? EXIT.INTEGRITY
        : /not found|no complete backup/i.test(st.error ?? '')
          ? EXIT.NOT_FOUND
          : /already holds|not have/i.test(st.error ?? '')
            ? EXIT.CONFLICT
            : EXIT.FAILURE,
    );
  return { ...st, result: st.result };
}

export function registerBackupCommands(program: Command): void {
  const bk = group(program, 'backup', 'backups of the Evidence Locker (DR-001)');
  for (const register of [createCommand, listCommand]) register(bk);
  const ev = group(program, 'evidence', 'the Evidence Locker');
  provisionCommand(group(ev, 'storage', 'storage usage and checks'));
  for (const register of [restoreCommand, exportCommand, diagnosticsCommand]) register(ev);
}

function createCommand(bk: Command): void {
  bk.command('create')
    .description('consistent backup: index snapshot, blobs, anchor chain, public keys, manifest + digest')
    .requiredOption('--type <type>', 'what to back up: evidence-locker')
    .option('--output-dir <dir>', 'backup root: a directory or s3://bucket[/prefix] (default Backup:Path, <dataDir>/backups)')
    .option('--no-wait', 'start and return the backup id')
    .action(
      action(async (o: { type: string; outputDir?: string; wait: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.type !== 'evidence-locker') throw new CliError('--type must be evidence-locker', EXIT.USAGE);
        const r = await c.api().call(BackupAccepted, 'POST', '/backups', { type: o.type, outputDir: loc(o.outputDir) });
        if (!o.wait) return print(c.format, r, () => `started backup ${r.backupId} -> ${r.location}`);
        const st = await waitFor(
          c,
          () => c.api().call(BackupStatus, 'GET', `/backups/${r.backupId}`),
          'backup',
          (p) => [Number(p.blobBatchesDone), Number(p.blobBatches)],
        );
        const s = st.result;
        print(c.format, s, () => renderBackup(s));
        return s.problems?.length ? EXIT.INTEGRITY : EXIT.OK;
      }),
    );
}

function renderBackup(s: NonNullable<BackupStatus['result']>): string {
  return renderKv({
    backup: s.id,
    status: s.status,
    location: s.location,
    created: s.createdAt,
    items: s.items,
    blobs: s.blobs,
    size: humanBytes(s.sizeBytes),
    'log size': s.logSize,
    'latest anchor': s.latestAnchor ? `${s.latestAnchor.id.slice(0, 16)} (seq ${s.latestAnchor.seq}, ${s.latestAnchor.logSize} leaves)` : '-',
    manifest: s.manifestSha256,
    problems: s.problems?.length ? s.problems.map((p) => `${p.id}: ${p.problem}`).join('; ') : 'none',
  });
}

function listCommand(bk: Command): void {
  bk.command('list')
    .description('backups with id, time, size, item count and latest anchor')
    .requiredOption('--type <type>', 'evidence-locker')
    .option('--dir <dir>', 'backup root: a directory or s3://bucket[/prefix] (default Backup:Path)')
    .action(
      action(async (o: { type: string; dir?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.type !== 'evidence-locker') throw new CliError('--type must be evidence-locker', EXIT.USAGE);
        const r = await c.api().call(BackupList, 'GET', `/backups${qs({ type: o.type, dir: loc(o.dir) })}`);
        print(c.format, r, () =>
          r.backups.length
            ? renderTable(r.backups, [
                { header: 'ID', get: (b) => b.id },
                { header: 'TIME', get: (b) => b.createdAt },
                { header: 'STATUS', get: (b) => b.status },
                { header: 'SIZE', get: (b) => humanBytes(b.sizeBytes), align: 'right' },
                { header: 'ITEMS', get: (b) => b.items, align: 'right' },
                {
                  header: 'LATEST ANCHOR',
                  get: (b) => (b.latestAnchor ? `${b.latestAnchor.id.slice(0, 12)} (seq ${b.latestAnchor.seq}, ${b.latestAnchor.logSize} leaves)` : '-'),
                },
              ])
            : `no backups in ${r.location} (stella backup create --type evidence-locker)`,
        );
      }),
    );
}

function provisionCommand(storage: Command): void {
  storage
    .command('provision')
    .description('prepare a restore target: a directory (created, writable, --size free) or an S3 bucket (created when missing, write/read/delete probe)')
    .requiredOption('--size <size>', 'space needed, e.g. 500G, 2TiB')
    .option('--path <dir|s3://bucket>', 'the target (default: the configured evidence store)')
    .action(
      action(async (o: { size: string; path?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(ProvisionResult, 'POST', '/evidence/storage/provision', { size: o.size, path: loc(o.path) });
        print(
          c.format,
          r,
          () =>
            `provisioned ${r.path}${r.created ? ' (created)' : ''}: ${humanBytes(r.requestedBytes)} requested, ${r.availableBytes === null ? (r.path.startsWith('s3://') ? 'no fixed capacity (S3)' : 'unknown') : humanBytes(r.availableBytes)} free\nnext: stella evidence restore --backup-id <id> --target ${r.path}`,
        );
      }),
    );
}

function restoreCommand(ev: Command): void {
  ev.command('restore')
    .description('durable restore from a backup (DR-001) and/or point-in-time to an anchor (DR-002), then verify --mode full and anchor verify --all')
    .option('--backup-id <id>', 'backup to restore (stella backup list --type evidence-locker)')
    .option('--target <path>', 'directory the blobs are restored into (default EvidenceLocker:Path)')
    .option('--to-anchor <anchor-id>', 'point-in-time: cut back to exactly this anchor; later items are quarantined')
    .option('--backup-dir <dir>', 'backup root: a directory or s3://bucket[/prefix] (default Backup:Path)')
    .option('--no-wait', 'start and return the restore id')
    .action(
      action(async (o: { backupId?: string; target?: string; toAnchor?: string; backupDir?: string; wait: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (!o.backupId && !o.toAnchor) throw new CliError('give --backup-id <id> (full restore) and/or --to-anchor <anchor-id> (point-in-time)', EXIT.USAGE);
        const r = await c.api().call(RestoreAccepted, 'POST', '/evidence/restore', {
          backupId: o.backupId,
          target: o.target ? resolve(o.target) : undefined,
          toAnchor: o.toAnchor,
          backupDir: loc(o.backupDir),
        });
        if (!o.wait) return print(c.format, r, () => `started ${r.restoreId}`);
        const st = await waitFor(
          c,
          () => c.api().call(RestoreStatus, 'GET', `/evidence/restore/${r.restoreId}`),
          'restore',
          (p) => [Number(p.rowsDone) + Number(p.blobsDone), Number(p.rows) + Number(p.blobs)],
        );
        const x = st.result;
        print(c.format, x, () => renderRestore(x));
        return x.outcome === 'passed' ? EXIT.OK : EXIT.INTEGRITY;
      }),
    );
}

type RestoreResult = NonNullable<RestoreStatus['result']>;

function renderRestore(x: RestoreResult): string {
  const lines = [
    `${x.outcome === 'passed' ? 'RESTORED' : 'RESTORE FAILED VERIFICATION'}: ${x.restoreId}${x.backupId ? ` from ${x.backupId}` : ''}`,
    renderKv({
      target: x.target,
      items: x.items,
      'log size': x.logSize,
      'blobs restored': x.blobsRestored,
      'point-in-time': x.pointInTime
        ? `anchor ${x.pointInTime.anchorId.slice(0, 16)} (log size ${x.pointInTime.logSize}): ${x.pointInTime.quarantined} item(s) quarantined, ${x.pointInTime.anchorsArchived} anchor(s) archived`
        : '-',
      'verify --mode full': restoreVerifyText(x.verify),
      'anchor verify --all': restoreAnchorsText(x.anchors),
    }),
  ];
  if (x.nextSteps.length) lines.push('', 'next (serve from the restored path):', ...x.nextSteps.map((s) => `  ${s}`));
  return lines.join('\n');
}

function restoreVerifyText(v: RestoreResult['verify']): string {
  if (!v) return 'skipped';
  return v.kind === 'verify-workflow'
    ? `${v.status.toUpperCase()} (${v.runId}: ${v.checked} checked, ${v.ok} ok, ${v.failed} failed)`
    : `${v.failed ? 'FAILED' : 'PASSED'} (re-hashed ${v.checked} blobs in the target: ${v.ok} ok, ${v.failed} failed)`;
}

function restoreAnchorsText(a: RestoreResult['anchors']): string {
  if (!a) return 'skipped';
  const roots = a.rootsMatchBackup === null ? '' : a.rootsMatchBackup ? ', roots identical to the backup' : `, roots differ: ${a.mismatches.join('; ')}`;
  return `${a.ok ? 'PASSED' : 'FAILED'} (${a.checked}/${a.anchors} anchors${roots})`;
}

function exportCommand(ev: Command): void {
  ev.command('export')
    .description('offline evidence pack for an artifact: items, attestations, anchor + inclusion proofs, RootPack (deterministic archive)')
    .requiredOption('--digest <artifact-digest>', 'the artifact (sha256:…)')
    .requiredOption('--output <file>', 'pack file (.tar.gz, .tar.zst or .tar)')
    .option('--include-deps', 'also the items they reference, transitively')
    .action(
      action(async (o: { digest: string; output: string; includeDeps?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(o.digest, 'artifact digest');
        const comp = compressionFor(o.output);
        const res = await c
          .api()
          .raw(
            'GET',
            `/evidence/export${qs({ digest: o.digest, includeDeps: o.includeDeps, format: comp === 'gzip' ? 'gz' : comp === 'zstd' ? 'zst' : 'tar' })}`,
          );
        const out = resolve(o.output);
        await fsp.mkdir(dirname(out), { recursive: true });
        const tmp = `${out}.part`;
        await pipeline(res.body, createWriteStream(tmp));
        await fsp.rename(tmp, out);
        const r = {
          output: out,
          manifestSha256: res.headers.get('x-stella-manifest-sha256'),
          items: Number(res.headers.get('x-stella-pack-items')),
          anchor: res.headers.get('x-stella-anchor'),
          bytes: (await fsp.stat(out)).size,
        };
        print(
          c.format,
          r,
          () =>
            `wrote ${r.output} (${humanBytes(r.bytes)}): ${r.items} item(s), anchor ${shortDigest(r.anchor)}, manifest ${r.manifestSha256}\nverify offline: stella evidence verify --offline --input ${o.output} --rootpack <trusted-rootpack.json> (or set STELLA_TRUSTED_ROOTPACK)`,
        );
      }),
    );
}

function diagnosticsCommand(ev: Command): void {
  ev.command('diagnostics')
    .description('evidence capture bundle: index status, storage stats, recent anchor chain, integrity results, audit log (no secrets)')
    .option(
      '--output <file>',
      'bundle file (.tar.gz)',
      `evidence-diag-${new Date()
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, '')}.tar.gz`,
    )
    .option('--audit-limit <n>', 'audit log entries to include', '1000')
    .action(
      action(async (o: { output: string; auditLimit: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const d = await c.api().call(Diagnostics, 'GET', `/evidence/diagnostics${qs({ auditLimit: o.auditLimit })}`);
        // Checked again here: whatever the server sent, no private key member leaves this host.
        for (const [n, text] of Object.entries(d.files))
          if (/"d"\s*:/.test(text)) throw new CliError(`diagnostics file ${n} contains a private key member; not written`, EXIT.INTEGRITY);
        const { archive, manifestSha256 } = await writeManifestArchive(
          Object.entries(d.files).map(([path, text]) => ({
            path,
            data: text,
            mediaType: path.endsWith('.jsonl') ? 'application/x-ndjson' : 'application/json',
          })),
          { kind: 'evidence-diagnostics', createdAt: d.generatedAt, compression: compressionFor(o.output), meta: { tenant: d.tenant } },
        );
        const out = resolve(o.output);
        await fsp.mkdir(dirname(out), { recursive: true });
        await fsp.writeFile(out, archive);
        const r = { output: out, files: Object.keys(d.files).sort(), bytes: archive.length, manifestSha256 };
        print(c.format, r, () => `wrote ${r.output} (${humanBytes(r.bytes)}): ${r.files.join(', ')}`);
      }),
    );
}

/**
 * The evidence-pack branch of `stella evidence verify --offline --input <file>`: no API, no
 * database. Trusts only `--rootpack` or the configured trusted RootPack (exit 2 with neither);
 * the pack's own RootPack is reported, never trusted. Exit 4 naming the item on failure.
 */
export async function verifyPackCli(c: Ctx, input: string, rootpack?: string): Promise<number> {
  const trusted = await trustedRootPack(c, rootpack);
  let v: Awaited<ReturnType<typeof verifyEvidencePack>>;
  try {
    v = await verifyEvidencePack(input, { trusted });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'BAD_INPUT') throw new CliError((e as Error).message, EXIT.USAGE);
    throw new CliError(`${input}: evidence pack refused: ${(e as Error).message}`, EXIT.INTEGRITY);
  }
  print(c.format, v, () =>
    v.ok
      ? [
          `VERIFIED: ${input}: evidence pack for ${v.artifact}: ${v.items} item(s), every digest, inclusion proof and signature checked`,
          `  anchor ${v.anchor!.id} (log size ${v.anchor!.logSize}, root ${v.anchor!.rootHash.slice(0, 16)}…) signed by ${v.anchor!.kid}`,
          ...trustLines(v.trustedRootPack, v.embeddedRootPack),
          ...v.attestations.map((a) => `  attestation ${a.id}: ${a.detail}`),
        ].join('\n')
      : [
          `FAILED: ${input}: ${v.problems.length} problem(s)`,
          ...v.problems.map((p) => `  ${p.item ?? p.path}: ${p.reason}${p.item && p.path ? ` [${p.path}]` : ''}`),
          ...trustLines(v.trustedRootPack, v.embeddedRootPack),
        ].join('\n'),
  );
  return v.ok ? EXIT.OK : EXIT.INTEGRITY;
}

export { isEvidencePack };
