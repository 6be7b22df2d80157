import { readdirSync, readFileSync } from 'node:fs';
import { Command } from 'commander';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { registerAll } from '../src/cli/commands';
import { commandTree } from '../src/cli/commands/completion';

const root = new URL('..', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), 'utf8');
const runbooks = readdirSync(new URL('docs/runbooks/', root)).filter((f) => f.endsWith('.md'));

describe('docs/runbooks', () => {
  it('every alert links an existing runbook that names it', () => {
    for (const f of readdirSync(new URL('ops/prometheus/', root)).filter((x) => x.endsWith('.yml'))) {
      const doc = parse(read(`ops/prometheus/${f}`));
      // Alerts only: recording rules (ops/prometheus/legacy-names.yml) link no runbook.
      for (const rule of doc.groups
        .flatMap((g: { rules: { alert?: string; annotations: Record<string, string> }[] }) => g.rules)
        .filter((r: { alert?: string }) => r.alert)) {
        const url = rule.annotations.runbook_url;
        expect(url, `${f} ${rule.alert}`).toMatch(/^docs\/runbooks\/[a-z-]+\.md$/);
        expect(read(url), `${url} names ${rule.alert}`).toContain(rule.alert);
      }
    }
  });

  it('every stella command and option the runbooks name exists, and every doctor check id', async () => {
    const program = new Command('stella');
    await registerAll(program);
    const nodes = new Map(commandTree(program).map((n) => [n.path, n]));
    // The program's own options are defined in src/cli/main.ts, not by registerAll.
    const rootFlags = ['--api-url', '--token', '--tenant', '--format', '--quiet', '--help'];
    const checkIds = new Set(
      [
        ...read('src/core/evidence/locker/doctor-checks.ts').matchAll(/id: '(check\.[a-z.-]+)'/g),
        ...read('src/core/promotion/observe.ts').matchAll(/id: '(check\.[a-z.-]+)'/g),
      ].map((m) => m[1]),
    );
    let commands = 0;
    for (const f of runbooks) {
      const text = read(`docs/runbooks/${f}`).replace(/\\\n\s*/g, ' ');
      for (const m of text.matchAll(/`([^`\n]*\bstella [^`\n]*)`|^(stella .*)$/gm)) {
        const line = (m[1] ?? m[2]).replace(/\s+#.*$/, '');
        for (const seg of line.split(/(?=\bstella )/).filter((s) => s.startsWith('stella '))) {
          const words = seg.trim().split(/\s+/);
          let path = 'stella';
          let i = 1;
          while (i < words.length && nodes.get(path)?.subs.some((s) => s.name === words[i])) path = `${path} ${words[i++]}`;
          if (path === 'stella') continue; // prose such as "stella's"
          commands++;
          const flags = [...(nodes.get(path)?.opts.flatMap((o) => o.flags) ?? []), ...rootFlags];
          for (const w of words.slice(i).filter((x) => /^--[a-z]/.test(x))) expect(flags, `${f}: ${seg}`).toContain(w.replace(/[=,)].*$/, ''));
        }
      }
      for (const id of read(`docs/runbooks/${f}`).matchAll(/\bcheck\.[a-z][a-z.*-]*[a-z*]/g))
        if (!id[0].includes('*')) expect(checkIds, `${f}: ${id[0]}`).toContain(id[0]);
    }
    expect(commands).toBeGreaterThan(40);
  });
});
