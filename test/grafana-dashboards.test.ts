import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import client from 'prom-client';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';

// ops/grafana/dashboards, checked without Grafana: JSON structure, every PromQL expression parsed
// by promtool (as a recording rule), and every metric it names one that stella exposes, a
// recording rule of ops/prometheus, or a Temporal SDK metric.
const root = new URL('..', import.meta.url).pathname;
const DIR = `${root}ops/grafana/dashboards`;
// The dashboard's datasource variable, as Grafana writes a reference to it.
const DS_VARIABLE = ['$', '{datasource}'].join('');

type Target = { refId: string; expr: string; datasource: { type: string; uid: string } };
type Panel = { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets: Target[]; datasource: unknown };
type Dashboard = { uid: string; title: string; schemaVersion: number; panels: Panel[]; templating: { list: { name: string; type: string; query: string }[] } };

const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
const dashboards = files.map((f) => [f, JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Dashboard] as const);

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Metric families stella's processes register: names declared in src/ (histograms flagged), prom-client's defaults. */
function stellaMetrics(): { names: Set<string>; histograms: Set<string> } {
  const names = new Set<string>();
  const histograms = new Set<string>();
  for (const f of walk(`${root}src`)) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/\bname: '([a-z_:][a-z0-9_:]*_[a-z0-9_:]*)'/g)) {
      // The constructor this name belongs to: the nearest `new client.<Type>(` or `…Gauge(` call before it.
      const before = text.slice(Math.max(0, m.index - 400), m.index);
      const ctor = [...before.matchAll(/new client\.(\w+)\(|(\w*Gauge)\(/g)].at(-1);
      if (!ctor || before.slice(ctor.index).includes('name:')) continue;
      names.add(m[1]!);
      if (ctor[1] === 'Histogram' || ctor[1] === 'Summary') histograms.add(m[1]!);
    }
  }
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  for (const m of registry.getMetricsAsArray()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') histograms.add(m.name);
  }
  return { names, histograms };
}

function recordingRules(): Set<string> {
  const out = new Set<string>();
  for (const f of readdirSync(`${root}ops/prometheus`).filter((x) => x.endsWith('.yml'))) {
    for (const m of readFileSync(`${root}ops/prometheus/${f}`, 'utf8').matchAll(/^\s*- record: ([a-zA-Z_:][a-zA-Z0-9_:]*)/gm)) out.add(m[1]!);
  }
  return out;
}

