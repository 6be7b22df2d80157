import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCANNER_NAME, SCANNER_VERSION } from '../../scanner/version';

const SCANNER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scanner');

function walk(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? walk(p) : [p];
    })
    .filter((p) => p.endsWith('.ts'))
    .sort();
}

let cached: Record<string, string> | undefined;

/**
 * Hashes of the tools a verdict depends on: the scanner's own source (detection, matching,
 * version comparison). A replay with different hashes is "tool drift", even at the same
 * declared version.
 */
export function toolHashes(): Record<string, string> {
  if (cached) return cached;
  const h = createHash('sha256');
  for (const f of walk(SCANNER_DIR)) {
    h.update(relative(SCANNER_DIR, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  cached = { [SCANNER_NAME]: `sha256:${h.digest('hex')}` };
  return cached;
}

export function scannerIdentity() {
  return { name: SCANNER_NAME, version: SCANNER_VERSION, toolHashes: toolHashes() };
}
