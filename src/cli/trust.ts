import type { Ctx } from './common';
import { API_CODE_TO_EXIT, CliError, EXIT } from './exit';
import { asStellaError } from '../lib/errors';
import { loadTrustedRootPack, type EmbeddedRootPack, type TrustedRootPack } from '../core/backup/pack/trust';

/**
 * The RootPack offline verification trusts: `--rootpack <file>`, else the configured one
 * (STELLA_TRUSTED_ROOTPACK / Verify:TrustedRootPack). Neither: exit 2 with one line; never the
 * RootPack that came inside the pack or kit.
 */
export async function trustedRootPack(c: Ctx, flag?: string): Promise<TrustedRootPack> {
  try {
    return await loadTrustedRootPack({ flag, configured: flag ? undefined : c.config().trustedRootPack });
  } catch (e) {
    const s = asStellaError(e);
    if (s) throw new CliError(s.message, API_CODE_TO_EXIT[s.code] ?? EXIT.FAILURE);
    throw e;
  }
}

/** For people: which RootPack was trusted and how the one that came with the material compares. */
export function trustLines(trusted: TrustedRootPack | TrustedSummary, embedded: EmbeddedRootPack | null): string[] {
  const lines = [`  trusted RootPack ${trusted.fingerprint} (${trusted.source} ${trusted.path}; ${trusted.keyIds.length} key(s))`];
  if (embedded)
    lines.push(
      embedded.fingerprint === null
        ? `  embedded RootPack: ${embedded.problem} (not used)`
        : `  embedded RootPack ${embedded.fingerprint} (not used): ${
            embedded.sameFingerprint
              ? 'identical to the trusted one'
              : embedded.keysTrusted
                ? 'a different RootPack, all of its keys trusted'
                : `keys NOT in the trusted RootPack: ${embedded.untrustedKeyIds.join(', ')}`
          }`,
    );
  return lines;
}

type TrustedSummary = Pick<TrustedRootPack, 'source' | 'path' | 'fingerprint' | 'keyIds'>;

/** The JSON form: no key material, just which RootPack and where it came from. */
export const trustSummary = (t: TrustedRootPack): TrustedSummary => ({ source: t.source, path: t.path, fingerprint: t.fingerprint, keyIds: t.keyIds });
