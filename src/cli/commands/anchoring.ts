import { promises as fsp, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { JWK } from 'jose';
import { action, ctxOf, group, requireDigest, type Ctx } from '../common';
import { trustedRootPack } from '../trust';
import { API_CODE_TO_EXIT, CliError, EXIT } from '../exit';
import { print, renderKv, renderTable } from '../output';
import { qs } from '../client';
import { verifyOffline, type OfflineTrust, type OfflineVerifyResult } from '../../core/anchoring/offline';
import {
  type AnchorBreak,
  AnchorInspection,
  AnchorList,
  AnchorRunStatus,
  AnchorVerifyResponse,
  CreateAnchorResponse,
  ExportedAnchor,
  InclusionProofFile,
  type ListedAnchor,
  NewChainResponse,
  RecoverAnchorResponse,
  type VerifyStep,
} from '../../contracts/anchoring';
import type { Column, Format } from '../output';
import { anchorCheckpointCommand, anchorConsistencyCommand, anchorWitnessCommands } from './anchoring-standards';
import type { z } from 'zod';
const short = (h: string | null | undefined, n = 12) => (h ? h.slice(0, n) : '-');
const shortChain = (c: string | null | undefined) => (c ? c.slice(0, 15) : '-');

function anchorIdArg(id: string): string {
  const v = id.trim().toLowerCase();
  if (!/^[0-9a-f]{8,64}$/.test(v))
    throw new CliError(`malformed anchor id ${JSON.stringify(id)}: expected 8-64 hex characters (stella evidence anchor list)`, EXIT.USAGE);
  return v;
}

async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch {
    throw new CliError(`${path}: no such file (${what})`, EXIT.USAGE);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${path} is not valid JSON (${what})`, EXIT.USAGE);
  }
}

async function writeOut(path: string, doc: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.part`;
  await fsp.writeFile(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o644 });
  await fsp.rename(tmp, path);
}

/** A pinned key: a JWK, or a JWKS from which the key with the anchor's kid is taken. */
async function readKey(path: string, kid: string | undefined): Promise<JWK> {
  const k = (await readJsonFile(path, 'public key')) as { keys?: unknown; kty?: unknown } | null;
  if (k && Array.isArray(k.keys)) {
    const keys = k.keys as JWK[];
    const m = keys.find((x) => x.kid === kid) ?? (keys.length === 1 ? keys[0] : undefined);
    if (!m) throw new CliError(`${path}: no key with kid ${kid} in the JWKS`, EXIT.USAGE);
    return m;
  }
  if (!k || typeof k !== 'object' || typeof k.kty !== 'string') throw new CliError(`${path} is not a JWK`, EXIT.USAGE);
  return k as JWK;
}

/**
 * What offline anchor/proof verification trusts: `--key`, else `--rootpack` or the configured trusted
 * RootPack. Never the key inside the file: whoever can forge the file can forge that too.
 */
async function offlineTrust(c: Ctx, doc: unknown, o: { key?: string; rootpack?: string }): Promise<OfflineTrust> {
  if (o.key) return { jwk: await readKey(o.key, claimedKid(doc)) };
  if (!o.rootpack && !c.config().trustedRootPack)
    throw new CliError(
      'no trusted key: pass --key <jwk-file> or --rootpack <file>, or configure one (stella config set Verify:TrustedRootPack <file>); the key inside the file is never trusted',
      EXIT.USAGE,
    );
  const t = await trustedRootPack(c, o.rootpack);
  return { rootpack: t.rootpack, fingerprint: t.fingerprint };
}

/** The kid an exported anchor or proof file claims (to pick the key from a JWKS). */
function claimedKid(doc: unknown): string | undefined {
  const kid = (doc as { payload?: { kid?: unknown } } | null)?.payload?.kid;
  return typeof kid === 'string' ? kid : undefined;
}

