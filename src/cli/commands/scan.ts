import { createPublicKey } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Command } from 'commander';
import { action, type Ctx, ctxOf, group, requireDigest } from '../common';
import { CliError, EXIT, API_CODE_TO_EXIT } from '../exit';
import { type Column, print, renderKv, renderTable, shortDigest, humanBytes } from '../output';
import { type ApiClient, type ApiResponse, qs } from '../client';
import { loadFeed, ScannerError } from '../../scanner/index';
import { feedsStatusCommand, feedsSyncCommand } from './feeds-sync';
import { scanExplainCommand } from './scan-explain';
import type { z } from 'zod';
import { formatZodError } from '../../lib/zod';
import {
  FeedImported,
  FeedList,
  ImageList,
  RegisteredImage,
  ScannerConfig,
  ScannerConfigSet,
  ScanQueue,
  type ScanRun,
  ScanRunList,
  ScanStarted,
  ScanStatus,
} from '../../contracts/scan';
import {
  ATTEST_TYPE_NAMES,
  ATTESTATION_FORMATS,
  AttestationList,
  type AttestationView,
  CreatedAttestation,
  ExportedAttestation,
  ImportedAttestation,
  SignerStatus,
  VerifiedAttestation,
} from '../../contracts/attest';
import { RootPack } from '../../contracts/keys';

const ATTEST_TYPES: readonly string[] = ATTEST_TYPE_NAMES;

type VerifiedAttestationView = z.infer<typeof VerifiedAttestation>;
type SignerStatusView = z.infer<typeof SignerStatus>;
type ScanQueueView = z.infer<typeof ScanQueue>;

