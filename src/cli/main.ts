import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { config as zodConfig } from 'zod';
import { CliError, EXIT } from './exit';
import { ConfigError } from '../config';
import { registerFor } from './commands';

// No top-level await: the build is one CommonJS script (see scripts/build.mjs), which V8 can cache.
async function main(): Promise<void> {
  // A run parses an answer or two: compiling a fast path for each schema first (zod's JIT) costs more.
  zodConfig({ jitless: true });
  // The version is package.json's, so `stella --version` always matches what was installed.
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

  const program = new Command('stella')
    .description('Evidence locker and release orchestrator for container supply-chain evidence')
    .version(version)
    .option('--api-url <url>', 'stella API URL (env STELLA_API_URL; default from `stella dev up`)')
    .option('--token <jwt>', 'API bearer token (env STELLA_TOKEN; default from `stella dev up`)')
    .option('--tenant <id>', 'act for this tenant (admin tokens only, env STELLA_TENANT)')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('-q, --quiet', 'no progress output')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  // Only the modules of the command being run are loaded (fast start; see commands/index.ts).
  await registerFor(program, process.argv.slice(2));
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
}

void main();
