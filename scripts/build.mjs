#!/usr/bin/env node
// Builds the CLI (and `serve`) to JavaScript and prebuilds the Temporal workflow bundle, so no
// command transpiles TypeScript at start. Run by `npm ci`/`npm install` (prepare) and `npm run build`.
//
//   node scripts/build.mjs            # CLI + workflow bundle
//   node scripts/build.mjs --cli      # CLI only (what the test setup runs: tests bundle workflows themselves)
//
// Layout: dist/cli/<content hash>/ holds cli.cjs (the whole CLI as one CommonJS script; command
// groups and everything they import are evaluated only when the command is run), main.js (the
// loader: runs cli.cjs through V8's code cache, see LOADER) and a package.json marking both as
// CommonJS; dist/cli.json names the current build and the source files it was built from.
// bin/stella.mjs uses the build only while none of those files is newer than the build (otherwise
// it runs the sources), so a stale build never runs old code. Builds are written to a temporary
// directory and renamed into place, so concurrent builds and running CLIs never see a half-written build.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const CLI_ENTRY = join(ROOT, 'src', 'cli', 'main.ts');
const WORKFLOWS_ENTRY = join(ROOT, 'workflows', 'index.ts');
/**
 * Pure-JS packages bundled into the build: Node loads one file instead of hundreds (zod alone is
 * ~235 ESM files). Everything that imports zod is in this list, so there is one zod instance.
 * Other packages stay external (CommonJS, native addons, wasm, optional requires): required where
 * the module that imports them is evaluated, so a command that does not need them never loads them.
 */
const BUNDLED = new Set(['zod', 'jose', 'fastify-type-provider-zod', 'commander']);
/** Old builds are kept this long: a CLI started from one may still be loading its chunks. */
const KEEP_OLD_MS = 60 * 60 * 1000;

function writeAtomic(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/**
 * Rewrites `import.meta.url` in each source file to that file's own URL, computed relative to the
 * built file: the sources find package.json, migrations/ and schemas/ by path from themselves, and
 * must keep doing so once bundled into dist/cli/<hash>/.
 */
/** Marks every bare import external except the BUNDLED packages. */
const externalsPlugin = {
  name: 'externals',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:')) return { path: args.path, external: true };
      const pkg = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
      return BUNDLED.has(pkg) ? undefined : { path: args.path, external: true };
    });
  },
};

/**
 * `import('pkg')` of an external package as a lazily evaluated `require('pkg')` (every external
 * is CommonJS or has a require entry): a dynamic import() in a script run through node:vm needs an
 * experimental Node API that warns on stderr. Evaluated at the import(), as before.
 */
const lazyExternalsPlugin = {
  name: 'lazy-externals',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const pkg = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
      return BUNDLED.has(pkg) ? undefined : { path: args.path, namespace: 'lazy-external' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-external' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/**
 * zod's classic API re-exports every locale (`z.locales`, ~50 languages, a third of its code) as a
 * namespace, which bundling cannot tree-shake; stella uses only the default English messages,
 * which zod imports directly. The namespace is bundled as English alone: less to parse at each start.
 */
const zodLocalesPlugin = {
  name: 'zod-locales',
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: 'zod-locales-en', namespace: 'zod-locales' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, () => ({
      contents: `export { default as en } from ${JSON.stringify(join(ROOT, 'node_modules', 'zod', 'v4', 'locales', 'en.js'))};`,
      resolveDir: ROOT,
      loader: 'js',
    }));
  },
};

function sourceUrlPlugin(outdirDepthToRoot) {
  return {
    name: 'source-url',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const { readFile } = await import('node:fs/promises');
        let contents = await readFile(args.path, 'utf8');
        if (!args.path.includes(`${ROOT}/node_modules/`) && contents.includes('import.meta.url')) {
          const rel = `${outdirDepthToRoot}${relative(ROOT, args.path).split('\\').join('/')}`;
          contents = contents.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
        }
        return { contents, loader: 'ts' };
      });
    },
  };
}

/**
 * dist/cli/<id>/main.js: runs cli.cjs with V8's code cache, so a start does not parse and compile
 * the CLI again (Node 20 has no module.enableCompileCache). The cache holds the bytecode of what
 * the first run compiled; it is written once, next to the build (not at all when that directory is
 * read-only), atomically. A stale cache never runs old code: it is used only when its header names
 * the SHA-1 of the very source being run (V8 itself checks only the source's length), and V8
 * rejects it for another V8 version or other flags, after which it is written anew.
 */
const LOADER = `'use strict';
// The stella CLI loader, written by scripts/build.mjs: see LOADER there.
const { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const { createRequire } = require('node:module');
const { Script, constants } = require('node:vm');

const file = __dirname + '/cli.cjs';
const cacheFile = __dirname + '/cli.cjs.v8cache';
const code = readFileSync(file);
const header = Buffer.from('stella-v8cache 1 ' + createHash('sha1').update(code).digest('hex') + '\\n');
let cachedData;
try {
  const c = readFileSync(cacheFile);
  if (c.length > header.length && c.subarray(0, header.length).equals(header)) cachedData = c.subarray(header.length);
} catch {}
const script = new Script('(function (exports, require, module, __filename, __dirname) {' + code.toString('utf8') + '\\n})', {
  filename: file,
  cachedData,
  importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
if (!cachedData || script.cachedDataRejected) {
  // At exit: by then the cache also holds the functions this run compiled lazily.
  process.once('exit', () => {
    const tmp = cacheFile + '.' + process.pid + '.tmp';
    try {
      const fd = openSync(tmp, 'wx', 0o644);
      try {
        writeSync(fd, header);
        writeSync(fd, script.createCachedData());
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, cacheFile);
    } catch {
      try { unlinkSync(tmp); } catch {}
    }
  });
}
const mod = { exports: {} };
script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, __dirname);
`;

