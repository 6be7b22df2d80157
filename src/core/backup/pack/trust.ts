/**
 * Which RootPack an offline verifier trusts. Only one the operator chose: `--rootpack <file>`, or
 * the configured trusted RootPack (STELLA_TRUSTED_ROOTPACK, `stella config set
 * Verify:TrustedRootPack <file>`). A RootPack that travels inside an evidence pack or beside a
 * replay manifest is reported (fingerprint, key ids, whether its keys are trusted) but never
 * trusted: whoever can forge the pack can forge that too.
 */
import { promises as fsp } from 'node:fs';
import { resolve } from 'node:path';
import { loadRootPack, type RootPack } from '../../../crypto/rootpack';
import { asStellaError, badInput, StellaError } from '../../../lib/errors';

export const TRUSTED_ROOTPACK_ENV = 'STELLA_TRUSTED_ROOTPACK';
export const TRUSTED_ROOTPACK_KEY = 'Verify:TrustedRootPack';
export type TrustSource = '--rootpack' | typeof TRUSTED_ROOTPACK_ENV;

export const NO_TRUSTED_ROOTPACK =
  `no trusted RootPack: pass --rootpack <file> or configure one (stella config set ${TRUSTED_ROOTPACK_KEY} <file>, or ${TRUSTED_ROOTPACK_ENV}); ` +
  'the RootPack inside a pack is never trusted';

export interface TrustedRootPack {
  source: TrustSource;
  path: string;
  /** The RootPack's digest (sha256 over its canonical content), checked when it was loaded. */
  fingerprint: string;
  keyIds: string[];
  rootpack: RootPack;
}

/** What the verifier reports about a RootPack that came with the thing being verified. */
export interface EmbeddedRootPack {
  fingerprint: string | null;
  keyIds: string[];
  /** Same digest as the trusted RootPack. */
  sameFingerprint: boolean;
  /** Every key it lists is also in the trusted RootPack (kids are key thumbprints, so same kid = same key). */
  keysTrusted: boolean;
  /** Its key ids the trusted RootPack does not know. */
  untrustedKeyIds: string[];
  problem?: string;
}

/** The trusted RootPack: the flag wins over the configured file; neither is BAD_INPUT. */
export async function loadTrustedRootPack(choice: { flag?: string; configured?: string }): Promise<TrustedRootPack> {
  const source: TrustSource | null = choice.flag ? '--rootpack' : choice.configured ? TRUSTED_ROOTPACK_ENV : null;
  const given = choice.flag || choice.configured;
  if (!source || !given) throw badInput(NO_TRUSTED_ROOTPACK);
  const path = resolve(given);
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(path);
  } catch (e) {
    throw badInput(`trusted RootPack ${path} (from ${source}): ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let rootpack: RootPack;
  try {
    rootpack = await loadRootPack(bytes);
  } catch (e) {
    const s = asStellaError(e);
    throw new StellaError(s?.code ?? 'BAD_INPUT', `trusted RootPack ${path} (from ${source}) is unusable: ${(e as Error).message}`, undefined, { cause: e });
  }
  return { source, path, fingerprint: rootpack.digest, keyIds: rootpack.keys.map((k) => k.kid), rootpack };
}

/** Compares a RootPack that came with the material against the trusted one; trusts nothing. */
export async function describeEmbedded(bytes: Uint8Array | null, trusted: TrustedRootPack): Promise<EmbeddedRootPack> {
  if (!bytes) return { fingerprint: null, keyIds: [], sameFingerprint: false, keysTrusted: false, untrustedKeyIds: [], problem: 'none present' };
  let rp: RootPack;
  try {
    rp = await loadRootPack(bytes);
  } catch (e) {
    return { fingerprint: null, keyIds: [], sameFingerprint: false, keysTrusted: false, untrustedKeyIds: [], problem: `unusable: ${(e as Error).message}` };
  }
  const known = new Set(trusted.keyIds);
  const untrustedKeyIds = rp.keys.map((k) => k.kid).filter((k) => !known.has(k));
  return {
    fingerprint: rp.digest,
    keyIds: rp.keys.map((k) => k.kid),
    sameFingerprint: rp.digest === trusted.fingerprint,
    keysTrusted: untrustedKeyIds.length === 0,
    untrustedKeyIds,
  };
}
