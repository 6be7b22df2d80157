#!/usr/bin/env node
// Entry point for `npx stella`: runs the built CLI (dist/, see scripts/build.mjs), or the
// TypeScript sources through tsx when there is no build or a source file changed since it.
import { readFileSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const rootPath = decodeURIComponent(root.pathname);

/** The built entry, or why it can't be used (null when it is current). */
function builtEntry() {
  let info;
  try {
    info = JSON.parse(readFileSync(new URL('dist/cli.json', root), 'utf8'));
  } catch {
    return { stale: 'no build (run `npm run build`)' };
  }
  // A stale build would silently run old code: every source it was built from must be older.
  for (const f of info.inputs) {
    const st = statSync(rootPath + f, { throwIfNoEntry: false });
    if (!st) return { stale: `${f} was removed since the build` };
    if (st.mtimeMs > info.builtAt) return { stale: `${f} changed since the build` };
  }
  return { url: new URL(`dist/${info.dir}/main.js`, root) };
}

const entry = process.env.STELLA_FROM_SOURCE ? { stale: 'STELLA_FROM_SOURCE is set' } : builtEntry();
if (entry.url) {
  await import(entry.url.href);
} else {
  // Only a missing build is worth a notice; a stale one is the normal state while editing sources.
  if (entry.stale.startsWith('no build') || process.env.STELLA_DEBUG) process.stderr.write(`stella: running from TypeScript sources: ${entry.stale}\n`);
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
