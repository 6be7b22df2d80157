/** Readable tables by default, `--format json` for machines. */
export type Format = 'table' | 'json';

export interface Column<T> {
  header: string;
  get: (row: T) => unknown;
  align?: 'left' | 'right';
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (Array.isArray(v)) return v.join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function renderTable<T>(rows: T[], cols: Column<T>[]): string {
  const data = rows.map((r) => cols.map((c) => cell(c.get(r))));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...data.map((d) => d[i]!.length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (cols[i]!.align === 'right' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...data.map(line)].join('\n');
}

export function renderKv(obj: Record<string, unknown>): string {
  const keys = Object.keys(obj);
  const w = Math.max(...keys.map((k) => k.length));
  return keys.map((k) => `${k.padEnd(w)}  ${cell(obj[k])}`).join('\n');
}

export function print(format: Format, json: unknown, human: () => string): void {
  process.stdout.write((format === 'json' ? JSON.stringify(json, null, 2) : human()) + '\n');
}

export function shortDigest(d: string | null | undefined): string {
  if (!d) return '-';
  return d.startsWith('sha256:') ? `sha256:${d.slice(7, 19)}` : d;
}

export { humanBytes } from '../lib/format';