/** Parses the JSON answer of a raw upload with its contract schema. */
async function parsed<S extends z.ZodType>(schema: S, res: ApiResponse, what: string): Promise<z.infer<S>> {
  const r = schema.safeParse(await res.json());
  if (!r.success) throw new CliError(`unexpected answer from ${what}: ${formatZodError(r.error, 'response')}`, EXIT.FAILURE);
  return r.data;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const countsLine = (c: Record<string, number> | null | undefined) =>
  c ? (['critical', 'high', 'medium', 'low', 'unknown'] as const).map((k) => `${k}=${c[k] ?? 0}`).join(' ') : '-';

type Register = (g: Command) => void;

/** The command groups this module owns, in the order they appear in `stella --help`. */
const GROUPS: [name: string, description: string, commands: Register[]][] = [
  ['scan', 'scan container images: SBOM, advisories, signed attestations (durable workflow)', [scanImageCommand, scanExplainCommand]],
  ['image', 'the local image catalogue (names for image paths on the worker machine)', [imageRegisterCommand, imageListCommand]],
  ['feeds', 'OSV advisory feeds (versioned snapshots)', [feedsImportCommand, feedsSyncCommand, feedsListCommand, feedsStatusCommand]],
  [
    'attest',
    'in-toto/DSSE attestations',
    [attestCreateCommand, attestListCommand, attestVerifyCommand, attestImportCommand, attestExportCommand, attestStatusCommand],
  ],
  ['scanner', 'scan jobs, queue and auto-scan configuration', [scannerJobsCommand, scannerQueueCommand, scannerConfigCommands]],
];

export function registerScanCommands(program: Command): void {
  for (const [name, description, commands] of GROUPS) {
    const g = group(program, name, description);
    for (const register of commands) register(g);
  }
}

// ---- scan ---------------------------------------------------------------------------------

function scanImageCommand(scan: Command): void {
  scan
    .command('image')
    .description('scan an image (catalogue name, absolute path on the worker, registry reference, or a known artifact digest) and attest the results')
    .requiredOption(
      '--image <ref>',
      'catalogue name (stella image list), image path (OCI layout dir, OCI tar, docker-save tar), registry reference (host/repo:tag, host/repo@sha256:…) or sha256 digest',
    )
    .option('--platform <os/arch[/variant]>', "for a registry reference naming a multi-platform index (default: linux and the worker's architecture)")
    .option('--insecure-registry', "speak plain HTTP to the reference's registry host (that host only)")
    .option('--sbom-only', 'stop after storing the SBOM (no advisory matching, no attestations)')
    .option('--sbom-format <format>', 'cyclonedx (CycloneDX 1.6, always stored) or spdx (also store an SPDX 2.3 JSON document)', 'cyclonedx')
    .option('--force', 'scan again and store fresh evidence even if an identical scan exists (supersedes a running non-forced scan)')
    .option('--no-wait', 'start (or join) the workflow and return')
    .option('--timeout <seconds>', 'how long to wait for the result', '900')
    .action(
      action(
        async (
          o: {
            image: string;
            sbomOnly?: boolean;
            sbomFormat: string;
            force?: boolean;
            platform?: string;
            insecureRegistry?: boolean;
            wait: boolean;
            timeout: string;
          },
          cmd: Command,
        ) => {
          if (o.sbomFormat !== 'cyclonedx' && o.sbomFormat !== 'spdx')
            throw new CliError(`--sbom-format must be cyclonedx or spdx, not ${JSON.stringify(o.sbomFormat)}`, EXIT.USAGE);
          const c = ctxOf(cmd);
          const api = c.api();
          const image = await workerImagePath(o.image);
          const started = await api.call(ScanStarted, 'POST', '/scans', {
            image,
            sbomOnly: !!o.sbomOnly,
            ...(o.sbomFormat === 'spdx' ? { sbomFormat: 'spdx' } : {}),
            force: !!o.force,
            ...(o.platform ? { platform: o.platform } : {}),
            ...(o.insecureRegistry ? { insecureRegistry: true } : {}),
          });
          if (!c.quiet && c.format !== 'json') process.stderr.write(`${started.message} (artifact ${started.artifactDigest})\n`);
          if (!o.wait) {
            print(c.format, started, () =>
              renderKv({ workflow: started.workflowId, run: started.runId, artifact: started.artifactDigest, joined: started.joined }),
            );
            return;
          }
          const st = await waitForScan(c, api, started, o.timeout);
          if (!st) return EXIT.PENDING;
          if (st.status !== 'COMPLETED') throw scanFailure(st);
          print(c.format, st, () => renderScanDone(st, started, !!o.sbomOnly));
        },
      ),
    );
}

/** A relative path means the caller's cwd; the worker reads absolute paths (same machine in dev). */
async function workerImagePath(image: string): Promise<string> {
  if (!image.startsWith('sha256:') && !isAbsolute(image) && (image.startsWith('.') || image.includes('/')) && (await fsp.stat(image).catch(() => null)))
    return resolve(image);
  return image;
}

/** Polls the scan until it ends; null (after printing where it stands) when it is still running at the timeout. */
async function waitForScan(c: Ctx, api: ApiClient, started: ScanStarted, timeout: string): Promise<ScanStatus | null> {
  const deadline = Date.now() + Number(timeout) * 1000;
  let last = '';
  for (;;) {
    const st = await api.call(ScanStatus, 'GET', `/scans/status${qs({ workflowId: started.workflowId, runId: started.runId })}`);
    const phase = st.progress?.phase ?? st.status;
    if (phase !== last && !c.quiet && c.format !== 'json') process.stderr.write(`  ${phase}\n`);
    last = phase;
    if (st.status !== 'RUNNING') return st;
    if (Date.now() > deadline) {
      print(
        c.format,
        st,
        () => `still running after ${timeout}s: ${started.workflowId} (phase ${phase}); check: stella scanner jobs list --artifact ${started.artifactDigest}`,
      );
      return null;
    }
    await sleep(500);
  }
}

/** The CLI error for a scan that ended other than COMPLETED, with the exit code of its error type. */
function scanFailure(st: ScanStatus): CliError {
  const msg = st.error ?? `scan ended ${st.status}`;
  const m = /\b(BAD_INPUT|NOT_FOUND|INTEGRITY|CONFLICT|TOO_LARGE|UNAVAILABLE|FORBIDDEN)\b/.exec(JSON.stringify(st.errorType ?? ''));
  const code = st.errorCode ?? m?.[1];
  return new CliError(`${msg}`, (code && API_CODE_TO_EXIT[code]) || EXIT.FAILURE);
}

function renderScanDone(st: ScanStatus, started: ScanStarted, sbomOnly: boolean): string {
  const p = st.progress;
  return [
    `${p?.phase === 'reused' ? 'UP TO DATE (evidence of an identical scan reused)' : 'DONE'}: ${started.artifactDigest}${p?.imageRef ? ` (${p.imageRef})` : ''}`,
    renderKv({
      scan: st.runId,
      sbom: p?.sbomId,
      ...(p?.spdxId ? { 'sbom (spdx)': p.spdxId } : {}),
      components: p?.components,
      report: p?.reportId ?? (sbomOnly ? '(--sbom-only)' : '-'),
      findings: countsLine(p?.counts),
      feed: p?.feed ? `v${p.feed.version} ${shortDigest(p.feed.digest)}` : 'none',
      attestations: p?.attestationIds.length ? p.attestationIds.map(shortDigest).join(', ') : '-',
      ...(p?.reusedFrom ? { 'reused from': p.reusedFrom } : {}),
    }),
    ...(p?.warnings ?? []).map((w) => `warning: ${w}`),
    `see: stella evidence list --artifact ${started.artifactDigest}`,
  ].join('\n');
}

// ---- image catalogue ------------------------------------------------------------------------

function imageRegisterCommand(image: Command): void {
  image
    .command('register <name> <path>')
    .description('register an image path (OCI layout dir, OCI tar, docker-save tar) under a name; the worker reads it from this path')
    .action(
      action(async (name: string, path: string, _o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(RegisteredImage, 'POST', '/images', { name, path: resolve(path) });
        print(c.format, r, () => `registered ${r.name} -> ${r.path} (${r.format}, ${r.digest})${r.replaced ? ` [replaced ${r.replaced.digest}]` : ''}`);
      }),
    );
}

function imageListCommand(image: Command): void {
  image
    .command('list')
    .description('registered images')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(ImageList, 'GET', '/images');
        print(c.format, r, () =>
          r.items.length
            ? renderTable(r.items, [
                { header: 'NAME', get: (i) => i.name },
                { header: 'DIGEST', get: (i) => i.digest },
                { header: 'FORMAT', get: (i) => i.format },
                { header: 'PATH', get: (i) => i.path },
                { header: 'REGISTERED', get: (i) => i.registeredAt },
              ])
            : 'no images registered (stella image register <name> <path>)',
        );
      }),
    );
}

