import { promises as fsp, existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { action, ctxOf, group, type Ctx } from '../common';
import { API_CODE_TO_EXIT, CliError, EXIT } from '../exit';
import { print, renderKv, renderTable } from '../output';
import { readKit, writeKit, kitDir } from '../../core/replay/kit';
import { replayVerify, type ReplayResult } from '../../core/replay/verify';
import { validateManifest } from '../../core/replay/manifest';
import { qs } from '../client';
import { LedgerCheck, ReplayResult as ReplayResultBody, ReplayRunList, RunKit, SyncResponse } from '../../contracts/replay';
import type { Envelope } from '../../crypto/dsse';
import { loadRootPack } from '../../crypto/rootpack';
import { walkFiles } from '../../lib/walk';
import { asStellaError } from '../../lib/errors';
import { describeEmbedded, type EmbeddedRootPack } from '../../core/backup/pack/trust';
import { trustedRootPack, trustLines, trustSummary } from '../trust';

/** The fields the table view needs, whether the result was computed here or came from the API. */
type ReplaySummary = Pick<ReplayResult, 'ok' | 'scanId' | 'artifactDigest' | 'strict'> & {
  recorded: { verdict: string | null };
  recomputed: { status: string } | null;
  signer: { keyid: string; valid: boolean; trusted: boolean }[];
  problems: { code: string; severity: string; detail: string }[];
  diff: unknown;
  ledger?: unknown;
  /** Offline runs: the RootPack trusted, and the one that came with the kit or pack (never trusted). */
  trustedRootPack?: ReturnType<typeof trustSummary>;
  embeddedRootPack?: EmbeddedRootPack | null;
};

function summary(r: ReplaySummary): string {
  const lines = [
    renderKv({
      result: r.ok ? 'PASS' : 'FAIL',
      'scan id': r.scanId,
      artifact: r.artifactDigest,
      'recorded verdict': r.recorded.verdict,
      'recomputed verdict': r.recomputed?.status ?? '-',
      signer: r.signer.map((s) => `${s.keyid} (${s.valid ? 'valid' : 'invalid'}, ${s.trusted ? 'trusted' : 'untrusted'})`).join('; ') || '-',
      strict: r.strict,
    }),
  ];
  if (r.trustedRootPack) lines.push(...trustLines(r.trustedRootPack, r.embeddedRootPack ?? null).map((l) => l.trim()));
  if (r.problems.length)
    lines.push(
      '',
      renderTable(r.problems, [
        { header: 'CODE', get: (p) => p.code },
        { header: 'LEVEL', get: (p) => p.severity },
        { header: 'DETAIL', get: (p) => p.detail },
      ]),
    );
  return lines.join('\n');
}

async function writeLogs(dir: string, r: ReplayResult): Promise<string> {
  const d = join(dir, r.scanId ?? 'unknown');
  await fsp.mkdir(d, { recursive: true });
  const file = join(d, 'verify.json');
  await fsp.writeFile(file, JSON.stringify({ ...r, verifiedAt: new Date().toISOString(), source: 'offline' }, null, 2) + '\n');
  return file;
}

type OfflineReplay = ReplayResult & Required<Pick<ReplaySummary, 'trustedRootPack' | 'embeddedRootPack'>>;

/** Core errors (bad input, unusable files) as a one-line CLI error with their exit code. */
async function cliErrors<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const s = asStellaError(e);
    if (s) throw new CliError(s.message, API_CODE_TO_EXIT[s.code] ?? EXIT.FAILURE);
    throw e;
  }
}

/**
 * Runs a replay from files alone: the air-gapped path (no database, Temporal or network). Trusts
 * only --rootpack or the configured trusted RootPack; the kit's rootpack.json is reported only.
 */
async function replayFiles(c: Ctx, manifestPath: string, o: { strict?: boolean; rootpack?: string }): Promise<OfflineReplay> {
  const trusted = await trustedRootPack(c, o.rootpack);
  const kit = await cliErrors(() => readKit(manifestPath));
  const r = await replayVerify({
    manifest: kit.manifest,
    envelope: kit.envelope,
    inputBundle: kit.input,
    outputBundle: kit.output,
    rootpack: trusted.rootpack,
    strict: !!o.strict,
  });
  return { ...r, trustedRootPack: trustSummary(trusted), embeddedRootPack: await describeEmbedded(kit.embeddedRootPack, trusted) };
}

