import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { action, ctxOf, requireDigest, group } from '../common';
import { API_CODE_TO_EXIT, CliError, EXIT } from '../exit';
import { print, renderTable, renderKv, shortDigest, humanBytes } from '../output';
import { qs } from '../client';
import { EvidenceItem, EvidenceList, Existence, IngestResult } from '../../contracts/evidence';
import { VerifyReport, VerifyRunStatus, VerifyStarted } from '../../contracts/locker';
import { progressBar } from '../progress';
import { verifyOffline } from './retention';
import { isEvidencePack, verifyPackCli } from './backup';

const KINDS = ['sbom', 'scan-report', 'vex', 'attestation', 'replay-bundle', 'log', 'other'];

/** An evidence item as the API answers it. */
export type ItemView = EvidenceItem;

export const itemColumns = [
  { header: 'ID', get: (i: ItemView) => shortDigest(i.id) },
  { header: 'KIND', get: (i: ItemView) => i.kind },
  { header: 'TYPE', get: (i: ItemView) => i.predicateType ?? i.mediaType },
  { header: 'SIZE', get: (i: ItemView) => humanBytes(i.size), align: 'right' as const },
  { header: 'STATE', get: (i: ItemView) => i.state },
  // How it was made: signed (verified at ingest) / produced-by-stella, with the signer key id; or uploaded (unsigned).
  {
    header: 'PROVENANCE',
    get: (i: ItemView) => (i.provenance === 'uploaded' ? 'uploaded' : `${i.provenance} ${i.signer ? i.signer.slice(0, 12) : ''}`.trim()),
  },
  { header: 'CREATED', get: (i: ItemView) => i.createdAt },
];

export function registerEvidenceCommands(program: Command): void {
  const ev = group(program, 'evidence', 'the Evidence Locker');
  for (const register of [putCommand, getCommand, listCommand, existsCommand, inspectCommand, verifyCommand, verifyReportCommand]) register(ev);
}