// ---- feeds ----------------------------------------------------------------------------------

function feedsImportCommand(feeds: Command): void {
  feeds
    .command('import <dirOrZip>')
    .description('import OSV JSON records from a directory tree, a .zip or a .json file as a new feed version')
    .action(
      action(async (src: string, _o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const feed = await loadFeedArg(src);
        const body = Buffer.from(JSON.stringify(feed.records));
        const res = await c.api().raw('POST', '/feeds', { body, headers: { 'content-type': 'application/json', 'x-stella-feed-source': resolve(src) } });
        const r = await parsed(FeedImported, res, 'POST /feeds');
        if (r.digest !== feed.digest) throw new CliError(`server recorded feed ${r.digest}, expected ${feed.digest}`, EXIT.INTEGRITY);
        print(
          c.format,
          r,
          () =>
            `${r.created ? 'imported' : 'already imported'}: feed v${r.version} ${r.digest} (${r.records} records; ${r.ecosystems.join(', ')}; ${humanBytes(r.size)})${feed.superseded ? `; ${feed.superseded} superseded duplicate record(s)` : ''}`,
        );
      }),
    );
}

/** The OSV records at src; a usage error when there are none or they do not parse. */
async function loadFeedArg(src: string): Promise<Awaited<ReturnType<typeof loadFeed>>> {
  let feed: Awaited<ReturnType<typeof loadFeed>>;
  try {
    feed = await loadFeed(src);
  } catch (e) {
    if (e instanceof ScannerError) throw new CliError(e.message, EXIT.USAGE);
    throw e;
  }
  if (!feed.count) throw new CliError(`${src}: no OSV records found`, EXIT.USAGE);
  return feed;
}