function offlineReport(format: 'table' | 'json', r: OfflineVerifyResult, file: string): number {
  print(format, r, () =>
    r.ok
      ? renderKv({
          result: 'VERIFIED (offline)',
          file,
          anchor: r.anchorHash,
          chain: r.payload!.chainId,
          seq: r.payload!.seq,
          'log size': r.payload!.logSize,
          root: r.payload!.rootHash,
          'created at': r.payload!.createdAt,
          key: `${r.keyThumbprint} (${r.keySource === 'pinned' ? 'pinned with --key' : 'listed in the trusted RootPack'})`,
          inclusion:
            r.inclusion === 'verified'
              ? `leaf ${r.leafIndex}${r.evidence ? ` = ${r.evidence.id} (${r.evidence.kind}, tenant ${r.evidence.tenant}, ${r.evidence.time})` : ''}`
              : 'none in this file',
        })
      : `FAILED (${r.reason}): ${r.detail}`,
  );
  return r.ok ? EXIT.OK : EXIT.INTEGRITY;
}

function breakLine(b: AnchorBreak): string {
  const tamper = b.tamper ? ` [${b.tamper}]` : '';
  return `anchor ${short(b.anchorId)} (chain ${shortChain(b.chainId)}, seq ${b.seq ?? '?'}): ${b.reason}${tamper}: ${b.detail}`;
}

type AnchorVerifyView = z.infer<typeof AnchorVerifyResponse>;
type AnchorListView = z.infer<typeof AnchorList>;
type AnchorInspectionView = z.infer<typeof AnchorInspection>;
type NewChainView = z.infer<typeof NewChainResponse>;
type InclusionProofView = z.infer<typeof InclusionProofFile>;

export function registerAnchoringCommands(program: Command): void {
  const ev = group(program, 'evidence', 'the Evidence Locker');
  const an = group(ev, 'anchor', 'Merkle anchors of the evidence log (SP-003, INC-003)');
  for (const register of [
    anchorCreateCommand,
    anchorVerifyCommand,
    anchorListCommand,
    anchorInspectCommand,
    anchorExportCommand,
    anchorVerifyExportCommand,
    anchorNewChainCommand,
    anchorRecoverCommand,
    anchorConsistencyCommand,
    anchorCheckpointCommand,
    anchorWitnessCommands,
  ])
    register(an);
  proofCommands(ev);
}