function temporalMetrics(): { names: Set<string>; histograms: Set<string> } {
  const names = new Set<string>();
  const histograms = new Set<string>();
  for (const line of readFileSync(`${root}ops/grafana/temporal-sdk-metrics.txt`, 'utf8').split('\n')) {
    const m = /^(temporal_[a-z_]+) (counter|gauge|histogram)$/.exec(line);
    if (!m) continue;
    names.add(m[1]!);
    if (m[2] === 'histogram') histograms.add(m[1]!);
  }
  return { names, histograms };
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan', 'le']);

/** Metric names an expression selects: strings, label matchers, ranges, grouping lists and function calls removed. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const out: string[] = [];
  for (const m of bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    out.push(m[1]!);
  }
  return out;
}

const exprs = dashboards.flatMap(([file, d]) => d.panels.flatMap((p) => p.targets.map((t) => ({ file, panel: p.title, expr: t.expr }))));

describe('Grafana dashboards (ops/grafana/dashboards)', () => {
  it('has the four dashboards of the runbooks', () => {
    expect(dashboards.map(([, d]) => d.title).sort()).toEqual([
      'stella / Evidence Locker',
      'stella / Orchestrator',
      'stella / Replay',
      'stella / Temporal worker',
    ]);
    expect(new Set(dashboards.map(([, d]) => d.uid)).size).toBe(dashboards.length);
  });

  it('is well-formed Grafana JSON: unique panel ids, panels on the 24-column grid without overlap, queries on the datasource variable', () => {
    for (const [file, d] of dashboards) {
      expect(d.schemaVersion, file).toBeGreaterThanOrEqual(36);
      expect(d.templating.list, file).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
      expect(new Set(d.panels.map((p) => p.id)).size, file).toBe(d.panels.length);
      const cells = new Set<string>();
      for (const p of d.panels) {
        const { x, y, w, h } = p.gridPos;
        expect(x >= 0 && w > 0 && x + w <= 24 && h > 0 && y >= 0, `${file}: ${p.title}`).toBe(true);
        for (let i = x; i < x + w; i++) {
          for (let j = y; j < y + h; j++) {
            expect(cells.has(`${i},${j}`), `${file}: ${p.title} overlaps another panel`).toBe(false);
            cells.add(`${i},${j}`);
          }
        }
        expect(p.targets.length, `${file}: ${p.title}`).toBeGreaterThan(0);
        for (const t of p.targets) {
          expect(t.datasource, `${file}: ${p.title}`).toEqual({ type: 'prometheus', uid: DS_VARIABLE });
          expect(t.expr.trim(), `${file}: ${p.title}`).not.toBe('');
        }
      }
    }
  });

  it('uses only metrics stella exposes, its recording rules, or Temporal SDK metrics', () => {
    const s = stellaMetrics();
    const t = temporalMetrics();
    const rules = recordingRules();
    expect(s.names.has('stella_http_requests_total')).toBe(true);
    expect(t.names.has('temporal_worker_task_slots_available')).toBe(true);
    const known = (n: string) => {
      if (s.names.has(n) || t.names.has(n) || rules.has(n)) return true;
      const base = n.replace(/_(bucket|sum|count)$/, '');
      return base !== n && (s.histograms.has(base) || t.histograms.has(base));
    };
    const used = new Set<string>();
    for (const { file, panel, expr } of exprs) {
      const names = metricNames(expr);
      expect(names.length, `${file}: ${panel}: ${expr} names no metric`).toBeGreaterThan(0);
      for (const n of names) {
        expect(known(n), `${file}: ${panel}: ${n} is not a metric stella or the Temporal SDK exposes`).toBe(true);
        used.add(n);
      }
    }
    // Each dashboard family is covered: stella's own metrics and the SDK's.
    expect([...used].some((n) => n.startsWith('temporal_'))).toBe(true);
    expect([...used].filter((n) => n.startsWith('stella_')).length).toBeGreaterThan(15);
  });

  it('finds metric names the way PromQL reads them', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le, route) (rate(stella_x_bucket{route=~"/a.*"}[5m])))')).toEqual(['stella_x_bucket']);
    expect(metricNames('a / on (job) group_left b > 0 and c offset 5m')).toEqual(['a', 'b', 'c']);
    expect(metricNames('(time() - stella_t) / 3600')).toEqual(['stella_t']);
  });

  it('parses every expression with promtool (as recording rules)', () => {
    const rules = exprs.map((e, i) => ({ record: `dashboard:expr_${i}`, expr: e.expr }));
    const dir = mkdtempSync(join(tmpdir(), 'grafana-exprs-'));
    writeFileSync(join(dir, 'exprs.yml'), stringify({ groups: [{ name: 'dashboards', rules }] }));
    const out = execFileSync('promtool', ['check', 'rules', join(dir, 'exprs.yml')], { encoding: 'utf8' });
    expect(out).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('takes the Temporal SDK metric names from a recording made with the exporter options the workers use', () => {
    // ops/grafana/temporal-sdk-metrics.txt was recorded with these options; changing them renames every SDK metric.
    const runtime = readFileSync(`${root}workers/runtime.ts`, 'utf8');
    expect(runtime).toMatch(/prometheus: \{[^}]*countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true/);
    const recorded = readFileSync(`${root}ops/grafana/temporal-sdk-metrics.txt`, 'utf8');
    expect(recorded).toContain('countersTotalSuffix, unitSuffix and useSecondsForDurations');
    expect(recorded).toMatch(/^temporal_workflow_completed_total counter$/m);
    expect(recorded).toMatch(/^temporal_activity_execution_latency_seconds histogram$/m);
  });
});
