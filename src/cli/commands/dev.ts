import type { Command } from 'commander';
import { action, ctxOf } from '../common';
import { CliError, EXIT } from '../exit';
import { print, renderKv } from '../output';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { FsBlobStore } from '../../blob';
import { seedReplica } from '../../core/backup/replica';
import { devUp, devDown, readStack, serviceRestart, DEV_TOKEN_TTL_SECONDS } from '../../dev/stack';
import { writeConfigValue, readConfigFile, CONFIG_KEY_ALIASES, ConfigError, type StellaConfig } from '../../config';
import { isAlive } from '../../dev/proc';
import { issueLocalToken } from '../../core/identity/issue';
import { DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS, SCOPES, isScope, type Scope } from '../../crypto/tokens';
import { RevocationAnswer } from '../../contracts/revocation';
import { dpopThumbprint } from '../dpop';

/** The stack commands: `dev up|down|status`, `serve`, `service restart`, `config`, `auth token|revoke`. */
export function registerDevCommands(program: Command): void {
  const dev = program.command('dev').description('run the whole stack on this machine (embedded defaults)');
  for (const add of [upCommand, downCommand, statusCommand]) add(dev);
  for (const add of [serveCommand, serviceCommand, configCommands, authCommands]) add(program);
}

function upCommand(dev: Command): void {
  dev
    .command('up')
    .description('start Temporal (dev server), PostgreSQL, the worker and the API; safe to run twice')
    .option('--replica [path]', 'also keep a filesystem replica of the evidence store (default <data dir>/replica), seeded with every blob stored so far')
    .action(
      action(async (o: { replica?: string | boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const cfg = c.config();
        const say = (s: string) => c.quiet || process.stderr.write(`${s}\n`);
        const replicaPath = o.replica ? configureReplica(cfg, o.replica) : null;
        let r = await devUp(cfg, say).catch((e) => {
          throw new CliError(`dev up failed: ${(e as Error).message}`, EXIT.UNAVAILABLE);
        });
        // A running stack picks up the replica setting on restart.
        if (replicaPath?.changed && r.reused) r = { ...r, state: await serviceRestart(cfg) };
        const seeded = replicaPath ? await seedDevReplica(cfg, replicaPath.path, say) : null;
        const info = {
          status: r.reused ? 'already running' : 'started',
          apiUrl: r.state.apiUrl,
          temporalUiUrl: r.state.temporal.uiUrl,
          temporalAddress: r.state.temporal.address,
          namespace: r.state.temporal.namespace,
          database: r.state.postgres.url,
          dataDir: cfg.dataDir,
          replica: seeded,
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
              ...(seeded ? { Replica: `${seeded.replica} (${seeded.copied} blob(s) copied, ${seeded.present} already there)` } : {}),
            }),
            '',
            `Dev API token (admin, ${DEV_TOKEN_TTL_SECONDS / 3600} hours, DPoP-bound to this CLI's key; saved for the CLI in ${cfg.dataDir}/cli.json):`,
            `  export STELLA_TOKEN=${info.token}`,
            '',
            'Next: npx stella evidence status',
          ].join('\n'),
        );
      }),
    );
}

/** `dev up --replica`: EvidenceLocker:ReplicaPath in the config file (the stack reads it at start). */
function configureReplica(cfg: StellaConfig, opt: string | boolean): { path: string; changed: boolean } {
  if (cfg.blob.kind !== 'fs') throw new CliError('--replica sets up a filesystem replica of a filesystem store; for S3 set STELLA_REPLICA_BUCKET', EXIT.USAGE);
  const path = resolve(typeof opt === 'string' ? opt : join(cfg.dataDir, 'replica'));
  if (resolve(cfg.blob.path) === path) throw new CliError(`--replica ${path} is the evidence store itself; pick another directory`, EXIT.USAGE);
  const changed = cfg.blob.replicaPath !== path;
  if (changed) writeConfigValue(cfg.dataDir, 'EvidenceLocker:ReplicaPath', path);
  return { path, changed };
}

