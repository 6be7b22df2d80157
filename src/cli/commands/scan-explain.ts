/** `stella scan explain <finding>`: why a finding is in an artifact's newest scan report, and what VEX says about it. */
import type { Command } from 'commander';
import type { z } from 'zod';
import { ScanExplanation } from '../../contracts/scan-feeds';
import { action, ctxOf, requireDigest } from '../common';
import { qs } from '../client';
import { print } from '../output';

type Item = z.infer<typeof ScanExplanation>['items'][number];

const events = (ev: Record<string, unknown>[]) =>
  ev
    .map((e) =>
      Object.entries(e)
        .filter(([, v]) => typeof v === 'string')
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    )
    .join('; ');

function human(i: Item): string {
  const out = [
    `finding:    ${i.findingId}`,
    `package:    ${i.package.name} ${i.installedVersion} (${i.package.ecosystem}, ${i.package.purl})`,
    `advisory:   ${i.advisory.id}${i.advisory.aliases.length ? ` (${i.advisory.aliases.join(', ')})` : ''}: ${i.advisory.summary}`,
    `            ${i.advisory.ecosystem} / ${i.advisory.name}; severity ${i.severity}${i.score !== null ? ` (${i.score})` : ''}`,
    `fixed in:   ${i.fixedVersion ?? 'no fixed version known'}`,
  ];
  if (!i.match) out.push(`range:      (feed snapshot ${i.feed?.digest ?? 'none'} not available)`);
  else {
    for (const r of i.match.ranges)
      out.push(
        `range:      ${r.type} ${events(r.events)}${r.contains === undefined ? ' (not comparable)' : r.contains ? `  <- contains ${i.match.version} (${i.match.scheme})` : ''}`,
      );
    if (i.match.versions.listed) out.push(`versions:   ${i.match.versions.listed} listed${i.match.versions.contains ? `, including ${i.match.version}` : ''}`);
  }
  out.push(`report:     ${i.reportId} (scanned ${i.scannedAt}; feed ${i.feed?.digest ?? 'none'})`);
  const v = i.vex;
  out.push(`VEX:        ${v.suppressed ? 'SUPPRESSED' : v.statements.length ? 'annotated' : 'no trusted statement'} (policy ${v.policy.env})`);
  for (const s of v.statements)
    out.push(`  - ${s.status}${s.justification ? ` (${s.justification})` : ''}: ${s.effect} — VEX ${s.evidenceId ?? '?'}, signer ${s.signer ?? '-'}`);
  for (const d of v.documents.filter((x) => !x.accepted)) out.push(`  ignored: ${d.problem ?? d.id}`);
  return out.join('\n');
}

export function scanExplainCommand(scan: Command): void {
  scan
    .command('explain <finding> [package]')
    .description(
      "explain a finding of an artifact's newest scan report: package, installed version, matched range, advisory, fixed version, VEX (finding: an advisory id or alias, or <advisory>@<purl>)",
    )
    .requiredOption('--artifact <digest>', 'the scanned artifact (sha256:…)')
    .option('--env <env>', "judge VEX with this environment's promotion policy (default: the built-in policy)")
    .action(
      action(async (finding: string, pkg: string | undefined, o: { artifact: string; env?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const artifact = requireDigest(o.artifact, '--artifact');
        const r = await c.api().call(ScanExplanation, 'GET', `/scans/explain${qs({ artifact, finding, package: pkg, env: o.env })}`);
        print(c.format, r, () => r.items.map(human).join('\n\n'));
      }),
    );
}
