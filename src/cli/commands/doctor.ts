import type { Command } from 'commander';
import { action, ctxOf } from '../common';
import { CliError, EXIT } from '../exit';
import { print, renderTable } from '../output';
import { qs } from '../client';
import { DoctorCheckList, DoctorReport, type DoctorResult } from '../../contracts/doctor';

/**
 * `stella doctor --category evidence`, `stella doctor --check check.storage.evidencelocker`.
 * Checks run in the API (src/core/doctor.ts registry). Exit 0 when nothing FAILs, 4 otherwise;
 * an unreachable API is itself a FAIL.
 */
export function registerDoctorCommands(program: Command): void {
  program
    .command('doctor')
    .description('health checks with remedies (exit 0 if no FAIL, 4 otherwise)')
    .option('--category <name>', 'only checks of this category, e.g. evidence')
    .option('--check <id>', 'one check (and its sub-checks), e.g. check.storage.evidencelocker')
    .option('--arg <k=v...>', 'arguments for checks that take them, e.g. artifact=sha256:…')
    .option('--list', 'list the known checks')
    .action(
      action(async (o: { category?: string; check?: string; arg?: string[]; list?: boolean }, cmd: Command) => {
        const c = ctxOf(cmd);
        const api = c.api();
        if (o.list) {
          const r = await api.call(DoctorCheckList, 'GET', '/doctor/checks');
          print(c.format, r, () =>
            renderTable(r.checks, [
              { header: 'CHECK', get: (x) => x.id },
              { header: 'CATEGORIES', get: (x) => x.categories },
              { header: 'DESCRIPTION', get: (x) => x.description },
            ]),
          );
          return;
        }
        const params: Record<string, string | undefined> = { category: o.category, check: o.check };
        for (const a of o.arg ?? []) {
          const m = /^([a-zA-Z0-9_-]+)=(.*)$/.exec(a);
          if (!m) throw new CliError(`--arg must look like name=value, got ${JSON.stringify(a)}`, EXIT.USAGE);
          params[`arg.${m[1]}`] = m[2];
        }
        let r: DoctorReport;
        try {
          r = await api.call(DoctorReport, 'GET', `/doctor${qs(params)}`);
        } catch (e) {
          if (!(e instanceof CliError) || e.exitCode !== EXIT.UNAVAILABLE) throw e;
          const res: DoctorResult = {
            id: 'check.api.reachable',
            status: 'FAIL',
            message: e.message,
            remedy: 'stella dev up (or start `stella serve`), then retry',
            durationMs: 0,
          };
          r = { ok: false, summary: { pass: 0, warn: 0, fail: 1, skip: 0 }, results: [res] };
        }
        print(c.format, r, () =>
          [
            ...r.results.flatMap((x) => [`[${x.status}] ${x.id}: ${x.message}`, ...(x.remedy && x.status !== 'PASS' ? [`       remedy: ${x.remedy}`] : [])]),
            '',
            `${r.summary.pass} passed, ${r.summary.warn} warning(s), ${r.summary.fail} failed${r.summary.skip ? `, ${r.summary.skip} skipped` : ''}`,
          ].join('\n'),
        );
        return r.ok ? EXIT.OK : EXIT.INTEGRITY;
      }),
    );
}
