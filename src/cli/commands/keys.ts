import { promises as fsp } from 'node:fs';
import type { Command } from 'commander';
import { action, ctxOf, group } from '../common';
import { CliError, EXIT } from '../exit';
import { print, renderKv, renderTable } from '../output';
import { type ApiResponse, qs } from '../client';
import type { z } from 'zod';
import { formatZodError } from '../../lib/zod';
import { KeyList, KeyRecord, RootPack, RootPackImported, RotatedKeys } from '../../contracts/keys';

const ALGS = ['ES256', 'EdDSA'];
const PURPOSES = ['signing', 'api-token', 'checkpoint'];

function check(o: { alg?: string; purpose?: string }) {
  if (o.alg && !ALGS.includes(o.alg)) throw new CliError(`--alg must be one of ${ALGS.join(', ')}`, EXIT.USAGE);
  if (o.purpose && !PURPOSES.includes(o.purpose)) throw new CliError(`--purpose must be one of ${PURPOSES.join(', ')}`, EXIT.USAGE);
}

async function writePack(path: string, pack: unknown) {
  const tmp = `${path}.part`;
  await fsp.writeFile(tmp, `${JSON.stringify(pack, null, 2)}\n`, { mode: 0o644 });
  await fsp.rename(tmp, path);
}

/** Parses the JSON answer of a raw upload with its contract schema. */
async function parsed<S extends z.ZodType>(schema: S, res: ApiResponse, what: string): Promise<z.infer<S>> {
  const r = schema.safeParse(await res.json());
  if (!r.success) throw new CliError(`unexpected answer from ${what}: ${formatZodError(r.error, 'response')}`, EXIT.FAILURE);
  return r.data;
}

/** What the key table shows: a key store record or a RootPack key. */
type KeyRow = { kid: string; alg: string; status: string; notBefore: string; notAfter: string | null; purpose?: string; purposes?: string[] };

const keyColumns = [
  { header: 'KID', get: (k: KeyRow) => k.kid },
  { header: 'ALG', get: (k: KeyRow) => k.alg },
  { header: 'PURPOSE', get: (k: KeyRow) => k.purpose },
  { header: 'STATUS', get: (k: KeyRow) => k.status },
  { header: 'NOT BEFORE', get: (k: KeyRow) => k.notBefore },
  { header: 'NOT AFTER', get: (k: KeyRow) => k.notAfter },
];

export function registerKeysCommands(program: Command): void {
  const keys = group(program, 'keys', 'signing keys (the API server key store)');
  for (const register of [keysGenerateCommand, keysListCommand, keysRotateCommand, keysExportRootPackCommand]) register(keys);
  const rp = group(program, 'rootpack', 'trusted public keys with validity windows');
  for (const register of [rootPackShowCommand, rootPackImportCommand, rootPackRotateCommand]) register(rp);
}

function keysGenerateCommand(keys: Command): void {
  keys
    .command('generate')
    .description('create a new active key (does not retire others; see rotate)')
    .option('--alg <alg>', `ES256 (ECDSA P-256) or EdDSA (Ed25519)`, 'ES256')
    .option('--purpose <purpose>', `signing, api-token or checkpoint (Ed25519: --alg EdDSA)`, 'signing')
    .action(
      action(async (o: { alg: string; purpose: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        check(o);
        const k = await c.api().call(KeyRecord, 'POST', '/keys', { alg: o.alg, purpose: o.purpose });
        print(c.format, k, () => `generated ${k.alg} ${k.purpose} key ${k.kid} (active from ${k.notBefore})`);
      }),
    );
}

function keysListCommand(keys: Command): void {
  keys
    .command('list')
    .description('every key, active and retired (public metadata only)')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(KeyList, 'GET', '/keys');
        print(c.format, r, () => renderTable(r.items, keyColumns));
      }),
    );
}