function feedsListCommand(feeds: Command): void {
  feeds
    .command('list')
    .description('imported feed versions, newest first (scans use the newest)')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(FeedList, 'GET', '/feeds');
        print(c.format, r, () =>
          r.items.length
            ? renderTable(r.items, [
                { header: 'VERSION', get: (i) => i.version, align: 'right' },
                { header: 'DIGEST', get: (i) => i.digest },
                { header: 'RECORDS', get: (i) => i.records, align: 'right' },
                { header: 'ECOSYSTEMS', get: (i) => i.ecosystems.join(',') },
                { header: 'IMPORTED', get: (i) => i.importedAt },
              ])
            : 'no advisory feed imported (stella feeds import <dir|zip>); scans report feed: none',
        );
      }),
    );
}

// ---- attest ---------------------------------------------------------------------------------

function attestCreateCommand(attest: Command): void {
  attest
    .command('create')
    .description('sign and store an attestation for an artifact (slsa-provenance from its latest scan, sbom, vuln)')
    .requiredOption('--subject <digest>', 'artifact digest sha256:…')
    .requiredOption('--type <type>', `attestation type: ${ATTEST_TYPES.join(', ')}`)
    .action(
      action(async (o: { subject: string; type: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(o.subject, 'subject digest');
        if (!ATTEST_TYPES.includes(o.type)) throw new CliError(`unknown --type ${o.type}; expected one of ${ATTEST_TYPES.join(', ')}`, EXIT.USAGE);
        const r = await c.api().call(CreatedAttestation, 'POST', '/attestations', { subject: o.subject, type: o.type });
        print(
          c.format,
          r,
          () =>
            `${r.reused ? 'already attested' : 'created'}: ${o.type} attestation ${r.id} for ${o.subject} (signed by ${r.kid})${r.attests.length ? `\nattests: ${r.attests.join(', ')}` : ''}`,
        );
      }),
    );
}

function attestListCommand(attest: Command): void {
  attest
    .command('list')
    .description('attestations for an artifact, each verified against the trusted RootPack')
    .requiredOption('--subject <digest>', 'artifact digest sha256:…')
    .action(
      action(async (o: { subject: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(o.subject, 'subject digest');
        const r = await c.api().call(AttestationList, 'GET', `/attestations${qs({ subject: o.subject })}`);
        print(c.format, r, () =>
          r.items.length
            ? renderTable(r.items, attestationColumns)
            : `no attestations for ${o.subject} (stella attest create --subject ${o.subject} --type slsa-provenance)`,
        );
        return r.items.some((i) => !i.valid) ? EXIT.INTEGRITY : EXIT.OK;
      }),
    );
}

const attestationColumns: Column<AttestationView>[] = [
  { header: 'ID', get: (i) => shortDigest(i.id) },
  { header: 'TYPE', get: (i) => i.type },
  { header: 'PREDICATE', get: (i) => i.predicateType },
  { header: 'SIGNER', get: (i) => i.signer },
  { header: 'VALID', get: (i) => (i.valid ? 'yes' : `NO${i.error ? ` (${i.error})` : i.signatures?.[0] ? ` (${i.signatures[0].reason})` : ''}`) },
  { header: 'TRUSTED NOW', get: (i) => (i.trustedNow ? 'yes' : i.signatures?.[0] ? `no (${i.signatures[0].reasonNow})` : 'no') },
  { header: 'CREATED', get: (i) => i.createdAt },
];

function attestVerifyCommand(attest: Command): void {
  attest
    .command('verify <id>')
    .description('verify a stored attestation: DSSE signature, signer key and its trust window (RootPack)')
    .action(
      action(async (id: string, _o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(id, 'attestation id');
        const r = await c.api().call(VerifiedAttestation, 'GET', `/attestations/${id}`);
        print(c.format, r, () => renderVerifiedAttestation(r));
        return r.valid ? EXIT.OK : EXIT.INTEGRITY;
      }),
    );
}

function renderVerifiedAttestation(r: VerifiedAttestationView): string {
  return [
    `${r.valid ? 'VALID' : 'INVALID'}: ${r.type} attestation ${r.id}`,
    renderKv({
      'predicate type': r.predicateType,
      subjects: r.subjects.join(', '),
      signer: r.signer,
      'trusted when stored': r.signatures.some((s) => s.valid && s.trustedAtSigning) ? 'yes' : 'no',
      'trusted now': r.trustedNow ? 'yes' : 'no',
      stored: r.createdAt,
      attests: r.attests.map((a) => `${a.id} (${a.relation})`).join(', ') || '-',
    }),
    ...r.signatures.map((s) => `  signature ${s.keyid || '(no keyid)'} ${s.alg ?? ''}: ${s.valid ? 'valid' : 'INVALID'}; ${s.reason}; now: ${s.reasonNow}`),
    ...(r.error ? [`error: ${r.error}`] : []),
  ].join('\n');
}

function attestImportCommand(attest: Command): void {
  attest
    .command('import [file]')
    .description(
      'store an external attestation — a DSSE envelope (cosign\'s keyid "" too) or a Sigstore bundle v0.3 — refused (nothing stored) unless signed by a key the RootPack or a promotion policy\'s {pem} trusts',
    )
    .option('--attests <id...>', 'evidence items the attestation is about (edges)')
    .option('--image <ref>', "instead of a file: import the attestations a registry holds for the image's digest (those that verify)")
    .option('--insecure-registry', "with --image: speak plain HTTP to the image's registry")
    .action(
      action(async (file: string | undefined, o: { attests?: string[]; image?: string; insecureRegistry?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.image) return (await import('./oci-attest')).importFromImage(c, { image: o.image, ...(o.insecureRegistry ? { insecureRegistry: true } : {}) });
        if (!file) throw new CliError('give an attestation file or --image <ref>', EXIT.USAGE);
        for (const a of o.attests ?? []) requireDigest(a, 'attested item id');
        const body = await fsp.readFile(file).catch(() => {
          throw new CliError(`${file}: no such file`, EXIT.USAGE);
        });
        const params = new URLSearchParams();
        for (const a of o.attests ?? []) params.append('attests', a);
        const res = await c.api().raw('POST', `/attestations/import${params.size ? `?${params}` : ''}`, {
          body,
          headers: { 'content-type': 'application/vnd.dsse.envelope.v1+json' },
        });
        const r = await parsed(ImportedAttestation, res, 'POST /attestations/import');
        print(
          c.format,
          r,
          () => `${r.created ? 'stored' : 'already present'}: attestation ${r.id} (${r.predicateType}) for ${r.subject}, signed by ${r.signer}`,
        );
      }),
    );
}

function attestExportCommand(attest: Command): void {
  attest
    .command('export <id>')
    .description(
      'a stored attestation as a Sigstore bundle v0.3 (publicKey hint = signer kid, no Rekor entry) or its bare DSSE envelope, for cosign / sigstore-js / policy-controller',
    )
    .option('--as <format>', `document format: ${ATTESTATION_FORMATS.join(', ')}`, 'sigstore-bundle')
    .option('--output <file>', 'write the document to this file instead of stdout')
    .option('--public-key <file>', "also write the signer's public key (PEM, from the trusted RootPack) for cosign verify-blob-attestation --key")
    .action(
      action(async (id: string, o: { as: string; output?: string; publicKey?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        requireDigest(id, 'attestation id');
        if (!(ATTESTATION_FORMATS as readonly string[]).includes(o.as))
          throw new CliError(`--as ${o.as}: expected one of ${ATTESTATION_FORMATS.join(', ')}`, EXIT.USAGE);
        const r = await c.api().call(ExportedAttestation, 'GET', `/attestations/${id}/export${qs({ format: o.as })}`);
        if (o.publicKey) {
          const doc = r as {
            verificationMaterial?: { publicKey?: { hint?: string } };
            dsseEnvelope?: { signatures: { keyid?: string }[] };
            signatures?: { keyid?: string }[];
          };
          const kid = doc.verificationMaterial?.publicKey?.hint || (doc.dsseEnvelope?.signatures ?? doc.signatures ?? [])[0]?.keyid;
          const pack = await c.api().call(RootPack, 'GET', '/rootpack');
          const key = pack.keys.find((k) => k.kid === kid);
          if (!key)
            throw new CliError(`the signer ${kid || '(no key id)'} of attestation ${id} is not in the trusted RootPack; no public key written`, EXIT.NOT_FOUND);
          const { kty, crv, x, y } = key.publicJwk as Record<string, string>;
          const pem = createPublicKey({ key: { kty, crv, x, ...(y ? { y } : {}) }, format: 'jwk' }).export({ format: 'pem', type: 'spki' });
          await fsp.writeFile(o.publicKey, pem, { mode: 0o644 });
        }
        const text = `${JSON.stringify(r)}\n`;
        if (!o.output) return void process.stdout.write(text);
        await fsp.writeFile(o.output, text, { mode: 0o644 });
        print(c.format, { id, format: o.as, output: o.output }, () => `wrote ${o.as} of attestation ${id} to ${o.output}`);
      }),
    );
}

function attestStatusCommand(attest: Command): void {
  attest
    .command('status')
    .description('signer health: active signing key, test signature, RootPack membership, recent signing failures')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(SignerStatus, 'GET', '/attestations/status');
        print(c.format, r, () => renderSignerStatus(r));
        return r.healthy ? EXIT.OK : EXIT.UNAVAILABLE;
      }),
    );
}

