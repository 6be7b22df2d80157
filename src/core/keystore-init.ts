/**
 * `stella keys init <dir>`: a key store with every key a server signs with, made ahead of time
 * (for a Kubernetes Secret: pods copy it into a private directory and must not each make their
 * own). Keys already there are kept.
 */
import type { KeyRecord } from '../crypto/keys';
import { CHECKPOINT_PURPOSE } from './anchoring/checkpoint';
import { openKeyStore } from './keys';

export async function initKeyStore(dir: string): Promise<{ keys: KeyRecord[]; created: string[] }> {
  const before = new Set(await listKids(dir));
  // Signing and API-token keys (what serve makes at start), then the checkpoint key (what the first anchor makes).
  const ks = await openKeyStore(dir);
  if (!(await ks.list()).some((k) => k.purpose === CHECKPOINT_PURPOSE && k.status === 'active')) {
    await ks.generate({ alg: 'EdDSA', purpose: CHECKPOINT_PURPOSE });
  }
  const keys = await ks.list();
  return { keys, created: keys.filter((k) => !before.has(k.kid)).map((k) => k.kid) };
}

async function listKids(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const files = await readdir(`${dir}/keys`).catch(() => [] as string[]);
  return files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
}
