import type { Command } from 'commander';
import { action, ctxOf, group } from '../common';
import { print } from '../output';
import { promotionPolicySection } from './promotion';
import { retentionPolicySection } from './retention';

/** `stella evidence policy show`: every policy that applies to the tenant, one section per feature. */
export function registerEvidencePolicyCommands(program: Command): void {
  group(group(program, 'evidence', 'the Evidence Locker'), 'policy', 'evidence policies')
    .command('show')
    .description('policies that apply (promotion evidence requirements, retention)')
    .option('--env <env>', 'target environment')
    .action(
      action(async (o: { env?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const promotion = await promotionPolicySection(c, o);
        const retention = await retentionPolicySection(c);
        const out = { promotion: promotion.value, retention: retention.value };
        print(c.format, out, () => [...promotion.human, ...retention.human].join('\n\n'));
      }),
    );
}