function renderSignerStatus(r: SignerStatusView): string {
  return [
    `Attestor: ${r.healthy ? 'HEALTHY' : 'UNHEALTHY'}`,
    renderKv({
      'active key': r.activeKey ? `${r.activeKey.kid} (${r.activeKey.alg}, since ${r.activeKey.notBefore})` : 'NONE (stella keys generate)',
      'test signature': r.canSign ? 'ok' : `FAILED${r.canSignError ? `: ${r.canSignError}` : ''}`,
      'in RootPack': r.inRootPack ? 'yes' : 'no',
      keys: `${r.keys.active} active, ${r.keys.retired} retired`,
      'failures (24h)': r.failuresLast24h,
    }),
    ...(r.recentFailures.length
      ? [
          'Recent signing failures:',
          renderTable(r.recentFailures, [
            { header: 'AT', get: (f) => f.at },
            { header: 'KEY', get: (f) => f.kid },
            { header: 'SUBJECT', get: (f) => shortDigest(f.subject) },
            { header: 'ERROR', get: (f) => f.error },
          ]),
        ]
      : ['No recent signing failures.']),
  ].join('\n');
}

// ---- scanner --------------------------------------------------------------------------------

function scannerJobsCommand(scanner: Command): void {
  scanner
    .command('jobs')
    .description('scan runs')
    .command('list')
    .description('scan runs of an artifact (scan_runs, with live Temporal status)')
    .option('--artifact <digest>', 'artifact digest')
    .option('--limit <n>', 'rows', '50')
    .action(
      action(async (o: { artifact?: string; limit: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.artifact) requireDigest(o.artifact, 'artifact digest');
        const r = await c.api().call(ScanRunList, 'GET', `/scans${qs({ artifact: o.artifact, limit: o.limit })}`);
        print(c.format, r, () =>
          r.items.length ? renderTable(r.items, scanRunColumns) : `no scans${o.artifact ? ` of ${o.artifact}` : ''} (stella scan image --image <ref>)`,
        );
      }),
    );
}

