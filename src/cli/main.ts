import { Command, CommanderError } from 'commander';
import { CliError, EXIT } from './exit';
import { ConfigError } from '../config';
import { registerAll } from './commands';

const program = new Command('stella')
  .description('Evidence locker and release orchestrator for container supply-chain evidence')
  .version('0.1.0')
  .option('--api-url <url>', 'stella API URL (env STELLA_API_URL; default from `stella dev up`)')
  .option('--token <jwt>', 'API bearer token (env STELLA_TOKEN; default from `stella dev up`)')
  .option('--tenant <id>', 'act for this tenant (admin tokens only, env STELLA_TENANT)')
  .option('--format <format>', 'output format: table or json', 'table')
  .option('-q, --quiet', 'no progress output')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerAll(program);
program.commands.forEach(function walk(c: Command) {
  c.exitOverride();
  c.commands.forEach(walk);
});

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(0);
    process.exit(EXIT.USAGE);
  }
  const code = e instanceof CliError ? e.exitCode : e instanceof ConfigError ? EXIT.USAGE : EXIT.FAILURE;
  const msg = (e as Error).message?.split('\n')[0] ?? String(e);
  process.stderr.write(`stella: ${msg}\n`);
  if (process.env.STELLA_DEBUG) console.error(e);
  process.exit(code);
}
