import type { Command } from 'commander';
import { action, ctxOf } from '../common';
import { CliError, EXIT } from '../exit';
import { print, renderKv } from '../output';
import { devUp, devDown, readStack, serviceRestart, mintDevToken } from '../../dev/stack';
import { writeConfigValue, readConfigFile, CONFIG_KEY_ALIASES, ConfigError } from '../../config';
import { isAlive } from '../../dev/proc';
import { openKeyStore, TOKEN_PURPOSE } from '../../core/keys';
import { mintToken, SCOPES, isScope } from '../../crypto/tokens';

/** The stack commands: `dev up|down|status`, `serve`, `service restart`, `config`, `auth token`. */
export function registerDevCommands(program: Command): void {
  const dev = program.command('dev').description('run the whole stack on this machine (embedded defaults)');
  for (const add of [upCommand, downCommand, statusCommand]) add(dev);
  for (const add of [serveCommand, serviceCommand, configCommands, authCommands]) add(program);
}

function upCommand(dev: Command): void {
  dev
    .command('up')
    .description('start Temporal (dev server), PostgreSQL, the worker and the API; safe to run twice')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const cfg = c.config();
        const r = await devUp(cfg, (s) => c.quiet || process.stderr.write(`${s}\n`)).catch((e) => {
          throw new CliError(`dev up failed: ${(e as Error).message}`, EXIT.UNAVAILABLE);
        });
        const info = {
          status: r.reused ? 'already running' : 'started',
          apiUrl: r.state.apiUrl,
          temporalUiUrl: r.state.temporal.uiUrl,
          temporalAddress: r.state.temporal.address,
          namespace: r.state.temporal.namespace,
          database: r.state.postgres.url,
          dataDir: cfg.dataDir,
          token: r.token,
        };
        print(c.format, info, () =>
          [
            renderKv({
              Stack: info.status,
              API: info.apiUrl,
              'Temporal UI': info.temporalUiUrl ?? '(external Temporal)',
              Temporal: info.temporalAddress,
              Namespace: info.namespace,
              PostgreSQL: info.database,
              'Data dir': info.dataDir,
            }),
            '',
            `Dev API token (admin, 30 days; also saved for the CLI in ${cfg.dataDir}/cli.json):`,
            `  export STELLA_TOKEN=${info.token}`,
            '',
            'Next: npx stella evidence status',
          ].join('\n'),
        );
      }),
    );
}

function downCommand(dev: Command): void {
  dev
    .command('down')
    .description('stop what `stella dev up` started (data is kept)')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const stopped = await devDown(c.config());
        print(c.format, { stopped }, () => (stopped.length ? `stopped: ${stopped.join(', ')}` : 'nothing was running'));
      }),
    );
}

function statusCommand(dev: Command): void {
  dev
    .command('status')
    .description('what the dev stack is running')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const s = readStack(c.config());
        if (!s) {
          print(c.format, { running: false }, () => 'not running (stella dev up)');
          return EXIT.UNAVAILABLE;
        }
        const out = {
          running: isAlive(s.serve.pid),
          apiUrl: s.apiUrl,
          temporal: s.temporal,
          postgres: s.postgres.url,
          servePid: s.serve.pid,
          log: s.serve.log,
        };
        print(c.format, out, () =>
          renderKv({
            running: out.running,
            api: out.apiUrl,
            'temporal ui': s.temporal.uiUrl,
            temporal: s.temporal.address,
            postgres: out.postgres,
            log: out.log,
          }),
        );
        return out.running ? EXIT.OK : EXIT.UNAVAILABLE;
      }),
    );
}

function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('run the worker and the HTTP API in this process (what dev up and the container run)')
    .option('--no-api', 'worker only')
    .option('--no-worker', 'API only')
    .action(
      action(async (o: { api: boolean; worker: boolean }, cmd: Command) => {
        const { serve } = await import('../../serve');
        const running = await serve(ctxOf(cmd).config(), { api: o.api, worker: o.worker, handleSignals: true });
        await running.done;
      }),
    );
}

function serviceCommand(program: Command): void {
  program
    .command('service')
    .description('manage the stack started by `stella dev up`')
    .command('restart')
    .description('restart the worker and API (picks up `stella config set` changes)')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const s = await serviceRestart(c.config()).catch((e) => {
          throw new CliError(`restart failed: ${(e as Error).message}`, EXIT.UNAVAILABLE);
        });
        print(c.format, { restarted: true, apiUrl: s.apiUrl, pid: s.serve.pid }, () => `restarted: worker+api (pid ${s.serve.pid}) serving ${s.apiUrl}`);
      }),
    );
}

function configCommands(program: Command): void {
  const config = program.command('config').description('read and write the config file (<data dir>/config.json)');
  config
    .command('set <key> <value>')
    .description(`set a value, e.g. EvidenceLocker:Path /var/lib/stellaops/evidence (keys: ${Object.keys(CONFIG_KEY_ALIASES).join(', ')})`)
    .action(
      action(async (key: string, value: string, _o, cmd: Command) => {
        const c = ctxOf(cmd);
        try {
          const r = writeConfigValue(c.config().dataDir, key, value);
          print(c.format, { ...r, value }, () => `${key} = ${value}  (restart to apply: stella service restart)`);
        } catch (e) {
          if (e instanceof ConfigError) throw new CliError(e.message, EXIT.USAGE);
          throw e;
        }
      }),
    );
  config
    .command('show')
    .description('the effective configuration (secrets hidden)')
    .action(
      action(async (_o, cmd: Command) => {
        const c = ctxOf(cmd);
        const cfg = c.config();
        const safe = JSON.parse(JSON.stringify(cfg, (k, v) => (/secret|token|password/i.test(k) && v ? '***' : v)));
        if (safe.databaseUrl) safe.databaseUrl = String(safe.databaseUrl).replace(/:[^:@/]+@/, ':***@');
        print(c.format, { effective: safe, file: readConfigFile(cfg.dataDir) }, () => JSON.stringify(safe, null, 2));
      }),
    );
}

function authCommands(program: Command): void {
  const auth = program.command('auth').description('API tokens');
  auth
    .command('token')
    .description('mint an API token from the local key store')
    .option('--scopes <list>', `comma-separated scopes (${SCOPES.join(', ')})`, 'admin')
    .option('--sub <name>', 'subject (who the token is for)', 'operator')
    .option('--ttl <seconds>', 'lifetime in seconds', '3600')
    .option('--for-tenant <id>', 'tenant the token acts for')
    .action(
      action(async (o: { scopes: string; sub: string; ttl: string; forTenant?: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const cfg = c.config();
        const scopes = o.scopes
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const bad = scopes.filter((s) => !isScope(s));
        if (bad.length) throw new CliError(`unknown scope ${bad.join(', ')}; known: ${SCOPES.join(', ')}`, EXIT.USAGE);
        const ttl = Number(o.ttl);
        if (!Number.isInteger(ttl) || ttl <= 0) throw new CliError('--ttl must be a positive number of seconds', EXIT.USAGE);
        const ks = await openKeyStore(cfg.keysDir);
        const token =
          scopes.length === 1 && scopes[0] === 'admin' && o.sub === 'dev-operator'
            ? await mintDevToken(cfg)
            : await mintToken(ks, { sub: o.sub, tenant: o.forTenant ?? cfg.tenant, scopes: scopes as never, ttlSeconds: ttl }, { purpose: TOKEN_PURPOSE });
        print(c.format, { token, sub: o.sub, tenant: o.forTenant ?? cfg.tenant, scopes, ttlSeconds: ttl }, () => token);
      }),
    );
}
