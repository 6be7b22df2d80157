import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import type { z } from 'zod';
import { action, ctxOf, group, requireDigest, type Ctx } from '../common';
import { CliError, EXIT } from '../exit';
import { print, renderKv, renderTable, shortDigest } from '../output';
import { qs } from '../client';
import { defaultDataDir } from '../../config';
import {
  ActionResponse,
  ListPromotionsResponse,
  PROMOTION_STATES,
  PromotionEvidenceResponse,
  PromotionView,
  RetryResponse,
  SetPolicyResponse,
  ShowPolicyResponse,
  SignalledResponse,
  StartPromotionResponse,
  type GateResult,
  type PolicyView,
} from '../../contracts/promotion';

const STATES: readonly string[] = PROMOTION_STATES;
const FINAL = ['promoted', 'failed', 'aborted'];
const ENV_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

type Gate = GateResult;
/** What the status renderer needs: a promotion's view, or a start answer that carries one. */
type Status = Omit<PromotionView, 'gates' | 'attempts' | 'deadline' | 'approvals' | 'state'> &
  Partial<Pick<PromotionView, 'gates' | 'attempts' | 'deadline' | 'approvals' | 'state'>>;

// --- which promotion: explicit id, else the one this CLI last worked with, else the newest waiting one

const statePath = () => join(defaultDataDir(), 'cli-state.json');

function readState(): { lastPromotion?: { id: string; at: string } } {
  try {
    return existsSync(statePath()) ? JSON.parse(readFileSync(statePath(), 'utf8')) : {};
  } catch {
    return {};
  }
}

