import type { FastifyInstance } from 'fastify';
import { apiFor } from './api';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TOKEN_PURPOSE } from '../../src/core/keys';
import { mintToken } from '../../src/crypto/tokens';
import { parseDpkgStatus, parseOsRelease } from '../../src/scanner/detectors/index';
import { REPO_ROOT } from './oci-fixture';
import type { Harness } from './context';

// Unique per test process: workflow ids (scan-<tenant>-<digest>) are namespace-wide, and
// fixtures built from the same content have the same digest in every test file.
export const TENANT = `scan${randomBytes(4).toString('hex')}`;

export function api(h: Harness) {
  return apiFor(h);
}

/** app.inject with a bearer header, JSON body parsed: what the scan tests call the API with. */
export function caller(app: FastifyInstance, auth: () => Record<string, string>) {
  return async (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown, headers: Record<string, string> = {}) => {
    const r = await app.inject({ method, url, headers: { ...auth(), ...headers }, ...(payload !== undefined ? { payload: payload as never } : {}) });
    return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : null };
  };
}

export const token = (h: Harness, scopes: string[] = ['admin'], tenant = TENANT) =>
  mintToken(h.ctx.keys, { sub: 'tester', tenant, scopes: scopes as never, ttlSeconds: 600 }, { purpose: TOKEN_PURPOSE });

export async function countEvidence(h: Harness, tenant = TENANT): Promise<Record<string, number>> {
  const r = await h.ctx.db.query('SELECT kind, count(*)::int AS n FROM evidence_items WHERE tenant_id=$1 GROUP BY kind', [tenant]);
  return Object.fromEntries(r.rows.map((x) => [x.kind, x.n]));
}

/**
 * Real package facts from this machine (dpkg status, os-release) and the repo's
 * package-lock.json, and OSV records crafted for them: a critical and a high advisory on
 * installed versions, one already fixed (must not match), and an npm advisory.
 */
export function realFacts() {
  const os = parseOsRelease(readFileSync('/etc/os-release', 'utf8'));
  const distro = {
    id: (os.ID ?? 'debian').toLowerCase(),
    idLike: (os.ID_LIKE ?? '').split(/\s+/).filter(Boolean),
    ...(os.VERSION_ID ? { versionId: os.VERSION_ID } : {}),
    location: '/etc/os-release',
  };
  const debs = parseDpkgStatus(readFileSync('/var/lib/dpkg/status', 'utf8'), '/var/lib/dpkg/status', { distro });
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
  const zod = lock.packages['node_modules/zod']!.version!;
  const eco = distro.id === 'ubuntu' || distro.idLike.includes('ubuntu') ? 'Ubuntu' : 'Debian';
  const [d1, d2, d3] = [debs[0]!, debs[1]!, debs[2]!];
  const records = [
    {
      id: 'STELLA-TEST-DEB-CRIT',
      modified: '2025-01-01T00:00:00Z',
      summary: `test advisory for ${d1.source!.name}`,
      affected: [
        {
          package: { ecosystem: eco, name: d1.source!.name },
          ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { last_affected: d1.source!.version }] }],
          database_specific: { severity: 'CRITICAL' },
        },
      ],
    },
    {
      id: 'STELLA-TEST-DEB-HIGH',
      modified: '2025-01-01T00:00:00Z',
      summary: `test advisory for ${d2.source!.name}`,
      affected: [{ package: { ecosystem: eco, name: d2.source!.name }, versions: [d2.source!.version], database_specific: { severity: 'HIGH' } }],
    },
    // Fixed at version 0~: the installed version is later, so not affected.
    {
      id: 'STELLA-TEST-DEB-FIXED',
      modified: '2025-01-01T00:00:00Z',
      affected: [
        {
          package: { ecosystem: eco, name: d3.source!.name },
          ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '0~' }] }],
          database_specific: { severity: 'CRITICAL' },
        },
      ],
    },
    {
      id: 'STELLA-TEST-NPM-ZOD',
      modified: '2025-01-01T00:00:00Z',
      summary: 'test advisory for zod',
      affected: [{ package: { ecosystem: 'npm', name: 'zod' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '999.0.0' }] }] }],
      severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N' }],
    },
  ];
  return { distro, debs, zod, records, expect: { critical: 1, high: 1, medium: 1 } };
}
