/**
 * What a promotion shows in the Temporal UI: static summary/details at start, current details
 * (Markdown) and the memo on every state change. Pure, so the workflow and the client share it.
 */
import type { GateResult, PromotionInput, PromotionStatus } from '../core/promotion/types';

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

/** One line for the workflow list: `promote <digest12> staging → prod (tenant acme)`. */
export function promotionStaticSummary(input: PromotionInput): string {
  return `promote ${short(input.artifactDigest)} ${input.fromEnv} → ${input.toEnv} (tenant ${input.tenant})`;
}

/** Fixed Markdown of the workflow page: what is being promoted, by whom, and the commands to follow it. */
export function promotionStaticDetails(input: PromotionInput, workflowId: string): string {
  return [
    `**Promotion** of \`${input.artifactDigest}\` from **${input.fromEnv}** to **${input.toEnv}**`,
    '',
    `- tenant: \`${input.tenant}\``,
    `- requested by: \`${input.requestedBy}\``,
    ...(input.imageRef ? [`- image: \`${input.imageRef}\``] : []),
    '',
    `Follow it: \`stella promotion status ${workflowId}\` · what is missing: \`stella promotion evidence ${workflowId} --missing\``,
  ].join('\n');
}

/** Required gates that block, with the kind of evidence each misses. */
export function blockingGates(gates: readonly GateResult[]): GateResult[] {
  return gates.filter((g) => g.required && !g.passed);
}

/** Sorted, distinct evidence kinds the blocking gates miss (StellaMissingEvidence). */
export function missingKinds(gates: readonly GateResult[]): string[] {
  return [...new Set(blockingGates(gates).map((g) => g.missing?.kind ?? g.name))].sort();
}

/** What an operator does next, in one line, for the state the promotion is in. */
export function promotionNextStep(st: PromotionStatus): string {
  const id = st.workflowId;
  switch (st.state) {
    case 'waiting-evidence': {
      const cmds = blockingGates(st.gates)
        .map((g) => g.missing?.command)
        .filter((c): c is string => !!c);
      return `${cmds.length ? `run ${[...new Set(cmds)].map((c) => `\`${c}\``).join(', ')}, then` : 'add the missing evidence, then'} \`stella promotion retry ${id}\``;
    }
    case 'waiting-approval':
      return `${st.approvalsRequired - st.approvals.length} more approval(s): \`stella promotion approve ${id}\` (not ${st.requestedBy})`;
    case 'evaluating':
      return 'evaluating the gates; nothing to do';
    case 'promoted':
      return 'none: promoted';
    default:
      return `none: ${st.state}${st.reason ? ` (${st.reason})` : ''}`;
  }
}

/** The memo the Temporal UI shows (and visibility returns): small, stable keys. */
export function promotionMemo(st: PromotionStatus): { state: string; missing: string[]; deadline: string | null; nextStep: string } {
  return { state: st.state, missing: st.state === 'waiting-evidence' ? missingKinds(st.gates) : [], deadline: st.deadline, nextStep: promotionNextStep(st) };
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ').slice(0, 200);

/** Current details (Markdown): the state and why, each gate, the missing evidence with its command, the deadline, the next step. */
export function promotionCurrentDetails(st: PromotionStatus): string {
  const lines = [`**State:** ${st.state}${st.reason ? ` — ${st.reason}` : ''}`, `**Deadline:** ${st.deadline ?? 'set by the first evaluation'}`, ''];
  if (st.gates.length) {
    lines.push('| Gate | Required | Result | Detail |', '|---|---|---|---|');
    for (const g of st.gates)
      lines.push(`| ${cell(g.name)} | ${g.required ? 'yes' : 'no'} | ${g.passed ? 'passed' : g.violation ? 'VIOLATION' : 'missing'} | ${cell(g.detail)} |`);
    lines.push('');
  }
  const blocking = blockingGates(st.gates).filter((g) => g.missing);
  if (blocking.length && st.state === 'waiting-evidence') {
    lines.push('**Missing evidence** and the command that produces it:', '');
    for (const g of blocking)
      lines.push(`- \`${g.missing!.kind}\`${g.missing!.predicateType ? ` (${g.missing!.predicateType})` : ''}: \`${g.missing!.command}\``);
    lines.push('');
  }
  if (st.approvalsRequired)
    lines.push(
      `**Approvals:** ${st.approvals.length}/${st.approvalsRequired}${st.approvals.length ? ` (${st.approvals.map((a) => a.by).join(', ')})` : ''}`,
      '',
    );
  lines.push(`**Next step:** ${promotionNextStep(st)}`);
  return lines.join('\n');
}

/** The Temporal Web UI page of a workflow run. */
export function temporalUiWorkflowUrl(baseUrl: string, namespace: string, workflowId: string, runId?: string): string {
  const e = encodeURIComponent;
  return `${baseUrl.replace(/\/+$/, '')}/namespaces/${e(namespace)}/workflows/${e(workflowId)}${runId ? `/${e(runId)}` : ''}`;
}