export function registerReplayCommands(program: Command): void {
  for (const register of [replayCommand, verifyCommand]) register(program);
  const kit = program.command('offline-kit').description('air-gapped replay kits');
  for (const register of [kitExportCommand, kitSyncCommand]) register(kit);
  runsListCommand(group(program, 'replay-runs', 'recorded scans that can be replayed'));
}

type ReplayOptions = { strict?: boolean; offline?: boolean; rootpack?: string; logDir?: string; evidence?: string; output?: string };

function replayCommand(program: Command): void {
  program
    .command('replay [manifest]')
    .description('recompute a scan verdict from its input bundle and compare with the recorded output')
    .option('--strict', 'fail on any difference, tool drift included')
    .option('--offline', 'use only the files given: no database, no Temporal, no network')
    .option('--rootpack <file>', "the trusted RootPack (default: STELLA_TRUSTED_ROOTPACK; a kit's or pack's own rootpack.json is never trusted)")
    .option('--log-dir <dir>', 'write verification logs under this directory (e.g. ops/offline/replay)')
    .option('--evidence <pack>', 'replay from an offline evidence pack (.tar.gz) instead of a manifest')
    .option('-o, --output <file>', 'write the verdict JSON to a file')
    .action(
      action(async (manifest: string | undefined, o: ReplayOptions, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await replayLocal(c, manifest, o);
        if (o.logDir) {
          const { trustedRootPack: _t, embeddedRootPack: _e, ...log } = r;
          process.stderr.write(`log: ${await writeLogs(resolve(o.logDir), log)}\n`);
        }
        if (o.output) await writeVerdict(o.output, r);
        print(c.format, r, () => summary(r));
        return r.ok ? EXIT.OK : EXIT.INTEGRITY;
      }),
    );
}

/** `replay`: from an offline evidence pack (--evidence) or from a manifest (file or kit directory). */
async function replayLocal(c: Ctx, manifest: string | undefined, o: ReplayOptions): Promise<OfflineReplay> {
  if (o.evidence) {
    const evidence = o.evidence;
    const { replayFromPack } = await import('../../core/replay/pack');
    const trusted = await trustedRootPack(c, o.rootpack);
    const x = await cliErrors(() => replayFromPack(evidence, { strict: !!o.strict, trusted }));
    return { ...x.result, trustedRootPack: trustSummary(trusted), embeddedRootPack: x.embeddedRootPack };
  }
  if (!manifest) throw new CliError('give a manifest.json (or --evidence <pack>)', EXIT.USAGE);
  const p = existsSync(manifest) && statSync(manifest).isDirectory() ? join(manifest, 'manifest.json') : manifest;
  return replayFiles(c, p, o);
}

async function writeVerdict(file: string, r: OfflineReplay): Promise<void> {
  await fsp.writeFile(
    file,
    JSON.stringify(
      { scanId: r.scanId, artifactDigest: r.artifactDigest, ok: r.ok, verdict: r.recomputed, recorded: r.recorded, problems: r.problems },
      null,
      2,
    ) + '\n',
  );
}

type VerifyOptions = { explain?: boolean; ledger?: boolean; strict?: boolean; rootpack?: string };

function verifyCommand(program: Command): void {
  program
    .command('verify <target>')
    .description('verify a replay manifest (file) or a recorded scan (scan id): signature, bundle digests, replay equality')
    .option('--explain', 'print the differences as JSON')
    .option('--ledger', "check the manifest's inclusion in the Merkle anchors")
    .option('--strict', 'tool drift is an error (default for scan ids)')
    .option('--rootpack <file>', "the trusted RootPack for a manifest file (default: STELLA_TRUSTED_ROOTPACK; the kit's rootpack.json is never trusted)")
    .action(
      action(async (target: string, o: VerifyOptions, cmd: Command) => {
        const c = ctxOf(cmd);
        const r: ReplaySummary = existsSync(target)
          ? await verifyManifest(c, target, o)
          : await c
              .api()
              .call(ReplayResultBody, 'POST', `/replay/runs/${encodeURIComponent(target)}/verify${qs({ ledger: o.ledger })}`, { strict: o.strict ?? true });
        const ledgerOk = !o.ledger || (r.ledger as { ok?: boolean } | undefined)?.ok === true;
        if (o.explain || c.format === 'json')
          print(
            'json',
            o.explain ? { ok: r.ok && ledgerOk, codes: r.problems.map((p) => p.code), problems: r.problems, diff: r.diff, ledger: r.ledger ?? null } : r,
            () => '',
          );
        else print('table', r, () => summary(r) + (o.ledger ? `\n\nledger: ${JSON.stringify(r.ledger)}` : ''));
        return r.ok && ledgerOk ? EXIT.OK : EXIT.INTEGRITY;
      }),
    );
}

