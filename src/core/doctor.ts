import type { Client } from '@temporalio/client';
import type { AppContext } from './context';

/**
 * `stella doctor`: health checks that features export (src/app/features.ts lists them). The API runs them (GET /doctor) because they need the database and
 * the stores; the CLI prints them. Check ids follow the runbooks (e.g. check.storage.evidencelocker);
 * `--check X` also runs sub-checks `X.*`.
 */
export type DoctorStatus = 'PASS' | 'WARN' | 'FAIL' | 'SKIP';

export interface DoctorOutcome {
  status: DoctorStatus;
  message: string;
  /** What to do about a WARN/FAIL, one line (usually a command). */
  remedy?: string;
  details?: Record<string, unknown>;
}

export interface DoctorEnv {
  ctx: AppContext;
  tenant: string;
  /** Scopes of the caller; checks that reveal data need the matching scope. */
  scopes: string[];
  temporal: { client: Client; taskQueue: string } | null;
  /** `--check` arguments, when a check takes some (e.g. an artifact digest). */
  args: Record<string, string>;
}

export interface DoctorCheck {
  id: string;
  categories: string[];
  description: string;
  /** Scope the caller needs (admin passes); missing it turns the check into SKIP. */
  scope?: string;
  timeoutMs?: number;
  run(env: DoctorEnv): Promise<DoctorOutcome>;
}

export interface DoctorResult extends DoctorOutcome {
  id: string;
  description: string;
  categories: string[];
  durationMs: number;
}

const CHECK_ID = /^check\.[a-z0-9-]+(\.[a-z0-9-]+)+$/;

/** Checks sorted by id; ids must look like check.<area>.<name> (the runbooks name them). */
export function sortedChecks(checks: readonly DoctorCheck[]): DoctorCheck[] {
  for (const c of checks) if (!CHECK_ID.test(c.id)) throw new Error(`doctor check id ${c.id} must look like check.<area>.<name>`);
  return [...checks].sort((a, b) => a.id.localeCompare(b.id));
}

export function selectChecks(checks: readonly DoctorCheck[], q: { category?: string; check?: string }): DoctorCheck[] {
  return sortedChecks(checks).filter(
    (c) => (!q.category || c.categories.includes(q.category)) && (!q.check || c.id === q.check || c.id.startsWith(`${q.check}.`)),
  );
}

export async function runDoctorCheck(c: DoctorCheck, env: DoctorEnv): Promise<DoctorResult> {
  const started = performance.now();
  const base = { id: c.id, description: c.description, categories: c.categories };
  if (c.scope && !env.scopes.includes(c.scope) && !env.scopes.includes('admin')) {
    return { ...base, status: 'SKIP', message: `needs scope ${c.scope}`, durationMs: 0 };
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const out = await Promise.race([
      c.run(env),
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`check timed out after ${c.timeoutMs ?? 10_000} ms`)), c.timeoutMs ?? 10_000);
      }),
    ]);
    return { ...base, ...out, durationMs: Math.round(performance.now() - started) };
  } catch (e) {
    return { ...base, status: 'FAIL', message: (e as Error).message.split('\n')[0]!, durationMs: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the selected checks (sequentially: some probe the same store) and summarises. */
export async function runDoctor(env: DoctorEnv, q: { category?: string; check?: string }, all: readonly DoctorCheck[]) {
  const checks = selectChecks(all, q);
  const results: DoctorResult[] = [];
  for (const c of checks) results.push(await runDoctorCheck(c, env));
  const count = (s: DoctorStatus) => results.filter((r) => r.status === s).length;
  return { ok: count('FAIL') === 0, summary: { pass: count('PASS'), warn: count('WARN'), fail: count('FAIL'), skip: count('SKIP') }, results };
}

/** Extra `arg.<name>=<value>` query parameters, for checks that take arguments. */
export function checkArgs(query: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(query)
      .filter(([k]) => k.startsWith('arg.'))
      .map(([k, v]) => [k.slice(4), String(v)]),
  );
}