export async function buildCli() {
  const esbuild = await import('esbuild');
  const started = Date.now();
  const result = await esbuild.build({
    entryPoints: { cli: CLI_ENTRY },
    bundle: true,
    // One CommonJS script rather than ES module chunks: Node resolves and links each ES module
    // file (a third of the start-up went there), and only a classic script can use V8's code cache.
    // Lazily imported modules stay lazy: esbuild evaluates them at their import().
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    outdir: join(DIST, 'cli', 'next'),
    outExtension: { '.js': '.cjs' },
    define: { 'import.meta.url': '__stellaModuleUrl' },
    banner: { js: "var __stellaModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
    write: false,
    metafile: true,
    sourcemap: 'linked',
    logLevel: 'warning',
    plugins: [lazyExternalsPlugin, externalsPlugin, zodLocalesPlugin, sourceUrlPlugin('../../../')],
  });
  for (const [out, o] of Object.entries(result.metafile.outputs)) {
    const dynamic = o.imports.filter((i) => i.kind === 'dynamic-import');
    if (dynamic.length) throw new Error(`${out}: import() left in the build: ${dynamic.map((i) => i.path).join(', ')}`);
  }
  const files = [
    ...result.outputFiles.map((f) => ({ name: f.path.slice(f.path.lastIndexOf('/') + 1), contents: f.contents })),
    { name: 'main.js', contents: Buffer.from(LOADER) },
    { name: 'package.json', contents: Buffer.from('{ "type": "commonjs" }\n') },
  ].sort((a, b) => a.name.localeCompare(b.name));
  const hash = createHash('sha256');
  for (const f of files) hash.update(`/${f.name}`).update(f.contents);
  const id = hash.digest('hex').slice(0, 16);
  const finalDir = join(DIST, 'cli', id);
  if (!existsSync(finalDir)) {
    const tmpDir = join(DIST, 'cli', `.tmp-${process.pid}-${id}`);
    mkdirSync(tmpDir, { recursive: true });
    for (const f of files) writeFileSync(join(tmpDir, f.name), f.contents);
    try {
      renameSync(tmpDir, finalDir);
    } catch {
      rmSync(tmpDir, { recursive: true, force: true }); // a concurrent build of the same sources won
    }
  }
  // Source files only: not packages, nor the plugins' virtual modules (`namespace:path`), which no
  // stat can find (bin/stella.mjs would take the build for stale and always run the sources).
  const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.includes('node_modules/') && !/^[a-z-]+:/.test(p));
  // builtAt is taken before esbuild read the sources: a file saved during the build counts as newer.
  writeAtomic(join(DIST, 'cli.json'), `${JSON.stringify({ dir: `cli/${id}`, builtAt: started, inputs }, null, 1)}\n`);
  pruneOldBuilds(id);
  return { dir: finalDir, inputs: inputs.length, ms: Date.now() - started };
}

function pruneOldBuilds(keep) {
  const base = join(DIST, 'cli');
  for (const name of readdirSync(base)) {
    if (name === keep) continue;
    const p = join(base, name);
    try {
      if (Date.now() - statSync(p).mtimeMs > KEEP_OLD_MS) rmSync(p, { recursive: true, force: true });
    } catch {
      // removed by a concurrent build
    }
  }
}

/** Every file under these directories: the workflow bundle is stale once any of them is newer. */
function sourceFiles(dirs) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) out.push(relative(ROOT, p));
    }
  };
  for (const d of dirs) walk(join(ROOT, d));
  return out;
}

/** The workflow bundle `serve` loads with `workflowBundle: { codePath }` (Temporal's production setup). */
export async function buildWorkflowBundle() {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const started = Date.now();
  const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error };
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_ENTRY, logger: quiet });
  mkdirSync(DIST, { recursive: true });
  writeAtomic(join(DIST, 'workflow-bundle.js'), code);
  writeAtomic(join(DIST, 'workflow-bundle.json'), `${JSON.stringify({ builtAt: started, inputs: sourceFiles(['workflows', 'src']) }, null, 1)}\n`);
  return { ms: Date.now() - started, bytes: code.length };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (!existsSync(CLI_ENTRY)) {
    // `npm ci` in a Docker layer that has package.json but not yet the sources.
    console.error('stella build: no sources (src/cli/main.ts); skipped');
    process.exit(0);
  }
  const cli = await buildCli();
  console.error(`stella build: CLI ${relative(ROOT, cli.dir)} (${cli.inputs} sources) in ${cli.ms} ms`);
  if (!process.argv.includes('--cli')) {
    const wf = await buildWorkflowBundle();
    console.error(`stella build: workflow bundle dist/workflow-bundle.js (${(wf.bytes / 1024).toFixed(0)} KiB) in ${wf.ms} ms`);
  }
}
