import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runStella } from './support/cli';

// CLI polish (issue 16): --format accepts only what is implemented, the version is package.json's,
// and the LICENSE file is the licence package.json names.
const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string; license: string };

describe('stella CLI basics', () => {
  it('--format yaml is refused with a usage exit (2) naming the choices', async () => {
    const global = await runStella({ STELLA_API_URL: 'http://127.0.0.1:9' }, '--format', 'yaml', 'evidence', 'status');
    expect(global.code).toBe(2);
    expect(global.stdout).toBe('');
    expect(global.stderr.split('\n')[0]).toMatch(/'yaml' is invalid\. Allowed choices are table, json\./);
  }, 60_000);

  it('--version prints package.json’s version', async () => {
    const r = await runStella({}, '--version');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  }, 60_000);

  it('LICENSE is the Apache License 2.0 that package.json declares', () => {
    expect(pkg.license).toBe('Apache-2.0');
    const text = readFileSync(`${root}LICENSE`, 'utf8');
    expect(text).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(text).toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
  });
});
