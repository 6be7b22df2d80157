import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

// Prometheus alert rules (ops/prometheus/*.yml) checked and unit-tested with promtool
// (Debian package prometheus; .ci/run installs it). CI must run them: without promtool the
// test fails when CI=true and is skipped only on a developer machine.
const root = new URL('..', import.meta.url).pathname;
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const inCi = process.env.CI === 'true';
const ruleFiles = readdirSync(`${root}ops/prometheus`)
  .filter((f) => f.endsWith('.yml'))
  .map((f) => `ops/prometheus/${f}`);
const testFiles = readdirSync(`${root}ops/prometheus/tests`)
  .filter((f) => f.endsWith('.yml'))
  .map((f) => `ops/prometheus/tests/${f}`);

function run(args: string[]) {
  const r = spawnSync('promtool', args, { cwd: root, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

type Rule = { alert?: string; record?: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> };
const rules = ruleFiles.flatMap((f) =>
  (parse(readFileSync(`${root}${f}`, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules.map((r) => ({ f, r }))),
);

describe('ops/prometheus alert rules', () => {
  it('promtool is installed in CI', () => {
    if (inCi) expect(promtool, 'promtool missing (apt-get install prometheus; see .ci/run)').toBe(true);
  });

  it.skipIf(!promtool && !inCi)('promtool check rules accepts every rule file', () => {
    const r = run(['check', 'rules', ...ruleFiles]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it.skipIf(!promtool && !inCi)('promtool unit tests fire each rule file’s alerts with the expected labels', () => {
    // Every rule file has a unit test file, and every alert is exercised by one.
    const tested = testFiles.flatMap((t) => (parse(readFileSync(`${root}${t}`, 'utf8')) as { rule_files: string[] }).rule_files);
    for (const f of ruleFiles) expect(tested.map((p) => `ops/prometheus/${p.replace(/^\.\.\//, '')}`)).toContain(f);
    const testText = testFiles.map((t) => readFileSync(`${root}${t}`, 'utf8')).join('\n');
    for (const { r } of rules) if (r.alert) expect(testText, `${r.alert} has a unit test`).toContain(`alertname: ${r.alert}`);
    const r = run(['test', 'rules', ...testFiles]);
    expect(r.status, r.out).toBe(0);
    expect(r.out.match(/SUCCESS/g)?.length).toBe(testFiles.length);
  });

  it('every alert has one severity label (critical, warning or info) and a runbook_url annotation, no runbook label', () => {
    const alerts = rules.filter(({ r }) => r.alert);
    expect(alerts.length).toBeGreaterThanOrEqual(12);
    for (const { f, r } of alerts) {
      expect(['critical', 'warning', 'info'], `${f} ${r.alert} severity`).toContain(r.labels?.severity);
      expect(r.labels ?? {}, `${f} ${r.alert}`).not.toHaveProperty('runbook');
      expect(r.annotations?.runbook_url, `${f} ${r.alert} runbook_url`).toMatch(/^docs\/runbooks\/[a-z-]+\.md$/);
    }
  });

  it('counter functions are used only on counters (metrics ending in _total that src registers as a Counter)', () => {
    const counters = new Set<string>();
    const files = spawnSync('grep', ['-rlE', 'client\\.Counter', 'src'], { cwd: root, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    for (const file of files)
      for (const m of readFileSync(`${root}${file}`, 'utf8').matchAll(/new client\.Counter\(\{\s*name: '([a-z_:]+)'/g)) counters.add(m[1]);
    for (const { f, r } of rules)
      for (const m of r.expr.matchAll(/\b(?:increase|rate|irate|resets)\(\s*([a-z_:]+)/g)) {
        const metric = m[1].replace(/_(bucket|count|sum)$/, '');
        const isHistogram = m[1] !== metric;
        expect(isHistogram || counters.has(metric), `${f} ${r.alert}: ${m[0]} needs a counter`).toBe(true);
      }
  });
});
