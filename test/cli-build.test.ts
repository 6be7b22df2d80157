import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMAND_MODULES, commandNameOf } from '../src/cli/commands';
import { prebuiltWorkflowBundle } from '../workers/workflow-bundle';

const ROOT = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'stella-cli-build-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('lazy command loading', () => {
  it('each command module declares exactly the top-level commands it registers', async () => {
    for (const m of COMMAND_MODULES) {
      const program = new Command('stella');
      (await m.load())(program);
      expect(program.commands.map((c) => c.name()).sort(), String(m.load)).toEqual([...m.commands].sort());
    }
  });

  it('finds the command name past root options', () => {
    expect(commandNameOf(['--format', 'json', '--api-url', 'http://x', 'evidence', 'status'])).toBe('evidence');
    expect(commandNameOf(['--format=json', '-q', 'scan', 'image'])).toBe('scan');
    expect(commandNameOf(['--help'])).toBeUndefined();
  });

  it('`evidence status` (built) loads neither the AWS SDK nor the Temporal worker', () => {
    // The build global-setup made from this run's sources (bin/stella.mjs would run the sources
    // instead if another edit landed since; this checks the built code itself).
    const info = JSON.parse(readFileSync(join(ROOT, 'dist', 'cli.json'), 'utf8')) as { dir: string };
    const hooks = join(tmp, 'hooks.mjs');
    writeFileSync(
      hooks,
      `export async function resolve(s, c, next) { const r = await next(s, c); const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(r.url); if (m) process.stderr.write('LOADED ' + m[1] + '\\n'); return r; }\n`,
    );
    const reg = join(tmp, 'reg.mjs');
    writeFileSync(reg, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', reg, join(ROOT, 'dist', info.dir, 'main.js'), ...args], {
        env: { ...process.env, STELLA_API_URL: 'http://127.0.0.1:9', STELLA_TOKEN: 'x', STELLA_DATA_DIR: tmp },
        encoding: 'utf8',
      });
    const r = run('evidence', 'status');
    expect(r.stderr).toContain('cannot reach the stella API'); // it did run the command
    const loaded = new Set([...r.stderr.matchAll(/^LOADED (\S+)$/gm)].map((m) => m[1]));
    expect(loaded.has('commander')).toBe(true);
    for (const heavy of ['@aws-sdk/client-s3', '@temporalio/worker', '@temporalio/client', 'fastify', 'pg', 'tsx'])
      expect(loaded.has(heavy), heavy).toBe(false);
    // Help loads every module, so it still lists every command.
    const help = run('--help');
    expect(help.stdout).toMatch(/evidence[\s\S]*promotion[\s\S]*scan[\s\S]*completion/);
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
