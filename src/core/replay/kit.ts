import { promises as fsp, existsSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import type { Envelope } from '../../crypto/dsse';
import type { RootPack } from '../../crypto/rootpack';
import { canonicalJson } from '../../lib/canonical';
import { badInput } from '../../lib/errors';
import { INPUT_BUNDLE, OUTPUT_BUNDLE } from './bundles';
import { manifestBytes, type ReplayManifest } from './manifest';

/**
 * The offline-kit layout for one scan (runbook §4):
 *   offline/replay/<scan-id>/manifest.json, manifest.dsse.json, inputbundle.tar.zst,
 *   outputbundle.tar.zst, rootpack.json
 */
export const ENVELOPE_FILE = 'manifest.dsse.json';
export const ROOTPACK_FILE = 'rootpack.json';

export function kitDir(root: string, scanId: string): string {
  return join(root, 'offline', 'replay', scanId);
}

export async function writeKit(
  dir: string,
  k: { manifest: ReplayManifest; envelope: Envelope; input: Uint8Array; output: Uint8Array; rootpack: RootPack },
): Promise<string[]> {
  await fsp.mkdir(dir, { recursive: true });
  const files: [string, Uint8Array | string][] = [
    ['manifest.json', manifestBytes(k.manifest)],
    [ENVELOPE_FILE, JSON.stringify(k.envelope, null, 2) + '\n'],
    [INPUT_BUNDLE, k.input],
    [OUTPUT_BUNDLE, k.output],
    [ROOTPACK_FILE, canonicalJson(k.rootpack) + '\n'],
  ];
  for (const [name, data] of files) {
    const p = join(dir, name);
    await fsp.writeFile(`${p}.part`, data);
    await fsp.rename(`${p}.part`, p);
  }
  return files.map(([n]) => join(dir, n));
}

export interface LoadedKit {
  dir: string;
  manifest: unknown;
  envelope: Envelope | null;
  input: Buffer | null;
  output: Buffer | null;
  /** The kit's own rootpack.json bytes: for reporting only, never trusted (see core/backup/pack/trust.ts). */
  embeddedRootPack: Buffer | null;
}

/** Reads a kit from its manifest path; only the files beside it (no network, no database). */
export async function readKit(manifestPath: string): Promise<LoadedKit> {
  const path = resolve(manifestPath);
  if (!existsSync(path)) throw badInput(`${manifestPath}: no such file`);
  const dir = dirname(path);
  let manifest: unknown;
  try {
    manifest = JSON.parse(await fsp.readFile(path, 'utf8'));
  } catch {
    throw badInput(`${manifestPath} is not valid JSON`);
  }
  const opt = async (name: string) => (existsSync(join(dir, name)) ? fsp.readFile(join(dir, name)) : null);
  const envBytes = await opt(ENVELOPE_FILE);
  return {
    dir,
    manifest,
    envelope: envBytes ? (JSON.parse(envBytes.toString('utf8')) as Envelope) : null,
    input: await opt(INPUT_BUNDLE),
    output: await opt(OUTPUT_BUNDLE),
    embeddedRootPack: await opt(ROOTPACK_FILE),
  };
}
