import type { Command } from 'commander';
import { action, ctxOf } from '../common';
import { CliError, EXIT } from '../exit';
import { print } from '../output';

/** `stella migrate`: apply the database migrations and exit (the Helm chart's pre-install/pre-upgrade Job). */
export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply the database migrations (DATABASE_URL) and exit; serve also applies them at start')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const url = c.config().databaseUrl;
        if (!url) throw new CliError('DATABASE_URL is not set: migrate needs the PostgreSQL URL of stella’s index', EXIT.USAGE);
        const { migrateDatabase } = await import('../../core/migrate');
        const r = await migrateDatabase(url).catch((e) => {
          // A migration that fails or was changed after it was applied is not an outage: exit 1.
          const msg = (e as Error).message;
          throw new CliError(`migrate failed: ${msg}`, /^migration /.test(msg) ? EXIT.FAILURE : EXIT.UNAVAILABLE);
        });
        print(c.format, r, () => (r.applied.length ? `applied ${r.applied.join(', ')}; schema at ${r.version}` : `schema current at ${r.version}`));
      }),
    );
}