function anchorCreateCommand(an: Command): void {
  an.command('create')
    .description('anchor the evidence log now: sign the tree head, linked to the previous anchor (skips when the log has not grown unless --force)')
    .option('--reason <text>', 'why (recorded on the anchor)')
    .option('--force', 'anchor even if no leaves were added since the last anchor')
    .action(
      action(async (o: { reason?: string; force?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const started = await c
          .api()
          .call(CreateAnchorResponse, 'POST', '/evidence/anchors', { ...(o.reason ? { reason: o.reason } : {}), ...(o.force ? { force: true } : {}) });
        const r = started.status === 'running' ? await followAnchoring(c, started) : started;
        print(c.format, r, () => {
          const a = r.anchor;
          if (r.status === 'skipped' || !a) return `skipped: ${r.message}`;
          return renderKv({
            result: r.status,
            anchor: a.id,
            chain: a.chainId,
            seq: a.seq,
            'log size': a.logSize,
            'new leaves': r.leavesRead,
            root: a.rootHash,
            'prev anchor': a.prevAnchorHash ?? '(genesis)',
            'created at': a.createdAt,
            workflow: r.workflowId,
          });
        });
      }),
    );
}

/** Polls an anchoring that outlived the API's wait; a failure exits by its code with its reason. */
async function followAnchoring(c: Ctx, started: CreateAnchorResponse): Promise<CreateAnchorResponse> {
  if (!c.quiet && c.format !== 'json') process.stderr.write(`${started.message}\n`);
  for (;;) {
    const st = await c.api().call(AnchorRunStatus, 'GET', started.statusUrl ?? `/evidence/anchors/runs/${started.workflowId}`);
    if (st.result) return st.result;
    if (st.status !== 'RUNNING') {
      const exit = (st.errorCode && API_CODE_TO_EXIT[st.errorCode]) || EXIT.FAILURE;
      throw new CliError(`anchoring ${started.workflowId} ${st.status.toLowerCase()}${st.error ? `: ${st.error}` : ''}`, exit);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function anchorVerifyCommand(an: Command): void {
  an.command('verify')
    .description('verify anchors: signatures, links, roots recomputed from the log, consistency; exit 4 on a break')
    .option('--latest', 'the newest anchor of the active chain (and its link)')
    .option('--all', 'every anchor of every chain')
    .option('--verbose', 'one line per anchor checked')
    .option('--rootpack <file>', 'also trust the keys of this RootPack (e.g. keys of a host lost in a disaster)')
    .action(
      action(async (o: { latest?: boolean; all?: boolean; verbose?: boolean; rootpack?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.latest && o.all) throw new CliError('give --latest or --all, not both', EXIT.USAGE);
        const scope = o.all ? 'all' : 'latest';
        const rootPack = o.rootpack ? readRootPackOption(o.rootpack) : undefined;
        const r = await c
          .api()
          .call(AnchorVerifyResponse, 'POST', '/evidence/anchors/verify', { scope, verbose: !!o.verbose, ...(rootPack ? { rootPack } : {}) });
        print(c.format, r, () => renderAnchorVerify(r, !!o.verbose));
        if (!r.ok) {
          if (c.format !== 'json')
            process.stderr.write(
              `stella: anchor verification failed: ${r.firstBreak ? breakLine(r.firstBreak) : 'log rows altered, a timestamp failed or witnesses are missing (see above)'}\n`,
            );
          return EXIT.INTEGRITY;
        }
      }),
    );
}

/** The RootPack given with --rootpack, parsed (a usage error when unreadable). */
function readRootPackOption(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`--rootpack ${path}: ${(e as Error).message}`, EXIT.USAGE);
  }
}

function renderAnchorVerify(r: AnchorVerifyView, verbose: boolean): string {
  const lines: string[] = [];
  const kv: Record<string, unknown> = {
    'anchor chain': r.ok ? 'OK' : 'BROKEN',
    scope: r.scope,
    anchors: `${r.checked} of ${r.total} verified`,
    leaves: `${r.leavesHashed} re-hashed from the log`,
    latest: r.latest ? `${r.latest.id} (seq ${r.latest.seq}, ${r.latest.logSize} leaves, ${r.latest.createdAt})` : 'none',
  };
  if (r.firstBreak) kv['first break'] = breakLine(r.firstBreak);
  if (r.checkpoints)
    kv.checkpoints = `${r.checkpoints.checked} C2SP checkpoints verified${r.checkpoints.without ? `, ${r.checkpoints.without} anchors predate checkpoints` : ''}`;
  const badTs = (r.timestamps ?? []).filter((t) => !t.ok);
  if (r.timestamps?.length)
    kv.timestamps = badTs.length
      ? `FAILED: ${badTs.map((t) => `${short(t.anchorId)}: ${t.problem}`).join('; ')}`
      : `${r.timestamps.length} RFC 3161 tokens verified`;
  if (r.witness?.quorum)
    kv.witnesses = r.witness.unwitnessed.length
      ? `below quorum ${r.witness.quorum} of ${r.witness.configured}: ${r.witness.unwitnessed.map((u) => `${short(u.anchorId)} (${u.valid})`).join(', ')}`
      : `every anchor cosigned by ${r.witness.quorum} of ${r.witness.configured} witnesses`;
  const rows = r.logRows.filter((x) => !x.acknowledged);
  if (rows.length) kv['log rows'] = rows.map((x) => `seq ${x.seq} (${x.itemId}, tenant ${x.tenant}): ${x.detail}`).join('; ');
  const ack = r.breaks.filter((b) => b.acknowledged);
  const ackRows = r.logRows.filter((x) => x.acknowledged).map((x) => `log row seq ${x.seq}`);
  if (ack.length || ackRows.length)
    kv.acknowledged = [...ack.map((b) => breakLine(b)), ...ackRows].join('; ') + ' [recorded when new-chain archived the chain]';
  lines.push(renderKv(kv));
  if (verbose && r.steps?.length) {
    lines.push(
      '',
      renderTable<VerifyStep>(r.steps, [
        { header: 'CHAIN', get: (s) => shortChain(s.chainId) },
        { header: 'SEQ', get: (s) => s.seq, align: 'right' },
        { header: 'ANCHOR', get: (s) => short(s.anchorId) },
        { header: 'LOG SIZE', get: (s) => s.logSize, align: 'right' },
        { header: 'RESULT', get: (s) => (s.ok ? 'ok' : 'BROKEN') },
        { header: 'DETAIL', get: (s) => s.detail },
      ]),
    );
    for (const ch of r.chains)
      lines.push(
        `chain ${ch.id} (${ch.status}, ${ch.reason}): ${ch.checked}/${ch.anchors} ok${ch.firstBreak ? `, first break at seq ${ch.firstBreak.seq}` : ''}`,
      );
  }
  return lines.join('\n');
}

function anchorListCommand(an: Command): void {
  an.command('list')
    .description('anchors, newest first')
    .option('--show-links', "show each anchor's link to its predecessor and whether it holds")
    .option('--before <time>', 'only anchors created before this time (ISO-8601), e.g. for point-in-time restore')
    .option('--chain <id>', 'only this chain')
    .option('--limit <n>', 'at most n anchors', '50')
    .action(
      action(async (o: { showLinks?: boolean; before?: string; chain?: string; limit: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.before && Number.isNaN(Date.parse(o.before)))
          throw new CliError(`--before ${JSON.stringify(o.before)} is not a timestamp (e.g. 2026-01-17T12:00:00Z)`, EXIT.USAGE);
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError('--limit must be 1-1000', EXIT.USAGE);
        const r = await c
          .api()
          .call(AnchorList, 'GET', `/evidence/anchors${qs({ before: o.before, chain: o.chain, limit, links: o.showLinks ? 'true' : undefined })}`);
        print(c.format, r, () => renderAnchorList(r, !!o.showLinks));
      }),
    );
}

/** The oldest broken link among the anchors listed (newest first): lowest seq of the oldest chain that breaks. */
function firstBreak(anchors: ListedAnchor[]): ListedAnchor | null {
  const broken = anchors.filter((a) => a.link === 'broken');
  return broken.length ? broken.reduce((a, b) => (b.createdAt < a.createdAt || (b.chainId === a.chainId && b.seq < a.seq) ? b : a)) : null;
}

function renderAnchorList(r: AnchorListView, showLinks: boolean): string {
  if (!r.anchors.length) return 'no anchors (stella evidence anchor create)';
  const cols: Column<ListedAnchor>[] = [
    { header: 'ID', get: (a) => short(a.id) },
    { header: 'CHAIN', get: (a) => shortChain(a.chainId) },
    { header: 'SEQ', get: (a) => a.seq, align: 'right' },
    { header: 'LOG SIZE', get: (a) => a.logSize, align: 'right' },
    { header: 'ROOT', get: (a) => short(a.rootHash, 16) },
    { header: 'STATUS', get: (a) => a.status },
    { header: 'CREATED', get: (a) => a.createdAt },
  ];
  if (showLinks) {
    cols.push(
      { header: 'PREV', get: (a) => short(a.prevAnchorHash) },
      { header: 'LINK', get: (a) => (a.link === 'broken' ? `${a === firstBreak(r.anchors) ? '>> FIRST BREAK: ' : 'BROKEN: '}${a.linkDetail}` : a.link) },
    );
  }
  const out = [renderTable(r.anchors, cols)];
  if (showLinks) {
    const first = firstBreak(r.anchors);
    out.push(
      first
        ? `first break: anchor ${short(first.id)} (chain ${shortChain(first.chainId)}, seq ${first.seq}): ${first.linkDetail ?? 'link broken'}; see: stella evidence anchor verify --all --verbose`
        : 'links: no break among the anchors listed',
    );
    for (const ch of r.chains)
      out.push(
        `chain ${ch.id}: ${ch.status}, started ${ch.startedAt} (${ch.reason})${ch.prevChainId ? `, follows ${shortChain(ch.prevChainId)} at head ${short(ch.prevChainHeadHash)}` : ''}`,
      );
  }
  return out.join('\n');
}

function anchorInspectCommand(an: Command): void {
  an.command('inspect <anchor-id>')
    .description('one anchor: signed payload, signature, link, chain')
    .action(
      action(async (id: string, _o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(AnchorInspection, 'GET', `/evidence/anchors/${id === 'latest' ? 'latest' : anchorIdArg(id)}`);
        print(c.format, r, () => renderAnchorInspection(r));
      }),
    );
}

function renderAnchorInspection(r: AnchorInspectionView): string {
  return renderKv({
    id: r.anchor.id,
    chain: `${r.anchor.chainId} (${r.chain?.status ?? '?'}, ${r.chain?.reason ?? '?'})`,
    seq: r.anchor.seq,
    'log size': r.anchor.logSize,
    root: r.anchor.rootHash,
    'prev anchor': r.anchor.prevAnchorHash ?? '(genesis)',
    kid: r.anchor.kid,
    'created at': r.anchor.createdAt,
    status: r.anchor.status,
    reason: r.anchor.reason,
    signature: `${r.signature.ok ? 'valid' : 'INVALID'}: ${r.signature.detail}`,
    link: `${r.link.ok ? 'ok' : 'BROKEN'}: ${r.link.detail}`,
    'id = hash(jws)': r.jwsHashMatchesId ? 'yes' : 'NO (row altered)',
    previous: r.previousId,
    next: r.nextId,
    ...(r.anchor.seq === 0 && r.chain?.prevChainId ? { 'follows chain': `${r.chain.prevChainId} at head ${r.chain.prevChainHeadHash}` } : {}),
  });
}

function anchorExportCommand(an: Command): void {
  an.command('export')
    .description('write an anchor as a self-contained file, verifiable offline with its public key')
    .option('--latest', 'the newest anchor')
    .option('--id <anchor-id>', 'this anchor')
    .requiredOption('--output <file>', 'where to write the JSON')
    .action(
      action(async (o: { latest?: boolean; id?: string; output: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (!!o.latest === !!o.id) throw new CliError('give --latest or --id <anchor-id>', EXIT.USAGE);
        const doc = await c.api().call(ExportedAnchor, 'GET', `/evidence/anchors/${o.latest ? 'latest' : anchorIdArg(o.id!)}/export`);
        await writeOut(o.output, doc);
        const summary = {
          output: o.output,
          anchor: doc.anchorHash,
          chain: doc.payload.chainId,
          seq: doc.payload.seq,
          logSize: doc.payload.logSize,
          keyThumbprint: doc.keyThumbprint,
        };
        print(
          c.format,
          summary,
          () =>
            `wrote ${o.output}: anchor ${doc.anchorHash} (seq ${doc.payload.seq}, ${doc.payload.logSize} leaves, key ${doc.keyThumbprint}); check it with: stella evidence anchor verify-export ${o.output}`,
        );
      }),
    );
}

function anchorVerifyExportCommand(an: Command): void {
  an.command('verify-export <file>')
    .description('OFFLINE: verify an exported anchor or proof file (no API, no database)')
    .option('--evidence-id <id>', 'the file must prove this evidence item is included')
    .option('--leaf-file <file>', 'the file must prove these leaf bytes are included')
    .option('--key <jwk-file>', 'trusted public key (JWK or JWKS) to pin')
    .option('--rootpack <file>', 'trusted RootPack (default: the configured Verify:TrustedRootPack)')
    .action(
      action(async (file: string, o: { evidenceId?: string; leafFile?: string; key?: string; rootpack?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.evidenceId) requireDigest(o.evidenceId, 'evidence id');
        const doc = await readJsonFile(file, 'anchor export');
        const leaf = o.leafFile
          ? await fsp.readFile(o.leafFile).catch(() => {
              throw new CliError(`${o.leafFile}: no such file`, EXIT.USAGE);
            })
          : undefined;
        const trust = await offlineTrust(c, doc, o);
        return offlineReport(c.format, await verifyOffline(doc, { evidenceId: o.evidenceId, leaf, trust }), file);
      }),
    );
}

function anchorNewChainCommand(an: Command): void {
  an.command('new-chain')
    .description('archive the active chain and start a new one (INC-003); the new chain records the old head and the reason')
    .requiredOption('--reason <reason>', 'why, e.g. chain-break-recovery')
    .action(
      action(async (o: { reason: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (!o.reason.trim()) throw new CliError('--reason must not be empty', EXIT.USAGE);
        const r = await c.api().call(NewChainResponse, 'POST', '/evidence/anchors/new-chain', { reason: o.reason });
        print(c.format, r, () => renderNewChain(r, o.reason));
      }),
    );
}

function renderNewChain(r: NewChainView, reason: string): string {
  return renderKv({
    'new chain': r.chainId,
    'archived chain': r.oldChainId ?? '(none)',
    'old head': r.oldHeadHash ?? '(none)',
    'old chain at archival': r.oldChainVerify.ok
      ? 'intact'
      : `broken: ${r.oldChainVerify.firstBreak ? `${r.oldChainVerify.firstBreak.reason} at ${short(r.oldChainVerify.firstBreak.anchorId)}` : ''}${r.oldChainVerify.logRows.length ? ` log rows ${r.oldChainVerify.logRows.join(',')}` : ''}`,
    'first anchor': `${r.anchor.id} (seq 0, ${r.logSize} leaves)`,
    'nodes rebuilt': r.rebuiltNodes,
    reason,
  });
}

function anchorRecoverCommand(an: Command): void {
  an.command('recover')
    .description('restore one anchor row from a backup after checking its signature and root against the log')
    .requiredOption('--id <anchor-id>', 'the anchor to restore')
    .option('--source <source>', '"backup" (<dataDir>/backups/anchors on the server) or a backup directory/file path', 'backup')
    .action(
      action(async (o: { id: string; source: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(RecoverAnchorResponse, 'POST', `/evidence/anchors/${anchorIdArg(o.id)}/recover`, { source: o.source });
        print(c.format, r, () =>
          !r.replaced && r.before
            ? `anchor ${r.anchor.id} (chain ${shortChain(r.anchor.chainId)}, seq ${r.anchor.seq}) is intact (matches the verified copy in ${r.source}); nothing to do`
            : `${r.replaced ? 'restored' : 'inserted'} anchor ${r.anchor.id} (chain ${shortChain(r.anchor.chainId)}, seq ${r.anchor.seq}) from ${r.source}; run stella evidence anchor verify --all`,
        );
      }),
    );
}

/** `evidence proof <id>` and its offline `verify` subcommand. */
function proofCommands(ev: Command): void {
  const proof = ev
    .command('proof')
    .description('inclusion proof of an evidence item in an anchored tree (verifiable offline)')
    .argument('<evidence-id>', 'evidence id sha256:…')
    .option('--anchor <anchor-id>', 'prove against this anchor (default: newest covering the item)')
    .option('--output <file>', 'write the proof here (default: stdout)')
    .action(
      action(async (id: string, o: { anchor?: string; output?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(id, 'evidence id');
        const doc = await c.api().call(InclusionProofFile, 'GET', `/evidence/${id}/proof${qs({ anchor: o.anchor ? anchorIdArg(o.anchor) : undefined })}`);
        if (o.output) await writeProof(c.format, id, doc, o.output);
        else print(c.format, doc, () => renderProof(id, doc));
      }),
    );
  proofVerifyCommand(proof);
}

async function writeProof(format: Format, id: string, doc: InclusionProofView, output: string): Promise<void> {
  await writeOut(output, doc);
  const s = {
    output,
    evidenceId: id,
    leafIndex: doc.inclusion.leafIndex,
    treeSize: doc.inclusion.treeSize,
    anchor: doc.anchorHash,
    proofHashes: doc.inclusion.proof.length,
  };
  print(
    format,
    s,
    () =>
      `wrote ${output}: ${id} is leaf ${s.leafIndex} of ${s.treeSize} under anchor ${s.anchor} (${s.proofHashes} proof hashes); check offline: stella evidence proof verify ${output}`,
  );
}

function renderProof(id: string, doc: InclusionProofView): string {
  return renderKv({
    evidence: id,
    'leaf index': doc.inclusion.leafIndex,
    'tree size': doc.inclusion.treeSize,
    'leaf hash': doc.inclusion.leafHash,
    anchor: doc.anchorHash,
    root: doc.payload.rootHash,
    proof: doc.inclusion.proof.map((h) => short(h, 16)).join(' '),
  });
}

function proofVerifyCommand(proof: Command): void {
  proof
    .command('verify <proof-file>')
    .description('OFFLINE: verify a proof file: anchor signature, inclusion of the leaf, leaf names the evidence')
    .option('--key <jwk-file>', 'trusted public key (JWK or JWKS) to pin')
    .option('--rootpack <file>', 'trusted RootPack (default: the configured Verify:TrustedRootPack)')
    .option('--evidence-id <id>', 'the proof must be for this evidence id')
    .action(
      action(async (file: string, o: { key?: string; rootpack?: string; evidenceId?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.evidenceId) requireDigest(o.evidenceId, 'evidence id');
        const doc = await readJsonFile(file, 'proof');
        const trust = await offlineTrust(c, doc, o);
        const r = await verifyOffline(doc, { trust, evidenceId: o.evidenceId });
        if (r.ok && r.inclusion !== 'verified')
          return offlineReport(
            c.format,
            { ok: false, reason: 'inclusion', detail: 'the file carries no inclusion proof (an anchor export? use anchor verify-export)' },
            file,
          );
        return offlineReport(c.format, r, file);
      }),
    );
}
