import { resolve } from 'node:path';
import type { Command } from 'commander';
import { action, ctxOf, group } from '../common';
import { CliError, EXIT } from '../exit';
import { print, renderTable } from '../output';

/** `stella keys init <dir>`: a local key store for a Kubernetes Secret (docs/production.md, Helm). No API, no database. */
export function registerKeysInitCommand(program: Command): void {
  group(program, 'keys', 'signing keys (the API server key store)')
    .command('init <dir>')
    .description('create a key store in <dir> with every key a server needs (signing, api-token, checkpoint); existing keys are kept')
    .action(
      action(async (dir: string, _o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const { initKeyStore } = await import('../../core/keystore-init');
        const abs = resolve(dir);
        const r = await initKeyStore(abs).catch((e) => {
          throw new CliError(`keys init ${abs}: ${(e as Error).message}`, EXIT.FAILURE);
        });
        const rows = r.keys.map((k) => ({ kid: k.kid, alg: k.alg, purpose: k.purpose, status: k.status, created: r.created.includes(k.kid) }));
        print(
          c.format,
          { dir: abs, keys: rows, secretFiles: `${abs}/keys` },
          () =>
            `${renderTable(rows, [
              { header: 'KID', get: (k) => k.kid },
              { header: 'ALG', get: (k) => k.alg },
              { header: 'PURPOSE', get: (k) => k.purpose },
              { header: 'STATUS', get: (k) => k.status },
              { header: 'NEW', get: (k) => (k.created ? 'yes' : '') },
            ])}\nSecret: kubectl create secret generic stella-keys --from-file=${abs}/keys/`,
        );
      }),
    );
}
