/**
 * The issue-15 table: every line is a measurement, its baseline from the same run (same files,
 * same concurrency, same cache state), their ratio, the target and whether it is met.
 */
export interface Row {
  what: string;
  measured: string;
  baseline: string;
  /** measured/baseline in the direction of the target (e.g. throughput ratio, or time ratio). */
  ratio: number | null;
  /** e.g. '≥ 0.8' or '≤ 3' */
  target: string;
  /** Why a target is not met (or not measured) here, when known. */
  why?: string;
}

export const r2 = (n: number) => Math.round(n * 100) / 100;
export const pct = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export function met(r: Row): 'met' | 'NOT MET' | '-' {
  if (r.ratio === null) return '-';
  const m = /^([≥≤])\s*([\d.]+)/.exec(r.target);
  if (!m) return '-';
  const bound = Number(m[2]);
  return (m[1] === '≥' ? r.ratio >= bound : r.ratio <= bound) ? 'met' : 'NOT MET';
}

/** One plain-text table (stdout), no colours: it is pasted into the closing note. */
export function renderTable(rows: readonly Row[]): string {
  const cells = [
    ['what', 'measured', 'baseline (same run)', 'ratio', 'target', 'met', 'why (when not met)'],
    ...rows.map((r) => [r.what, r.measured, r.baseline, r.ratio === null ? '-' : `${r.ratio}`, r.target, met(r), met(r) === 'met' ? '' : (r.why ?? '')]),
  ];
  const w = cells[0]!.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(w[i]!)).join(' | ')} |`;
  return [line(cells[0]!), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

/** Runs `total` jobs with at most `concurrency` in flight; returns each job's latency (ms) and the wall time (s). */
export async function pool(total: number, concurrency: number, job: (i: number) => Promise<unknown>): Promise<{ seconds: number; latMs: number[] }> {
  let next = 0;
  const latMs: number[] = [];
  const t = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) {
        const i = next++;
        const s = performance.now();
        await job(i);
        latMs.push(performance.now() - s);
      }
    }),
  );
  return { seconds: (performance.now() - t) / 1000, latMs };
}

/** Page cache of these files dropped (posix_fadvise DONTNEED; Node has no binding, python does). */
export async function dropPageCache(paths: readonly string[]): Promise<void> {
  const { spawn } = await import('node:child_process');
  const script =
    'import os,sys\nfor p in sys.stdin.read().split("\\0"):\n  if p:\n    fd=os.open(p,os.O_RDONLY)\n    os.fdatasync(fd)\n    os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)\n    os.close(fd)\n';
  await new Promise<void>((res, rej) => {
    const p = spawn('python3', ['-c', script], { stdio: ['pipe', 'ignore', 'inherit'] });
    p.on('error', rej);
    p.on('close', (code) => (code === 0 ? res() : rej(new Error(`posix_fadvise helper exited ${code}`))));
    p.stdin.end(paths.join('\0'));
  });
}
