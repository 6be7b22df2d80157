import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMAND_MODULES, commandNameOf, modulesFor } from '../src/cli/commands';
import { prebuiltWorkflowBundle } from '../workers/workflow-bundle';

const ROOT = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'stella-cli-build-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('lazy command loading', () => {
  it('each command module declares exactly the top-level commands it registers, and its subcommands of groups shared with other modules', async () => {
    const shared = new Set(COMMAND_MODULES.flatMap((m) => m.commands).filter((c, i, all) => all.indexOf(c) !== i));
    expect([...shared].sort()).toEqual(['attest', 'auth', 'evidence', 'keys']);
    for (const m of COMMAND_MODULES) {
      const program = new Command('stella');
      (await m.load())(program);
      expect(program.commands.map((c) => c.name()).sort(), String(m.load)).toEqual([...m.commands].sort());
      const subs = Object.fromEntries(program.commands.filter((c) => shared.has(c.name())).map((c) => [c.name(), c.commands.map((s) => s.name()).sort()]));
      expect(subs, String(m.load)).toEqual(Object.fromEntries(Object.entries(m.subcommands ?? {}).map(([g, l]) => [g, [...l].sort()])));
    }
  });

  it('a subcommand of a shared group loads only the modules that add it; help and unknown words load the whole group', () => {
    // Each entry's module, by the file name its load() imports.
    const loads = (...args: string[]) => modulesFor(args).map((m) => /([a-z-]+)(?:\.ts)?['"]\)/.exec(String(m.load))?.[1]);
    expect(loads('evidence', 'status', '--format', 'json')).toEqual(['locker']);
    expect(loads('--format', 'json', 'evidence', 'policy', 'show')).toEqual(['retention', 'evidence-policy']);
    expect(loads('evidence', 'storage', 'check')).toEqual(['locker', 'backup']);
    expect(loads('evidence', '--help')).toEqual(['evidence', 'locker', 'backup', 'retention', 'anchoring', 'evidence-policy']);
    expect(loads('evidence', 'no-such')).toHaveLength(6);
    expect(loads('promotion', 'status')).toEqual(['promotion']);
    expect(loads('--help')).toHaveLength(COMMAND_MODULES.length);
  });

  it('finds the command name past root options', () => {
    expect(commandNameOf(['--format', 'json', '--api-url', 'http://x', 'evidence', 'status'])).toBe('evidence');
    expect(commandNameOf(['--format=json', '-q', 'scan', 'image'])).toBe('scan');
    expect(commandNameOf(['--help'])).toBeUndefined();
  });

  it('`evidence status` (built) loads neither the AWS SDK nor the Temporal worker', () => {
    // The build global-setup made from this run's sources (bin/stella.mjs would run the sources
    // instead if another edit landed since; this checks the built code itself).
    const info = JSON.parse(readFileSync(join(ROOT, 'dist', 'cli.json'), 'utf8')) as { dir: string; inputs: string[] };
    // Every input is a file bin/stella.mjs can stat (else it would take the build for stale, always).
    for (const f of info.inputs) expect(existsSync(join(ROOT, f)), f).toBe(true);
    // The build is one CommonJS script: every package it loads goes through Module._resolveFilename.
    const hooks = join(tmp, 'hooks.cjs');
    writeFileSync(
      hooks,
      `const M = require('node:module'); const orig = M._resolveFilename; M._resolveFilename = function (...a) { const r = orig.apply(this, a); const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(r); if (m) process.stderr.write('LOADED ' + m[1] + '\\n'); return r; };\n`,
    );
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--require', hooks, join(ROOT, 'dist', info.dir, 'main.js'), ...args], {
        env: { ...process.env, STELLA_API_URL: 'http://127.0.0.1:9', STELLA_TOKEN: 'x', STELLA_DATA_DIR: tmp },
        encoding: 'utf8',
      });
    const r = run('evidence', 'status');
    expect(r.stderr).toContain('cannot reach the stella API'); // it did run the command
    expect(r.status).toBe(5);
    const loaded = new Set([...r.stderr.matchAll(/^LOADED (\S+)$/gm)].map((m) => m[1]));
    for (const heavy of ['@aws-sdk/client-s3', '@temporalio/worker', '@temporalio/client', '@temporalio/envconfig', 'fastify', 'pg', 'tsx'])
      expect(loaded.has(heavy), heavy).toBe(false);
    // Help loads every module, so it still lists every command (and does load the packages they import).
    const help = run('--help');
    expect(help.stdout).toMatch(/evidence[\s\S]*promotion[\s\S]*scan[\s\S]*completion/);
    expect(help.stderr).toContain('LOADED @aws-sdk/client-s3');
  });
});