function keysRotateCommand(keys: Command): void {
  keys
    .command('rotate')
    .description('new active key; the previous active key of that purpose is retired (its signatures stay valid for its window)')
    .option('--alg <alg>', 'algorithm of the new key (default: same as the current one)')
    .option('--purpose <purpose>', 'signing, api-token or checkpoint', 'signing')
    .action(
      action(async (o: { alg?: string; purpose: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        check(o);
        const r = await c.api().call(RotatedKeys, 'POST', '/keys/rotate', { purpose: o.purpose, ...(o.alg ? { alg: o.alg } : {}) });
        print(
          c.format,
          r,
          () => `active: ${r.active.kid} (${r.active.alg})\nretired: ${r.retired.map((k) => `${k.kid} (notAfter ${k.notAfter})`).join(', ') || 'none'}`,
        );
      }),
    );
}

function keysExportRootPackCommand(keys: Command): void {
  keys
    .command('export-rootpack')
    .description("write this locker's public keys and their validity windows as a RootPack")
    .option('-o, --output <file>', 'file to write', 'rootpack.json')
    .action(
      action(async (o: { output: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        const pack = await c.api().call(RootPack, 'GET', `/rootpack${qs({ scope: 'own' })}`);
        await writePack(o.output, pack);
        print(
          c.format,
          { output: o.output, digest: pack.digest, keys: pack.keys.length },
          () => `wrote ${o.output}: ${pack.keys.length} key(s), ${pack.digest}`,
        );
      }),
    );
}

function rootPackShowCommand(rp: Command): void {
  rp.command('show')
    .description('the RootPack verification trusts (own keys merged with imported packs)')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const pack = await c.api().call(RootPack, 'GET', '/rootpack');
        print(c.format, pack, () =>
          [
            renderKv({ digest: pack.digest, created: pack.createdAt, keys: pack.keys.length }),
            renderTable(pack.keys, [...keyColumns.slice(0, 2), { header: 'PURPOSES', get: (k: KeyRow) => k.purposes }, ...keyColumns.slice(3)]),
          ].join('\n'),
        );
      }),
    );
}

function rootPackImportCommand(rp: Command): void {
  rp.command('import <file>')
    .description('merge a RootPack into the trusted set (trust for known keys can only narrow)')
    .action(
      action(async (file: string, _o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const body = await fsp.readFile(file).catch(() => {
          throw new CliError(`${file}: no such file`, EXIT.USAGE);
        });
        const res = await c.api().raw('POST', '/rootpack', { body, headers: { 'content-type': 'application/json' } });
        const r = await parsed(RootPackImported, res, 'POST /rootpack');
        print(c.format, r, () => `imported ${file}: ${r.added.length} key(s) added, ${r.updated.length} narrowed; trusted pack ${r.digest}`);
      }),
    );
}

function rootPackRotateCommand(rp: Command): void {
  rp.command('rotate')
    .description('rotate the signing key and re-export the RootPack')
    .option('--alg <alg>', 'algorithm of the new key (default: same as the current one)')
    .option('-o, --output <file>', 'file to write', 'rootpack.json')
    .action(
      action(async (o: { alg?: string; output: string }, cmd: Command) => {
        const c = ctxOf(cmd);
        check(o);
        const api = c.api();
        const r = await api.call(RotatedKeys, 'POST', '/keys/rotate', { purpose: 'signing', ...(o.alg ? { alg: o.alg } : {}) });
        const pack = await api.call(RootPack, 'GET', `/rootpack${qs({ scope: 'own' })}`);
        await writePack(o.output, pack);
        print(
          c.format,
          { ...r, output: o.output, digest: pack.digest },
          () =>
            `active signing key: ${r.active.kid} (${r.active.alg}); retired: ${r.retired.map((k) => k.kid).join(', ') || 'none'}\nwrote ${o.output}: ${pack.keys.length} key(s), ${pack.digest}`,
        );
      }),
    );
}
