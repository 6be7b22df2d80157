import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import semver from 'semver';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

// The Dockerfile, checked without Docker: a pinned Node.js LTS base, a build stage that compiles
// (npm run build) and prunes to production dependencies, a non-root runtime with a HEALTHCHECK,
// and runtime dependencies that hold no test-only package and cover every import the image runs.
const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));

type Instr = { op: string; args: string };
/** Dockerfile instructions: comments dropped, `\` continuations joined. */
function instructions(text: string): Instr[] {
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const m = /^([A-Za-z]+)\s+(.*)$/.exec(l)!;
      return { op: m[1]!.toUpperCase(), args: m[2]!.trim() };
    });
}
const all = instructions(readFileSync(`${root}Dockerfile`, 'utf8'));
const stages: Instr[][] = [];
for (const i of all) {
  if (i.op === 'FROM') stages.push([]);
  stages.at(-1)?.push(i);
}
const build = stages[0]!;
const runtime = stages.at(-1)!;
const runs = (s: Instr[]) => s.filter((i) => i.op === 'RUN').map((i) => i.args);

describe('Dockerfile', () => {
  it('builds on a pinned Node.js 22 LTS image that package.json engines admit, in two stages', () => {
    expect(stages.length).toBe(2);
    const froms = all.filter((i) => i.op === 'FROM').map((i) => i.args);
    expect(froms[0]).toMatch(/ AS build$/);
    for (const f of froms) {
      const m = /^node:(\d+\.\d+\.\d+)-bookworm-slim( AS build)?$/.exec(f);
      expect(m, `${f}: pin an exact node:<x.y.z>-bookworm-slim`).not.toBeNull();
      expect(semver.major(m![1]!)).toBe(22);
      expect(semver.satisfies(m![1]!, pkg.engines.node), `engines ${pkg.engines.node}`).toBe(true);
    }
    expect(froms[1]).toBe(froms[0]!.replace(/ AS build$/, ''));
  });

  it('compiles in the build stage and keeps only production dependencies', () => {
    expect(pkg.scripts.build).toBeTruthy();
    const r = runs(build).join(' && ');
    expect(r).toMatch(/npm ci\b/);
    expect(r.indexOf('npm run build')).toBeGreaterThan(r.indexOf('npm ci'));
    expect(r.indexOf('npm prune --omit=dev')).toBeGreaterThan(r.indexOf('npm run build'));
    // The runtime installs nothing itself: node_modules and dist/ come from the build stage.
    expect(runs(runtime).join(' ')).not.toMatch(/npm (ci|install)/);
    const copies = runtime.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies).toContain('--from=build /app/node_modules ./node_modules');
    expect(copies).toContain('--from=build /app/dist ./dist');
  });

  it('copies into the build only paths that exist, and .dockerignore keeps none of them out', () => {
    const ignored = readFileSync(`${root}.dockerignore`, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const must of ['.git', '**/node_modules', 'dist', 'test', '.env']) expect(ignored).toContain(must);
    for (const c of build.filter((i) => i.op === 'COPY')) {
      const srcs = c.args.split(/\s+/).slice(0, -1);
      for (const s of srcs) {
        expect(existsSync(join(root, s)), s).toBe(true);
        expect(ignored, `${s} is copied but ignored`).not.toContain(s);
      }
    }
  });

  it('runs as the non-root user the Helm chart expects, with a HEALTHCHECK on /healthz', () => {
    const user = runtime.filter((i) => i.op === 'USER').at(-1)!.args;
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    const values = parse(readFileSync(`${root}deploy/helm/stella/values.yaml`, 'utf8'));
    expect(user).toBe(`${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsGroup}`);
    const hc = runtime.find((i) => i.op === 'HEALTHCHECK')!;
    expect(hc, 'HEALTHCHECK').toBeDefined();
    expect(hc.args).toContain('/healthz');
    expect(hc.args).toMatch(/STELLA_API_PORT/);
    expect(runtime.find((i) => i.op === 'ENTRYPOINT')!.args).toBe('["node", "bin/stella.mjs"]');
    expect(runtime.find((i) => i.op === 'ENV')!.args).toContain(['STELLA_BUILD_COMMIT=$', '{STELLA_BUILD_COMMIT}'].join(''));
  });

  it('ships no test-only package, and every package the image imports at run time is a dependency', () => {
    const deps = new Set(Object.keys(pkg.dependencies));
    for (const t of ['@temporalio/testing', 'vitest', 'fast-check', '@biomejs/biome', 'typescript', 'tar-stream', 'yazl', 'oidc-provider']) {
      expect(deps.has(t), `${t} must be a devDependency`).toBe(false);
    }
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(dir, e.name)) : /\.(ts|mjs|js)$/.test(e.name) ? [join(dir, e.name)] : [],
      );
    const builtins = new Set(builtinModules);
    let checked = 0;
    for (const dir of ['src', 'activities', 'workflows', 'workers', 'bin']) {
      for (const f of walk(join(root, dir))) {
        const text = readFileSync(f, 'utf8');
        const specs = [
          ...[...text.matchAll(/^import\s+(?!type\s)[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]!),
          ...[...text.matchAll(/^import\s+'([^']+)'/gm)].map((m) => m[1]!),
          ...[...text.matchAll(/import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!),
        ];
        for (const s of specs) {
          if (s.startsWith('.') || s.startsWith('node:') || builtins.has(s)) continue;
          const name = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!;
          checked++;
          expect(deps.has(name), `${f.slice(root.length)} imports ${name}, which npm prune --omit=dev removes`).toBe(true);
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
  });
});
