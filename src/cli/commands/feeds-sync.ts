/** `stella feeds sync <dir|url>` and `stella feeds status`: OSV mirror sync (checksummed) and per-ecosystem freshness. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { z } from 'zod';
import { FeedEcosystems, FeedSynced } from '../../contracts/scan-feeds';
import { formatZodError } from '../../lib/zod';
import { ScannerError } from '../../scanner/errors';
import { readOsvMirror } from '../../scanner/osv-mirror';
import type { ApiResponse } from '../client';
import { action, ctxOf } from '../common';
import { CliError, EXIT } from '../exit';
import { print, renderTable } from '../output';

async function parsed<S extends z.ZodType>(schema: S, res: ApiResponse, what: string): Promise<z.infer<S>> {
  const r = schema.safeParse(await res.json());
  if (!r.success) throw new CliError(`unexpected answer from ${what}: ${formatZodError(r.error, 'response')}`, EXIT.FAILURE);
  return r.data;
}

const age = (s: number) => (s >= 86_400 ? `${Math.floor(s / 86_400)}d` : s >= 3600 ? `${Math.floor(s / 3600)}h` : s >= 60 ? `${Math.floor(s / 60)}m` : `${s}s`);

export function feedsSyncCommand(feeds: Command): void {
  feeds
    .command('sync <dirOrUrl>')
    .description(
      'sync advisories from an OSV mirror (a directory or http(s) URL with <Ecosystem>/all.zip or OSV JSON records, and a SHA256SUMS manifest): checksums verified, synced ecosystems replaced, idempotent',
    )
    .action(
      action(async (src: string, _o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const isUrl = /^https?:\/\//i.test(src);
        const tty = process.stderr.isTTY;
        if (tty) process.stderr.write(`reading and verifying ${src} …\n`);
        let mirror: Awaited<ReturnType<typeof readOsvMirror>>;
        try {
          mirror = await readOsvMirror(isUrl ? src : resolve(src));
        } catch (e) {
          if (e instanceof ScannerError) throw new CliError(`${e.message}; nothing imported`, e.category === 'INTEGRITY' ? EXIT.INTEGRITY : EXIT.USAGE);
          throw e;
        }
        const records = mirror.ecosystems.reduce((n, e) => n + e.records.length, 0);
        if (!records) throw new CliError(`${src}: the mirror holds no OSV records; nothing imported`, EXIT.USAGE);
        if (tty) process.stderr.write(`verified ${mirror.files.length} file(s); uploading ${records} records …\n`);
        const body = Buffer.from(
          JSON.stringify({
            source: mirror.source,
            manifestSha256: mirror.manifestSha256,
            ecosystems: mirror.ecosystems.map((e) => ({ name: e.name, records: e.records })),
          }),
        );
        const res = await c.api().raw('POST', '/feeds/sync', { body, headers: { 'content-type': 'application/json' } });
        const r = await parsed(FeedSynced, res, 'POST /feeds/sync');
        print(c.format, r, () =>
          [
            `${r.feed.created ? 'imported' : 'unchanged'}: feed v${r.feed.version} ${r.feed.digest} (${r.feed.records} records; ${r.kept} kept from other ecosystems)`,
            renderTable(r.ecosystems, [
              { header: 'ECOSYSTEM', get: (e) => e.ecosystem },
              { header: 'RECORDS', get: (e) => e.records, align: 'right' },
              { header: 'CHANGED', get: (e) => (e.changed ? 'yes' : 'no') },
              { header: 'IMPORTED', get: (e) => e.importedAt },
              { header: 'SYNCED', get: (e) => e.syncedAt },
            ]),
          ].join('\n'),
        );
      }),
    );
}

export function feedsStatusCommand(feeds: Command): void {
  feeds
    .command('status')
    .description('per-ecosystem advisory freshness: records, last content change, last sync and its age (StellaFeedStale fires past 2 days)')
    .action(
      action(async (_o: unknown, cmd: Command) => {
        const c = ctxOf(cmd);
        const r = await c.api().call(FeedEcosystems, 'GET', '/feeds/ecosystems');
        print(c.format, r, () =>
          r.items.length
            ? renderTable(r.items, [
                { header: 'ECOSYSTEM', get: (e) => e.ecosystem },
                { header: 'RECORDS', get: (e) => e.records, align: 'right' },
                { header: 'FEED', get: (e) => `v${e.feedVersion}` },
                { header: 'IMPORTED', get: (e) => e.importedAt },
                { header: 'SYNCED', get: (e) => e.syncedAt },
                { header: 'AGE', get: (e) => age(e.ageSeconds), align: 'right' },
              ])
            : 'no ecosystem synced yet (stella feeds sync <dir|url>)',
        );
      }),
    );
}