function putCommand(ev: Command): void {
  ev.command('put <file>')
    .description('store a file as evidence for an artifact (idempotent by content digest)')
    .requiredOption('--artifact <digest...>', 'subject artifact digest(s) sha256:…')
    .requiredOption('--kind <kind>', `evidence kind: ${KINDS.join(', ')}`)
    .option('--media-type <type>', 'media type', 'application/octet-stream')
    .option('--parent <id...>', 'evidence this item derives from')
    .option('--predicate-type <uri>', 'in-toto predicate type (attestations)')
    .action(
      action(async (file: string, o: { artifact: string[]; kind: string; mediaType: string; parent?: string[]; predicateType?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        for (const a of o.artifact) requireDigest(a, 'artifact digest');
        for (const p of o.parent ?? []) requireDigest(p, 'parent id');
        if (!KINDS.includes(o.kind)) throw new CliError(`unknown kind ${o.kind}; expected one of ${KINDS.join(', ')}`, EXIT.USAGE);
        const st = await fsp.stat(file).catch(() => null);
        if (!st?.isFile()) throw new CliError(`${file}: no such file`, EXIT.USAGE);
        const mediaType = o.mediaType === 'application/octet-stream' && file.endsWith('.json') ? 'application/json' : o.mediaType;
        const params = new URLSearchParams({ kind: o.kind });
        for (const a of o.artifact) params.append('artifact', a);
        for (const p of o.parent ?? []) params.append('parent', p);
        if (o.predicateType) params.set('predicateType', o.predicateType);
        const res = await c.api().raw('POST', `/evidence?${params}`, {
          body: Readable.from(createReadStream(file)),
          headers: { 'content-type': mediaType, 'content-length': String(st.size) },
        });
        const r = IngestResult.parse(await res.json());
        print(c.format, r, () => `${r.created ? 'stored' : 'already present'}: ${r.id} (${humanBytes(r.size)}, log #${r.logSeq})`);
      }),
    );
}

function getCommand(ev: Command): void {
  ev.command('get <id>')
    .description('fetch an item (verified against its digest)')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(
      action(async (id: string, o: { output?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(id, 'evidence id');
        const res = await c.api().raw('GET', `/evidence/${id}`);
        const body = res.body;
        if (o.output) {
          const tmp = `${o.output}.part`;
          await pipeline(body, createWriteStream(tmp));
          await fsp.rename(tmp, o.output);
        } else await pipeline(body, process.stdout);
      }),
    );
}

function listCommand(ev: Command): void {
  ev.command('list')
    .description('evidence for an artifact')
    .option('--artifact <digest>', 'subject artifact digest')
    .option('--kind <kind>', 'only this kind')
    .option('--limit <n>', 'page size', '100')
    .option('--cursor <c>', 'continue from a previous page')
    .option('--all', 'include purged items')
    .action(
      action(async (o: { artifact?: string; kind?: string; limit: string; cursor?: string; all?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.artifact) requireDigest(o.artifact, 'artifact digest');
        const r = await c
          .api()
          .call(EvidenceList, 'GET', `/evidence${qs({ artifact: o.artifact, kind: o.kind, limit: o.limit, cursor: o.cursor, all: o.all })}`);
        print(
          c.format,
          r,
          () => (r.items.length ? renderTable(r.items, itemColumns) : 'no evidence found') + (r.nextCursor ? `\n(more: --cursor ${r.nextCursor})` : ''),
        );
      }),
    );
}

function existsCommand(ev: Command): void {
  ev.command('exists <id>')
    .description('whether an item is indexed and its blob stored (exit 0 yes, 3 not indexed, 4 indexed but the blob is missing or damaged)')
    .option('--deep', 're-hash the blob instead of checking its presence and size')
    .action(
      action(async (id: string, o: { deep?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(id, 'evidence id');
        let e: Existence;
        try {
          e = await c.api().call(Existence, 'GET', `/evidence/${id}/exists${qs({ deep: o.deep ? 'true' : undefined })}`);
        } catch (err) {
          if (!(err instanceof CliError && err.exitCode === EXIT.NOT_FOUND)) throw err;
          print(c.format, { id, indexed: false, exists: false }, () => `not found: ${id}`);
          return EXIT.NOT_FOUND;
        }
        print(c.format, e, () => {
          const how = e.check === 'hash' ? 're-hashed' : 'present, size checked; --deep re-hashes it';
          if (e.exists) return `exists: ${id} (${e.kind}, ${humanBytes(e.size ?? 0)}; blob ${how})`;
          return `indexed but not retrievable: ${id} (state ${e.state}, blob ${e.blob}); see: stella evidence storage check ${id}`;
        });
        return e.exists ? EXIT.OK : EXIT.INTEGRITY;
      }),
    );
}

function inspectCommand(ev: Command): void {
  ev.command('inspect <id>')
    .description('everything the index knows about an item')
    .action(
      action(async (id: string, _o, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(id, 'evidence id');
        const i = await c.api().call(EvidenceItem, 'GET', `/evidence/${id}/meta`);
        print(c.format, i, () =>
          renderKv({
            id: i.id,
            kind: i.kind,
            'media type': i.mediaType,
            'predicate type': i.predicateType,
            size: `${i.size} bytes`,
            state: i.state,
            tier: i.tier,
            created: i.createdAt,
            subjects: i.subjects.join('\n' + ' '.repeat(16)),
            producer: i.producer,
            parents: i.parents.map((p) => `${p.relation} ${p.id}`).join('; ') || '-',
            children: i.children.map((p) => `${p.relation} ${p.id}`).join('; ') || '-',
            'log seq': i.logSeq,
          }),
        );
      }),
    );
}

function verifyCommand(ev: Command): void {
  ev.command('verify')
    .description('integrity verification (quick: sample; full: every blob re-hashed, plus unindexed blobs)')
    .option('--mode <mode>', 'quick or full', 'quick')
    .option('--sample-rate <r>', 'share of items a quick run checks (0..1]')
    .option('--to-anchor <anchor-id>', 'only items up to that anchor (point-in-time)')
    .option('--all-tenants', 'every tenant (admin)')
    .option('--no-wait', 'start and return the run id')
    .option('--offline', 'verify an archive / evidence pack file locally (no API): every body against its manifest')
    .option('--input <file>', 'with --offline: the archive to verify')
    .option(
      '--rootpack <file>',
      "with --offline, for evidence packs: the trusted RootPack the anchor and attestations must verify against (default: STELLA_TRUSTED_ROOTPACK; the pack's own is never trusted)",
    )
    .action(
      action(
        async (
          o: {
            mode: string;
            sampleRate?: string;
            toAnchor?: string;
            allTenants?: boolean;
            wait: boolean;
            offline?: boolean;
            input?: string;
            rootpack?: string;
          },
          cmd: Command,
        ) => {
          const c = ctxOf(cmd);
          if (o.offline || o.input) {
            if (!o.offline || !o.input) throw new CliError('--offline needs --input <archive> (and --input needs --offline)', EXIT.USAGE);
            // Evidence packs (manifest kind evidence-pack) get the full offline check: src/core/pack/verify.ts.
            if (await isEvidencePack(o.input)) return verifyPackCli(c, o.input, o.rootpack);
            return verifyOffline(c, o.input);
          }
          if (o.mode !== 'quick' && o.mode !== 'full') throw new CliError('--mode must be quick or full', EXIT.USAGE);
          const api = c.api();
          const body: Record<string, unknown> = { mode: o.mode, allTenants: !!o.allTenants };
          if (o.sampleRate) body.sampleRate = Number(o.sampleRate);
          if (o.toAnchor) body.toAnchor = o.toAnchor;
          const { runId } = await api.call(VerifyStarted, 'POST', '/evidence/verify', body);
          if (!o.wait) {
            print(c.format, { runId }, () => `started ${runId}`);
            return;
          }
          const bar = progressBar(`verify ${o.mode}`, c.quiet || c.format === 'json');
          let st: VerifyRunStatus;
          for (;;) {
            st = await api.call(VerifyRunStatus, 'GET', `/evidence/verify/${runId}`);
            if (st.progress) bar.update(st.progress.scanned, st.progress.total);
            if (st.status !== 'RUNNING') break;
            await new Promise((r) => setTimeout(r, 500));
          }
          bar.stop();
          if (!st.result) {
            const exit = (st.errorCode && API_CODE_TO_EXIT[st.errorCode]) || EXIT.FAILURE;
            throw new CliError(`verification run ${runId} ended ${st.status}${st.error ? `: ${st.error}` : ''}`, exit);
          }
          const r = st.result;
          print(
            c.format,
            r,
            () =>
              `${r.status === 'passed' ? 'PASSED' : 'FAILED'}: ${o.mode} verification ${runId}: ${r.checked} checked, ${r.ok} ok, ${r.failed} failed${r.acknowledged ? `, ${r.acknowledged} acknowledged` : ''} (of ${r.total} items)${r.failed ? '\nsee: stella evidence verify-report --latest --filter failed' : ''}`,
          );
          return r.failed ? EXIT.INTEGRITY : EXIT.OK;
        },
      ),
    );
}

function verifyReportCommand(ev: Command): void {
  ev.command('verify-report')
    .description('results of an integrity verification run (exit 4 while it lists failures nobody acknowledged)')
    .option('--latest', 'the most recent run (default)')
    .option('--run <id>', 'a specific run')
    .option('--filter <f>', 'failed: only failures (acknowledged ones included, marked); all')
    .action(
      action(async (o: { latest?: boolean; run?: string; filter?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.filter !== undefined && o.filter !== 'failed' && o.filter !== 'all')
          throw new CliError(`--filter must be failed or all, got ${JSON.stringify(o.filter)}`, EXIT.USAGE);
        const r = await c.api().call(VerifyReport, 'GET', `/evidence/verify-report${qs({ runId: o.run, filter: o.filter })}`);
        const open = r.results.filter((x) => x.result !== 'ok' && !x.acknowledged);
        print(c.format, r, () =>
          [
            renderKv({
              run: r.runId,
              mode: r.mode,
              status: r.status,
              started: r.startedAt,
              finished: r.finishedAt,
              checked: r.checked,
              ok: r.ok,
              failed: r.failed,
              acknowledged: r.acknowledged ?? 0,
              'by result': r.byResult,
            }),
            '',
            r.results.length
              ? renderTable(r.results, [
                  { header: 'ID', get: (x) => x.id },
                  { header: 'RESULT', get: (x) => x.result },
                  { header: 'ACK', get: (x) => (x.acknowledged ? `${x.acknowledged.actor}: ${x.acknowledged.reason}` : '-') },
                  { header: 'DETAIL', get: (x) => x.detail },
                ])
              : 'no failures',
          ].join('\n'),
        );
        return open.length ? EXIT.INTEGRITY : EXIT.OK;
      }),
    );
}