describe("the build's code cache", () => {
  it('is written on the first run, used on the next, and never runs code other than the script it was made from', () => {
    const info = JSON.parse(readFileSync(join(ROOT, 'dist', 'cli.json'), 'utf8')) as { dir: string };
    // A copy at the same depth as the real build (its sources find package.json by relative path).
    const copy = join(ROOT, 'dist', 'cli', `test-${process.pid}`);
    rmSync(copy, { recursive: true, force: true });
    cpSync(join(ROOT, 'dist', info.dir), copy, { recursive: true, filter: (f) => !f.endsWith('.v8cache') });
    try {
      const run = (...args: string[]) => spawnSync(process.execPath, [join(copy, 'main.js'), ...args], { encoding: 'utf8' });
      const first = run('--help');
      expect(first.status).toBe(0);
      const cache = readFileSync(join(copy, 'cli.cjs.v8cache'));
      expect(cache.subarray(0, 17).toString()).toBe('stella-v8cache 1 ');
      const again = run('--help');
      expect(again.stdout).toBe(first.stdout);
      expect(again.stderr).toBe('');
      expect(readFileSync(join(copy, 'cli.cjs.v8cache'))).toEqual(cache); // accepted, not rewritten

      // The same script with one word changed, same length: V8 alone would take the old bytecode.
      const cli = readFileSync(join(copy, 'cli.cjs'), 'utf8');
      const word = 'Evidence locker and release orchestrator for container supply-chain evidence';
      expect(cli).toContain(word);
      writeFileSync(join(copy, 'cli.cjs'), cli.replace(word, word.toUpperCase()));
      const edited = run('--help');
      expect(edited.status).toBe(0);
      expect(edited.stdout).toContain(word.toUpperCase());
      expect(readFileSync(join(copy, 'cli.cjs.v8cache'))).not.toEqual(cache); // made anew for the new script
      expect(run('--help').stdout).toContain(word.toUpperCase());
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe('bin/stella.mjs', () => {
  // A copy of the bin in a scratch root with a fake build and fake sources.
  const root = join(tmp, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'bin', 'stella.mjs'), join(root, 'bin', 'stella.mjs'));
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(join(root, 'package.json'), '{"type":"module"}\n');
  mkdirSync(join(root, 'src', 'cli'), { recursive: true });
  writeFileSync(join(root, 'src', 'cli', 'main.ts'), "const from: string = 'sources';\nconsole.log(from);\n");
  const build = () => {
    mkdirSync(join(root, 'dist', 'cli', 'b1'), { recursive: true });
    writeFileSync(join(root, 'dist', 'cli', 'b1', 'main.js'), "console.log('build');\n");
    writeFileSync(join(root, 'dist', 'cli.json'), JSON.stringify({ dir: 'cli/b1', builtAt: Date.now(), inputs: ['src/cli/main.ts'] }));
  };
  const run = () => spawnSync(process.execPath, [join(root, 'bin', 'stella.mjs')], { encoding: 'utf8', env: { ...process.env, STELLA_DEBUG: '' } });

  it('runs the build while it is current, the sources once a source is newer, and says so when there is no build', () => {
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(root, 'src', 'cli', 'main.ts'), old, old);
    build();
    expect(run().stdout).toBe('build\n');

    const later = new Date(Date.now() + 60_000);
    utimesSync(join(root, 'src', 'cli', 'main.ts'), later, later);
    const stale = run();
    expect(stale.stdout).toBe('sources\n');
    expect(stale.stderr).toBe('');

    rmSync(join(root, 'dist'), { recursive: true });
    const none = run();
    expect(none.stdout).toBe('sources\n');
    expect(none.stderr).toContain('running from TypeScript sources: no build');
  });
});

describe('prebuilt workflow bundle', () => {
  it('is used only while no workflow or src file is newer than it', () => {
    const root = join(tmp, 'wf');
    mkdirSync(join(root, 'dist'), { recursive: true });
    mkdirSync(join(root, 'workflows'), { recursive: true });
    writeFileSync(join(root, 'workflows', 'index.ts'), 'export {};\n');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(root, 'workflows', 'index.ts'), old, old);
    expect(prebuiltWorkflowBundle(`${root}/`)).toBeUndefined(); // no build
    writeFileSync(join(root, 'dist', 'workflow-bundle.js'), '');
    writeFileSync(join(root, 'dist', 'workflow-bundle.json'), JSON.stringify({ builtAt: Date.now(), inputs: ['workflows/index.ts'] }));
    expect(prebuiltWorkflowBundle(`${root}/`)).toEqual({ codePath: `${root}/dist/workflow-bundle.js` });
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(root, 'workflows', 'index.ts'), later, later);
    expect(prebuiltWorkflowBundle(`${root}/`)).toBeUndefined(); // edited since
  });
});