async function seedDevReplica(cfg: StellaConfig, path: string, say: (s: string) => void) {
  if (cfg.blob.kind !== 'fs') return null;
  say(`seeding the replica ${path} …`);
  return seedReplica(new FsBlobStore(cfg.blob.path), new FsBlobStore(path), (n) => say(`  ${n} blobs checked`));
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
    .option('--queues <list>', 'task queues the worker polls: control, heavy or control,heavy (default STELLA_WORKER_QUEUES, both)')
    .action(
      action(async (o: { api: boolean; worker: boolean; queues?: string }, cmd: Command) => {
        const queues = o.queues?.split(',').map((q) => q.trim());
        if (queues && (!queues.length || queues.some((q) => q !== 'control' && q !== 'heavy'))) {
          throw new CliError(`--queues ${JSON.stringify(o.queues)}: expected control, heavy or control,heavy`, EXIT.USAGE);
        }
        const { serve } = await import('../../serve');
        const running = await serve(ctxOf(cmd).config(), {
          api: o.api,
          worker: o.worker,
          handleSignals: true,
          ...(queues ? { queues: queues as ('control' | 'heavy')[] } : {}),
        });
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
  for (const add of [tokenCommand, revokeCommand]) add(auth);
}

/** Scopes of `--scopes a,b`; a usage error names the unknown ones. */
function parseScopes(list: string): Scope[] {
  const scopes = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = scopes.filter((s) => !isScope(s));
  if (bad.length || scopes.length === 0) throw new CliError(`unknown scope ${bad.join(', ') || '(none)'}; known: ${SCOPES.join(', ')}`, EXIT.USAGE);
  return scopes as Scope[];
}

function tokenCommand(auth: Command): void {
  auth
    .command('token')
    .description('issue an API token from the local key store (audited; DPoP-bound to this CLI with --dpop)')
    .option('--scopes <list>', `comma-separated scopes (${SCOPES.join(', ')})`, 'admin')
    .option('--sub <name>', 'subject (who the token is for)', 'operator')
    .option('--ttl <seconds>', `lifetime in seconds (at most ${MAX_TTL_SECONDS})`, String(DEFAULT_TTL_SECONDS))
    .option('--for-tenant <id>', 'tenant the token acts for')
    .option('--dpop', "bind the token to this CLI's DPoP key (RFC 9449): usable only with proofs by that key; needed for replay:read")
    .action(
      action(async (o: { scopes: string; sub: string; ttl: string; forTenant?: string; dpop?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const cfg = c.config();
        const scopes = parseScopes(o.scopes);
        const ttl = Number(o.ttl);
        if (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_TTL_SECONDS)
          throw new CliError(`--ttl must be 1..${MAX_TTL_SECONDS} seconds (at most 24 hours)`, EXIT.USAGE);
        const databaseUrl = cfg.databaseUrl ?? readStack(cfg)?.postgres.url;
        if (!databaseUrl)
          throw new CliError('auth token records each token in the audit log: set DATABASE_URL or start the stack (stella dev up)', EXIT.UNAVAILABLE);
        const tenant = o.forTenant ?? cfg.tenant;
        const jkt = o.dpop ? await dpopThumbprint(cfg.dataDir) : undefined;
        const issued = await issueLocalToken(
          { ...cfg, databaseUrl },
          { sub: o.sub, tenant, scopes, ttlSeconds: ttl, via: 'cli', actor: userInfo().username, ...(jkt ? { jkt } : {}) },
        );
        print(c.format, { ...issued, sub: o.sub, tenant, scopes, ttlSeconds: ttl }, () => issued.token);
      }),
    );
}

function revokeCommand(auth: Command): void {
  auth
    .command('revoke')
    .description('revoke an API token (--jti) or a token-signing key (--kid; the active one is rotated first); admin only')
    .option('--jti <id>', 'the token id (jti claim; `auth token --format json` shows it)')
    .option('--kid <kid>', 'an api-token key id (stella keys list)')
    .option('--reason <text>', 'why (kept in the audit log)')
    .action(
      action(async (o: { jti?: string; kid?: string; reason?: string }, cmd: Command) => {
        if ((o.jti === undefined) === (o.kid === undefined)) throw new CliError('give exactly one of --jti and --kid', EXIT.USAGE);
        const c = ctxOf(cmd);
        const r = await c
          .api()
          .call(RevocationAnswer, 'POST', '/auth/revocations', { ...(o.jti ? { jti: o.jti } : { kid: o.kid }), ...(o.reason ? { reason: o.reason } : {}) });
        print(c.format, r, () => `revoked ${r.kind} ${r.value}${r.rotatedTo ? ` (token key rotated to ${r.rotatedTo})` : ''}`);
      }),
    );
}