/** Remembers the promotion this CLI last started or acted on (other keys of the file are kept). */
function remember(id: string): void {
  try {
    const p = statePath();
    mkdirSync(dirname(p), { recursive: true });
    const tmp = `${p}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ ...readState(), lastPromotion: { id, at: new Date().toISOString() } }, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, p);
  } catch {
    /* best effort: an unwritable data dir must not fail the command */
  }
}

/**
 * No id given: the promotion this CLI last started or acted on while it is unfinished (or
 * finished within `keepFinishedMs`: "retry, then status" shows the one just retried), else
 * the newest waiting one from the list endpoint. Says on stderr which one it picked.
 */
async function resolveId(c: Ctx, id: string | undefined, keepFinishedMs = 0): Promise<string> {
  if (id) {
    remember(id);
    return id;
  }
  const api = c.api();
  const say = (picked: string, why: string) => {
    if (!c.quiet) process.stderr.write(`(no id given: ${picked}, ${why})\n`);
    return picked;
  };
  const last = readState().lastPromotion?.id;
  if (last) {
    const s = await api.call(PromotionView, 'GET', `/promotions/${encodeURIComponent(last)}`).catch(() => null);
    if (s && !FINAL.includes(s.state)) return say(last, 'the promotion this CLI last worked with');
    if (s && keepFinishedMs && s.finishedAt && Date.now() - Date.parse(s.finishedAt) < keepFinishedMs)
      return say(last, `the promotion this CLI last worked with, ${s.state}`);
  }
  for (const state of ['waiting-evidence', 'waiting-approval', 'evaluating']) {
    const r = await api.call(ListPromotionsResponse, 'GET', `/promotions${qs({ state, limit: 1 })}`);
    const first = r.source === 'temporal-visibility' ? r.items[0]?.id : r.items[0]?.workflowId;
    if (first) {
      remember(first);
      return say(first, `the newest promotion ${state}`);
    }
  }
  if (last) return say(last, 'the promotion this CLI last worked with'); // nothing unfinished
  throw new CliError(
    'no promotion in progress; pass an id (stella promotion list) or start one (stella promotion start --artifact <digest> --to <env>)',
    EXIT.NOT_FOUND,
  );
}

/** How long a just-finished promotion stays the default for status/evidence. */
const KEEP_FINISHED_MS = 30 * 60_000;

// --- rendering

function renderGates(gates: Gate[]): string {
  if (!gates.length) return 'gates: not evaluated yet';
  return renderTable(gates, [
    { header: 'GATE', get: (g) => g.name },
    { header: 'REQUIRED', get: (g) => (g.required ? 'yes' : 'no') },
    { header: 'RESULT', get: (g) => (g.passed ? 'PASS' : 'FAIL') },
    { header: 'DETAIL', get: (g) => g.detail },
  ]);
}

const kid = (k: string | null | undefined) => (k ? k.slice(0, 12) : '-');
const provenanceText = (e: { provenance: string; signer: string | null; stellaKey?: boolean }) =>
  e.provenance === 'uploaded' ? 'uploaded (unsigned)' : `${e.provenance}, signer ${kid(e.signer)}${e.stellaKey ? " (stella's key)" : ''}`;

/** `status --explain`: per gate, why it passed or failed, naming the evidence, its provenance/signer and the policy rule. */
function renderExplain(gates: Gate[]): string {
  if (!gates.length) return 'gates: not evaluated yet';
  return gates
    .map((g) => {
      const lines = [`${g.name}: ${g.passed ? 'PASS' : g.violation ? 'FAIL (violation)' : 'FAIL'}${g.required ? '' : ' (not required)'}`];
      lines.push(`  rule:     ${g.rule ?? '-'}`);
      lines.push(`  evidence: ${g.evidence ? `${g.evidence.kind} ${g.evidence.id} — ${provenanceText(g.evidence)}` : 'none'}`);
      lines.push(`  why:      ${g.detail}`);
      for (const c of g.considered ?? [])
        lines.push(
          `    ${c.accepted ? 'accepted' : 'rejected'} ${c.kind} ${c.id} (${provenanceText(c)}): ${c.accepted ? `trusted as ${c.rule}` : (c.problem ?? '')}`,
        );
      if (!g.passed && g.missing) lines.push(`  produce:  ${g.missing.command}`);
      return lines.join('\n');
    })
    .join('\n\n');
}

function renderStatus(s: Status, explain = false): string {
  const gates = s.gates ?? [];
  const approvals = s.approvals ?? [];
  const missing = gates.filter((g) => g.required && !g.passed && g.missing);
  const lines = [
    renderKv({
      promotion: s.id ?? s.workflowId,
      'promotion id': s.promotionId,
      artifact: s.artifactDigest,
      'from → to': `${s.fromEnv} → ${s.toEnv}`,
      state: s.state,
      attempts: s.attempts,
      deadline: s.deadline,
      approvals: s.approvalsRequired
        ? `${approvals.length}/${s.approvalsRequired}${approvals.length ? ` (${approvals.map((a) => a.by).join(', ')})` : ''}`
        : approvals.length || '-',
      policy: s.policy
        ? `${s.policy.env} ${s.policy.version ? `version ${s.policy.version}` : '(built-in)'}${s.policy.checksum ? ` ${s.policy.checksum.slice(0, 19)}…` : ''}`
        : undefined,
      reason: s.reason,
      'temporal ui': s.temporalUiUrl,
    }),
    '',
    explain ? renderExplain(gates) : renderGates(gates),
  ];
  if (missing.length && !FINAL.includes(s.state ?? '')) {
    lines.push('', 'Missing evidence; produce it with:', ...missing.map((g) => `  ${g.missing?.command}`), 'then: stella promotion retry');
  }
  return lines.join('\n');
}

const exitFor = (s: Status) => (s.state === 'promoted' ? EXIT.OK : s.state === 'failed' || s.state === 'aborted' ? EXIT.FAILURE : EXIT.PENDING);

export function registerPromotionCommands(program: Command): void {
  const pr = group(program, 'promotion', 'promote artifacts between environments, gated on evidence');
  for (const register of [startCommand, statusCommand, evidenceCommand, retryCommand, listCommand, approveCommand, abortCommand]) register(pr);
  const pol = pr.command('policy').description('promotion policy per target environment');
  for (const register of [policySetCommand, policyShowCommand]) register(pol);
}

type StartOptions = { artifact?: string; to: string; from?: string; image?: string; wait?: boolean; timeout: string };

/** Checks the start flags (exit 2 on a malformed one); answers the --wait timeout in seconds. */
function checkStart(o: StartOptions): number {
  if (o.artifact === undefined && o.image === undefined)
    throw new CliError('give --artifact <digest> or --image <registry ref> (host/repo:tag or host/repo@sha256:…)', EXIT.USAGE);
  if (o.artifact !== undefined) requireDigest(o.artifact, 'artifact digest');
  for (const [flag, v] of [
    ['--to', o.to],
    ['--from', o.from],
  ] as const)
    if (v !== undefined && !ENV_RE.test(v)) throw new CliError(`malformed ${flag} ${JSON.stringify(v)}: lowercase letters, digits, . _ -`, EXIT.USAGE);
  const timeout = Number(o.timeout);
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 300) throw new CliError('--timeout must be 1..300 seconds', EXIT.USAGE);
  return timeout;
}

function startCommand(pr: Command): void {
  pr.command('start')
    .description('start a promotion (joins the running one for the same artifact and target)')
    .option('--artifact <digest>', 'artifact digest sha256:… (optional with --image <registry ref>: the API resolves it)')
    .requiredOption('--to <env>', 'target environment')
    .option('--from <env>', 'source environment')
    .option(
      '--image <ref>',
      'registry reference host/repo:tag or host/repo@sha256:… (resolved to its digest; with --artifact both must agree), or a catalogue name',
    )
    .option('--wait', 'wait for the final result (exit 0 promoted, 1 failed/aborted, 8 still pending)')
    .option('--timeout <seconds>', 'how long --wait waits (max 300)', '300')
    .action(
      action(async (o: StartOptions, cmd: Command) => {
        const c = ctxOf(cmd);
        const timeout = checkStart(o);
        const body = {
          ...(o.artifact ? { artifact: o.artifact } : {}),
          to: o.to,
          ...(o.from ? { from: o.from } : {}),
          ...(o.image ? { imageRef: o.image } : {}),
        };
        const r = await c
          .api()
          .call(StartPromotionResponse, 'POST', `/promotions${o.wait ? qs({ wait: timeout }) : ''}`, body, { timeoutMs: (timeout + 30) * 1000 });
        remember(r.id);
        if (!o.wait) {
          print(c.format, r, () => `${r.message}\nid: ${r.id}\nnext: stella promotion status ${r.id}`);
          return;
        }
        print(c.format, r, () => `${r.message}\n\n${renderStatus(r)}${r.final ? '' : `\n\n(still ${r.state} after ${timeout}s)`}`);
        return exitFor(r);
      }),
    );
}

function statusCommand(pr: Command): void {
  pr.command('status [id]')
    .description('state of a promotion: each gate, what is missing (default: the one in progress)')
    .option('--explain', 'for each gate: why it passed or failed, the evidence (id, provenance, signer) and the policy rule')
    .action(
      action(async (id: string | undefined, o: { explain?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const pid = await resolveId(c, id, KEEP_FINISHED_MS);
        const s = await c.api().call(PromotionView, 'GET', `/promotions/${encodeURIComponent(pid)}`);
        print(c.format, s, () => renderStatus(s, o.explain));
      }),
    );
}

function renderEvidence(r: z.infer<typeof PromotionEvidenceResponse>, missingOnly: boolean): string {
  const head = `${r.id} (${r.state}) → ${r.to}, artifact ${r.artifact}`;
  if (!missingOnly) return `${head}\n\n${renderGates(r.gates ?? [])}`;
  if (!r.missing.length) return `${head}\n\nno missing evidence`;
  return `${head}\n\n${renderTable(r.missing, [
    { header: 'GATE', get: (m) => m.gate },
    { header: 'KIND', get: (m) => (m.predicateType ? `${m.kind} (${m.predicateType})` : m.kind) },
    { header: 'REASON', get: (m) => m.detail },
  ])}\n\nto produce it:\n${r.missing.map((m) => `  ${m.command ?? '-'}`).join('\n')}\nthen: stella promotion retry`;
}

function evidenceCommand(pr: Command): void {
  pr.command('evidence [id]')
    .description('evidence a promotion requires; --missing: only what is missing, with the command that produces it')
    .option('--missing', 'only missing evidence')
    .action(
      action(async (id: string | undefined, o: { missing?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const pid = await resolveId(c, id, KEEP_FINISHED_MS);
        const r = await c.api().call(PromotionEvidenceResponse, 'GET', `/promotions/${encodeURIComponent(pid)}/evidence${qs({ missing: o.missing })}`);
        print(c.format, r, () => renderEvidence(r, !!o.missing));
        return r.missing.length && o.missing ? EXIT.PENDING : EXIT.OK;
      }),
    );
}

function retryCommand(pr: Command): void {
  pr.command('retry [id]')
    .description('re-evaluate the gates now (default: the promotion in progress); prints the new results')
    .option('--no-wait', 'signal the retry and return without the new results')
    .action(
      action(async (id: string | undefined, o: { wait: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const pid = await resolveId(c, id);
        if (!o.wait) {
          const r = await c.api().call(SignalledResponse, 'POST', `/promotions/${encodeURIComponent(pid)}/retry?mode=signal`, {});
          print(c.format, r, () => r.message);
          return;
        }
        const s = await c.api().call(RetryResponse, 'POST', `/promotions/${encodeURIComponent(pid)}/retry`, {}, { timeoutMs: 600_000 });
        print(c.format, s, () => renderStatus(s));
        return s.state === 'waiting-evidence' ? EXIT.PENDING : exitFor(s) === EXIT.PENDING ? EXIT.OK : exitFor(s);
      }),
    );
}

function listCommand(pr: Command): void {
  pr.command('list')
    .description('promotions (Temporal visibility: what the Temporal UI lists)')
    .option('--state <state>', `only this state: ${STATES.join(', ')}`)
    .option('--artifact <digest>', 'only this artifact')
    .option('--env <env>', 'only this target environment')
    .option('--limit <n>', 'at most n', '50')
    .action(
      action(async (o: { state?: string; artifact?: string; env?: string; limit: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.state && !STATES.includes(o.state)) throw new CliError(`unknown --state ${o.state}; expected one of ${STATES.join(', ')}`, EXIT.USAGE);
        if (o.artifact) requireDigest(o.artifact, 'artifact digest');
        const r = await c.api().call(ListPromotionsResponse, 'GET', `/promotions${qs({ state: o.state, artifact: o.artifact, env: o.env, limit: o.limit })}`);
        if (r.source !== 'temporal-visibility') throw new CliError('unexpected answer from GET /promotions: not a visibility listing', EXIT.FAILURE);
        print(c.format, r, () =>
          r.items.length
            ? renderTable(r.items, [
                { header: 'ID', get: (i) => i.id },
                { header: 'STATE', get: (i) => i.state },
                { header: 'TO', get: (i) => i.env },
                { header: 'ARTIFACT', get: (i) => shortDigest(i.artifact) },
                { header: 'TEMPORAL', get: (i) => i.status },
                { header: 'STARTED', get: (i) => i.startTime },
              ])
            : `no promotions${o.state ? ` in state ${o.state}` : ''}`,
        );
      }),
    );
}

const approveCommand = (pr: Command) => actionCommand(pr, 'approve');
const abortCommand = (pr: Command) => actionCommand(pr, 'abort');

/** `approve <id>` / `abort <id>`: one update on the promotion workflow; prints the resulting state. */
function actionCommand(pr: Command, op: 'approve' | 'abort'): void {
  pr.command(`${op} <id>`)
    .description(
      op === 'approve'
        ? 'approve a promotion waiting for manual approval (not your own); prints the resulting state'
        : 'abort a promotion (audited); prints the resulting state',
    )
    .option(op === 'approve' ? '--comment <text>' : '--reason <text>', op === 'approve' ? 'approval comment' : 'why')
    .action(
      action(async (id: string, o: { comment?: string; reason?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        remember(id);
        const r = await c
          .api()
          .call(
            ActionResponse,
            'POST',
            `/promotions/${encodeURIComponent(id)}/${op}`,
            { ...(o.comment ? { comment: o.comment } : {}), ...(o.reason ? { reason: o.reason } : {}) },
            { timeoutMs: 600_000 },
          );
        print(c.format, r, () => `${r.message}\n\n${renderStatus(r)}`);
        // approve: 0 once promoted, 8 while more approvals are needed; abort: 0 when aborted
        return op === 'abort' ? (r.state === 'aborted' ? EXIT.OK : exitFor(r)) : exitFor(r);
      }),
    );
}

function renderPolicySet(r: z.infer<typeof SetPolicyResponse>): string {
  if (!r.changed) return `unchanged: policy for ${r.env} is already version ${r.version} with this content`;
  return [
    `stored policy for ${r.env}: version ${r.version} (${r.checksum})${r.previousVersion ? `, changes from version ${r.previousVersion}:` : ', changes from the built-in default:'}`,
    ...(r.diff ?? []).map(
      (d) => `  ${d.path}: ${d.from === undefined ? '(none)' : JSON.stringify(d.from)} → ${d.to === undefined ? '(removed)' : JSON.stringify(d.to)}`,
    ),
  ].join('\n');
}

function policySetCommand(pol: Command): void {
  pol
    .command('set')
    .description('store a new policy version for an environment (YAML or JSON; validated; needs policy:admin); prints what changed')
    .requiredOption('--env <env>', "target environment ('*' = every environment without its own)")
    .requiredOption('--file <path>', 'policy document')
    .action(
      action(async (o: { env: string; file: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        if (o.env !== '*' && !ENV_RE.test(o.env)) throw new CliError(`malformed --env ${JSON.stringify(o.env)}`, EXIT.USAGE);
        const document = await fsp.readFile(o.file, 'utf8').catch(() => {
          throw new CliError(`${o.file}: cannot read`, EXIT.USAGE);
        });
        const r = await c.api().call(SetPolicyResponse, 'PUT', `/promotion-policies/${encodeURIComponent(o.env)}`, { document });
        print(c.format, r, () => renderPolicySet(r));
      }),
    );
}

function policyShowCommand(pol: Command): void {
  pol
    .command('show')
    .description('the promotion policy that applies')
    .option('--env <env>', 'target environment')
    .action(
      action(async (o: { env?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const section = await promotionPolicySection(c, o);
        print(c.format, { promotion: section.value }, () => section.human.join('\n\n'));
      }),
    );
}

function renderPolicy(title: string, p: PolicyView): string {
  const reqs = p.policy.requirements.map((r) => {
    const extra =
      r.kind === 'scan-report'
        ? ` thresholds ${JSON.stringify(r.thresholds)}`
        : r.kind === 'attestation'
          ? ` ${r.predicateType}${r.trustedSigner ? ', signed by a RootPack-trusted key' : ''}`
          : ` ${r.format}`;
    return `  - ${r.name} (${r.kind}${r.required ? '' : ', optional'}):${extra}${r.maxAge ? `, max age ${r.maxAge}` : ''}`;
  });
  return [
    `${title}: ${p.source}${p.version ? ` version ${p.version}` : ''} (${p.checksum.slice(0, 19)}…)`,
    `required evidence:`,
    ...reqs,
    renderKv({
      '  max evidence age': p.policy.maxEvidenceAge,
      '  auto-generate': p.policy.autoGenerate,
      '  wait deadline': p.policy.waitDeadline,
      '  manual approval': p.policy.requireApproval ? `yes (${p.policy.approvals})` : 'no',
    }),
  ].join('\n');
}

/** The promotion section of `stella evidence policy show` (src/cli/commands/evidence-policy.ts). */
export async function promotionPolicySection(c: Ctx, o: { env?: string }): Promise<{ value: unknown; human: string[] }> {
  if (o.env && !ENV_RE.test(o.env)) throw new CliError(`malformed --env ${JSON.stringify(o.env)}`, EXIT.USAGE);
  const r = await c.api().call(ShowPolicyResponse, 'GET', `/promotion-policies${qs({ env: o.env })}`);
  const human: string[] = [];
  if ('policies' in r.promotion) {
    human.push(...r.promotion.policies.map((p) => renderPolicy(`promotion policy for ${p.policyEnv}`, p)));
    // '*' (tenant-wide) is listed above when set; otherwise the built-in default applies elsewhere.
    if (!r.promotion.policies.some((p) => p.policyEnv === '*')) human.push(renderPolicy('promotion policy for any other environment', r.promotion.builtIn));
  } else human.push(renderPolicy(`promotion policy for ${o.env}`, r.promotion));
  return { value: r.promotion, human };
}
