import type { JWK } from 'jose';
import type { AnchorKeyResolver } from '../../merkle';
import { exportRootPack, trustAt, type RootPack } from '../../crypto/rootpack';
import type { KeyStore } from '../../crypto/keys';
import { SIGNING_PURPOSE } from '../keys';

/**
 * Which keys anchors verify against: every signing key in the key store, active or retired
 * (a retired key still covers anchors signed inside its window), optionally widened by a
 * RootPack (keys from before a key-store migration). The window is checked per anchor.
 */
export interface AnchorTrust {
  resolver: AnchorKeyResolver;
  /** Was kid trusted for signing at `at`? */
  windowProblem(kid: string, at: Date): string | undefined;
}

export async function anchorTrust(keys: KeyStore, extra?: RootPack): Promise<AnchorTrust> {
  const packs: RootPack[] = [await exportRootPack(keys)];
  if (extra) packs.push(extra);
  const byKid = new Map<string, JWK>();
  for (const p of packs) {
    for (const k of p.keys) if (k.purposes.includes(SIGNING_PURPOSE) && k.status !== 'revoked' && !byKid.has(k.kid)) byKid.set(k.kid, k.publicJwk);
  }
  return {
    resolver: (kid) => byKid.get(kid),
    windowProblem(kid, at) {
      let last = 'unknown key';
      for (const p of packs) {
        const d = trustAt(p, kid, at, SIGNING_PURPOSE);
        if (d.trusted) return undefined;
        if (d.key) last = d.reason;
      }
      return `key ${kid} was not trusted at ${at.toISOString()}: ${last}`;
    },
  };
}
