import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runStella } from './support/cli';

/** Completes `words` (the last one is the word under the cursor) with the sourced bash script. */
function complete(script: string, ...words: string[]): string[] {
  const program = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); _stella_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const out = execFileSync('bash', ['-c', program, 'complete', script, ...words], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

describe('stella completion', () => {
  let bashScript: string;

  beforeAll(async () => {
    const r = await runStella({}, 'completion', 'bash');
    expect(r.code).toBe(0);
    bashScript = join(mkdtempSync(join(tmpdir(), 'stella-completion-')), 'stella.bash');
    writeFileSync(bashScript, r.stdout);
  });

  it('prints a bash script that parses and completes subcommands from the command tree', () => {
    const syntax = spawnSync('bash', ['-n', bashScript], { encoding: 'utf8' });
    expect(syntax.stderr).toBe('');
    expect(syntax.status).toBe(0);

    expect(complete(bashScript, 'stella', 'evidence', 'ver').sort()).toEqual(['verify', 'verify-report']);
    expect(complete(bashScript, 'stella', 'prom')).toEqual(['promotion']);
    // Nested groups, with global options and their values before the group.
    expect(complete(bashScript, 'stella', '--format', 'json', 'evidence', 'anchor', 'new')).toEqual(['new-chain']);
    // Options of the command under the cursor, its own and the program's.
    const opts = complete(bashScript, 'stella', 'promotion', 'evidence', '--');
    expect(opts).toContain('--missing');
    expect(opts).toContain('--api-url');
    expect(opts).not.toContain('--explain');
    // The value of an option is not taken for a subcommand.
    expect(complete(bashScript, 'stella', 'evidence', 'put', '--kind', 'sbom', '--art')).toEqual(['--artifact']);
    // The completion command completes itself.
    expect(complete(bashScript, 'stella', 'compl')).toEqual(['completion']);
  });

  it('prints zsh and fish scripts naming the top-level commands', async () => {
    for (const shell of ['zsh', 'fish']) {
      const r = await runStella({}, 'completion', shell);
      expect(r.code).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(0);
      for (const top of ['evidence', 'promotion', 'replay', 'backup', 'completion']) expect(r.stdout).toContain(top);
    }
    const zsh = await runStella({}, 'completion', 'zsh');
    expect(zsh.stdout.startsWith('#compdef stella')).toBe(true);
    const fish = await runStella({}, 'completion', 'fish');
    expect(fish.stdout).toMatch(/complete -c stella -n '__stella_at \\'stella evidence\\'' -f -a verify-report/);
  });

  it('refuses an unknown shell with exit 2 and a one-line reason', async () => {
    const r = await runStella({}, 'completion', 'powershell');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe("stella: unknown shell 'powershell': use one of bash, zsh, fish");
  });
});