const scanRunColumns: Column<ScanRun>[] = [
  { header: 'SCAN', get: (i) => i.scanId },
  { header: 'ARTIFACT', get: (i) => shortDigest(i.artifactDigest) },
  { header: 'IMAGE', get: (i) => i.imageRef },
  {
    header: 'STATUS',
    get: (i) => i.status + (i.temporalStatus && i.temporalStatus !== 'COMPLETED' && i.status !== 'failed' ? ` (${i.temporalStatus})` : ''),
  },
  { header: 'TRIGGER', get: (i) => i.trigger },
  { header: 'SBOM', get: (i) => shortDigest(i.sbomId) },
  { header: 'FINDINGS', get: (i) => (i.sbomOnly ? 'sbom-only' : countsLine(i.counts)) },
  { header: 'FEED', get: (i) => (i.feedDigest ? `v${i.feedVersion}` : i.sbomOnly ? '-' : 'none') },
  { header: 'ATTEST', get: (i) => i.attestationIds.length, align: 'right' },
  { header: 'STARTED', get: (i) => i.startedAt },
  { header: 'ERROR', get: (i) => i.error },
];

function scannerQueueCommand(scanner: Command): void {
  scanner
    .command('queue')
    .description('pending work')
    .command('list')
    .description('running scan workflows and auto-scan events that did not start a scan (with the reason)')
    .option('--artifact <digest>', 'artifact digest')
    .action(
      action(async (o: { artifact?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.artifact) requireDigest(o.artifact, 'artifact digest');
        const r = await c.api().call(ScanQueue, 'GET', `/scans/queue${qs({ artifact: o.artifact })}`);
        print(c.format, r, () => renderScanQueue(r));
      }),
    );
}

