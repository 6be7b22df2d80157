/** Hashes of the tools a replayed verdict depends on (the scanner's own source). */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { walkFiles } from '../../lib/walk';
import { SCANNER_NAME, SCANNER_VERSION } from '../../scanner/version';

const SCANNER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scanner');

export interface ScannerIdentity {
  name: string;
  version: string;
  toolHashes: Record<string, string>;
}

let cached: Promise<Record<string, string>> | undefined;

/** The scanner's .ts sources, ordered by full path (the order recorded hashes were computed in). */
async function scannerSources(): Promise<string[]> {
  const files: string[] = [];
  for await (const f of walkFiles(SCANNER_DIR)) if (f.path.endsWith('.ts')) files.push(f.path);
  return files.sort();
}

async function computeToolHashes(): Promise<Record<string, string>> {
  const h = createHash('sha256');
  for (const f of await scannerSources()) {
    h.update(relative(SCANNER_DIR, f))
      .update('\0')
      .update(await readFile(f))
      .update('\0');
  }
  return { [SCANNER_NAME]: `sha256:${h.digest('hex')}` };
}

/**
 * Hashes of the tools a verdict depends on: the scanner's own source (detection, matching,
 * version comparison). A replay with different hashes is "tool drift", even at the same
 * declared version. Computed once per process.
 */
export function toolHashes(): Promise<Record<string, string>> {
  cached ??= computeToolHashes().catch((e: unknown) => {
    cached = undefined;
    throw e;
  });
  return cached;
}

export async function scannerIdentity(): Promise<ScannerIdentity> {
  return { name: SCANNER_NAME, version: SCANNER_VERSION, toolHashes: await toolHashes() };
}