/** `verify <file|dir>`: replays the manifest here; --ledger asks the API about its inclusion in the anchors. */
async function verifyManifest(c: Ctx, target: string, o: VerifyOptions): Promise<ReplaySummary> {
  const p = statSync(target).isDirectory() ? join(target, 'manifest.json') : target;
  const local: ReplaySummary = await replayFiles(c, p, { strict: o.strict, rootpack: o.rootpack });
  if (o.ledger) {
    const kit = await readKit(p);
    const m = validateManifest(kit.manifest);
    local.ledger = await c.api().call(LedgerCheck, 'GET', `/replay/runs/${encodeURIComponent(m.scanId)}/ledger`);
  }
  return local;
}

function kitExportCommand(kit: Command): void {
  kit
    .command('export')
    .description('write offline/replay/<scan-id>/ (manifest, bundles, DSSE signature, RootPack snapshot)')
    .requiredOption('--scan-id <id>', 'the recorded scan')
    .requiredOption('--output <dir>', 'kit root directory')
    .action(
      action(async (o: { scanId: string; output: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const k = await c.api().call(RunKit, 'GET', `/replay/runs/${encodeURIComponent(o.scanId)}/kit`);
        const dir = kitDir(resolve(o.output), o.scanId);
        const files = await writeKit(dir, {
          manifest: validateManifest(k.manifest),
          envelope: k.envelope as Envelope,
          input: Buffer.from(k.input, 'base64'),
          output: Buffer.from(k.output, 'base64'),
          rootpack: await loadRootPack(k.rootpack),
        });
        print(
          c.format,
          { dir, files },
          () =>
            `wrote ${dir}\n  ${files.map((f) => f.slice(dir.length + 1)).join('\n  ')}\nverify air-gapped: stella replay ${join(dir, 'manifest.json')} --strict --offline --rootpack <trusted-rootpack.json> (or set STELLA_TRUSTED_ROOTPACK)`,
        );
      }),
    );
}

function kitSyncCommand(kit: Command): void {
  kit
    .command('sync <dir>')
    .description('bring offline verification logs (verify.json files under <dir>) back into the locker')
    .action(
      action(async (dir: string, _o, cmd: Command) => {
        const c = ctxOf(cmd);
        if (!existsSync(dir)) throw new CliError(`${dir}: no such directory`, EXIT.USAGE);
        const synced = await syncLogs(c, dir);
        print(c.format, { synced }, () =>
          synced.length
            ? renderTable(synced, [
                { header: 'SCAN', get: (s) => s.scanId },
                { header: 'RESULT', get: (s) => s.result },
                { header: 'CODES', get: (s) => s.codes },
              ])
            : `no verify.json logs under ${dir}`,
        );
      }),
    );
}

/** Posts every verify.json under `dir` (in path order) to the locker. */
async function syncLogs(c: Ctx, dir: string): Promise<{ scanId: string; result: string; codes: string[] }[]> {
  const found: string[] = [];
  for await (const f of walkFiles(resolve(dir))) if (basename(f.path) === 'verify.json') found.push(f.path);
  const synced: { scanId: string; result: string; codes: string[] }[] = [];
  for (const f of found.sort()) {
    const log: unknown = JSON.parse(await fsp.readFile(f, 'utf8'));
    synced.push(await c.api().call(SyncResponse, 'POST', '/replay/sync', log));
  }
  return synced;
}

function runsListCommand(runs: Command): void {
  runs
    .command('list')
    .option('--artifact <digest>')
    .option('--limit <n>', 'how many', '50')
    .action(
      action(async (o: { artifact?: string; limit: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(ReplayRunList, 'GET', `/replay/runs${qs({ artifact: o.artifact, limit: o.limit })}`);
        print(c.format, r, () =>
          renderTable(r.runs, [
            { header: 'SCAN', get: (x) => x.scanId },
            { header: 'ARTIFACT', get: (x) => x.artifactDigest.slice(0, 19) },
            { header: 'VERDICT', get: (x) => x.verdict },
            { header: 'LAST VERIFY', get: (x) => x.lastResult ?? '-' },
            { header: 'CREATED', get: (x) => x.createdAt },
          ]),
        );
      }),
    );
}