function renderScanQueue(r: ScanQueueView): string {
  return [
    `auto-scan: ${r.autoScan.enabled ? 'enabled' : 'DISABLED'}; triggers: ${r.autoScan.triggers.join(',') || 'none'}`,
    r.workflows.length
      ? renderTable(r.workflows, [
          { header: 'WORKFLOW', get: (w) => w.workflowId },
          { header: 'RUN', get: (w) => w.runId },
          { header: 'PHASE', get: (w) => w.progress?.phase ?? w.status },
          { header: 'STARTED', get: (w) => w.startTime },
        ])
      : 'no scan running',
    r.events.length
      ? renderTable(r.events, [
          { header: 'EVENT', get: (e) => e.id, align: 'right' as const },
          { header: 'TRIGGER', get: (e) => e.trigger },
          { header: 'IMAGE', get: (e) => e.image ?? [e.repository, e.tag].filter(Boolean).join(':') },
          { header: 'STATUS', get: (e) => e.status },
          { header: 'REASON', get: (e) => e.reason },
          { header: 'RECEIVED', get: (e) => e.receivedAt },
        ])
      : 'no queued or ignored auto-scan events',
  ].join('\n');
}

function scannerConfigCommands(scanner: Command): void {
  const config = scanner.command('config').description('scanner settings (auto_scan.enabled, auto_scan.triggers, engine)');
  for (const register of [scannerConfigSetCommand, scannerConfigShowCommand]) register(config);
}

function scannerConfigSetCommand(config: Command): void {
  config
    .command('set <key> <value>')
    .description('auto_scan.enabled true|false; auto_scan.triggers "push,promote"; engine builtin|syft|trivy (syft/trivy must be on the worker\'s PATH)')
    .action(
      action(async (key: string, value: string, _o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(ScannerConfigSet, 'PUT', '/scanner/config', { key, value });
        print(
          c.format,
          r,
          () =>
            `${key} = ${value}\nauto-scan: ${r.auto_scan.enabled ? 'enabled' : 'disabled'}; triggers: ${r.auto_scan.triggers.join(',') || 'none'}; engine: ${r.engine}`,
        );
      }),
    );
}

function scannerConfigShowCommand(config: Command): void {
  config
    .command('show')
    .description('current scanner settings')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(ScannerConfig, 'GET', '/scanner/config');
        print(c.format, r, () =>
          renderKv({
            'auto_scan.enabled': r.auto_scan.enabled,
            'auto_scan.triggers': r.auto_scan.triggers.join(',') || '(none)',
            engine: r.engine,
            scanner: `${r.scanner.name} ${r.scanner.version}`,
            feed: r.feed ? `v${r.feed.version} ${r.feed.digest} (${r.feed.records} records)` : 'none imported',
          }),
        );
      }),
    );
}
