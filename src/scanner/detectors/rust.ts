/**
 * Rust binaries built with cargo-auditable: the `.dep-v0` section holds zlib-compressed JSON
 * listing every crate compiled in (https://github.com/rust-secure-code/cargo-auditable).
 */
import { inflateSync } from 'node:zlib';
import { buildPurl } from '../purl';
import type { Package } from './types';

export interface AuditableCrate {
  name: string;
  version: string;
  source?: string;
  kind?: string;
  root?: boolean;
}

export function parseDepV0(section: Buffer): AuditableCrate[] | undefined {
  try {
    const json = JSON.parse(inflateSync(section, { maxOutputLength: 16 << 20 }).toString('utf8')) as { packages?: unknown };
    if (!Array.isArray(json.packages)) return undefined;
    return json.packages
      .filter((p): p is AuditableCrate => typeof p?.name === 'string' && typeof p?.version === 'string')
      .map((p) => ({
        name: p.name,
        version: p.version,
        ...(typeof p.source === 'string' ? { source: p.source } : {}),
        ...(typeof p.kind === 'string' ? { kind: p.kind } : {}),
        ...(p.root === true ? { root: true } : {}),
      }));
  } catch {
    return undefined;
  }
}

/** Runtime crates only: build-time dependencies (build scripts, proc macros) are not in the binary. */
export function rustPackages(crates: AuditableCrate[], location: string): Package[] {
  return crates
    .filter((c) => c.kind !== 'build')
    .map((c) => ({
      ecosystem: 'cargo' as const,
      name: c.name,
      version: c.version,
      purl: buildPurl({ type: 'cargo', name: c.name, version: c.version }),
      locations: [location],
      cpes: [`cpe:2.3:a:${c.name}:${c.name}:${c.version}:*:*:*:*:rust:*:*`],
    }));
}
