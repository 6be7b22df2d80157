/** Finds the workflow bundle prebuilt by scripts/build.mjs, so `serve` starts without bundling workflow code. */
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * `{ codePath }` of dist/workflow-bundle.js when it was built after every workflow and src file
 * it may include was last changed; undefined otherwise (no build, or sources edited since), and
 * the worker bundles from source as before. A stale bundle would run old workflow code.
 */
export function prebuiltWorkflowBundle(root = ROOT): { codePath: string } | undefined {
  let info: { builtAt: number; inputs: string[] };
  try {
    info = JSON.parse(readFileSync(`${root}dist/workflow-bundle.json`, 'utf8')) as typeof info;
  } catch {
    return undefined;
  }
  for (const f of info.inputs) {
    const st = statSync(`${root}${f}`, { throwIfNoEntry: false });
    if (!st || st.mtimeMs > info.builtAt) return undefined;
  }
  const codePath = `${root}dist/workflow-bundle.js`;
  return statSync(codePath, { throwIfNoEntry: false }) ? { codePath } : undefined;
}
