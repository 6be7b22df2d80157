import { type Command, Option } from 'commander';
import { loadConfig, ConfigError, type StellaConfig } from '../config';
import { ApiClient, resolveConnection } from './client';
import { CliError, EXIT } from './exit';
import type { Format } from './output';

export interface Ctx {
  format: Format;
  api: () => ApiClient;
  config: () => StellaConfig;
  quiet: boolean;
}

/** Global options live on the root command; every subcommand reads them through this. */
export function ctxOf(cmd: Command): Ctx {
  const o = cmd.optsWithGlobals() as { format?: Format; apiUrl?: string; token?: string; tenant?: string; quiet?: boolean };
  return {
    format: o.format ?? 'table',
    quiet: !!o.quiet,
    api: () => new ApiClient(resolveConnection({ apiUrl: o.apiUrl, token: o.token, tenant: o.tenant })),
    config: () => {
      try {
        return loadConfig();
      } catch (e) {
        if (e instanceof ConfigError) throw new CliError(e.message, EXIT.USAGE);
        throw e;
      }
    },
  };
}

/** `--format json` on every read command. */
export const formatOption = () => new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');

export function requireDigest(value: string, what: string): string {
  if (!/^sha256:[0-9a-f]{64}$/.test(value)) throw new CliError(`malformed ${what} ${JSON.stringify(value)}: expected sha256:<64 lowercase hex>`, EXIT.USAGE);
  return value;
}

/** Wraps an action so errors become one line on stderr and a meaningful exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<unknown>) {
  return async (...args: A) => {
    const code = await fn(...args);
    if (typeof code === 'number' && code !== 0) process.exitCode = code;
  };
}

/** The named command group (e.g. `evidence`), created once and shared by feature modules. */
export function group(program: Command, name: string, description: string): Command {
  return program.commands.find((c) => c.name() === name) ?? program.command(name).description(description);
}
