/**
 * The layout rules of docs/architecture.md, checked on the source (no servers): every table has
 * one owning feature folder and only that folder runs SQL on it; the edges run no SQL; nothing
 * registers itself by being imported. Layering and import cycles are checked by `npm run lint`
 * (dependency-cruiser, .dependency-cruiser.cjs).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

/** Table → the feature folder that owns it. A new migration's table must be added here. */
const OWNER: Record<string, string> = {
  evidence_items: 'src/core/evidence/',
  evidence_subjects: 'src/core/evidence/',
  evidence_edges: 'src/core/evidence/',
  evidence_log: 'src/core/evidence/',
  evidence_log_pending: 'src/core/evidence/',
  log_state: 'src/core/evidence/',
  tenants: 'src/core/evidence/',
  locker_ops: 'src/core/evidence/',
  verify_runs: 'src/core/evidence/',
  verify_results: 'src/core/evidence/',
  verify_batches: 'src/core/evidence/',
  verify_store_dirs: 'src/core/evidence/',
  integrity_acks: 'src/core/evidence/',
  audit_log: 'src/core/audit/',
  timeline_events: 'src/core/audit/',
  anchors: 'src/core/anchoring/',
  anchor_chains: 'src/core/anchoring/',
  anchor_verifications: 'src/core/anchoring/',
  merkle_frontier: 'src/core/anchoring/',
  merkle_nodes: 'src/core/anchoring/',
  anchor_timestamps: 'src/core/anchoring/',
  anchor_cosignatures: 'src/core/anchoring/',
  retention_policies: 'src/core/retention/',
  retention_runs: 'src/core/retention/',
  retention_run_items: 'src/core/retention/',
  legal_holds: 'src/core/retention/',
  promotions: 'src/core/promotion/',
  promotion_gate_results: 'src/core/promotion/',
  promotion_policies: 'src/core/promotion/',
  scan_images: 'src/core/scan/',
  scan_runs: 'src/core/scan/',
  scan_events: 'src/core/scan/',
  scan_inventories: 'src/core/scan/',
  advisory_feeds: 'src/core/scan/',
  advisory_feed_ecosystems: 'src/core/scan/',
  signing_failures: 'src/core/attest/',
  replay_runs: 'src/core/replay/',
  replay_verifications: 'src/core/replay/',
  backup_runs: 'src/core/backup/',
  restore_runs: 'src/core/backup/',
  restore_batches: 'src/core/backup/',
  settings: 'src/core/settings/',
  token_revocations: 'src/core/identity/',
  oci_publications: 'src/core/oci-attest/',
};

/** Table-agnostic infrastructure allowed to name every table: migrations and the backup dump. */
const TABLE_AGNOSTIC = ['src/db/'];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = `${dir}/${name}`;
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sourceFiles(rel));
    else if (name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

const files = ['src', 'activities', 'workflows', 'workers'].flatMap(sourceFiles);
const text = new Map(files.map((f) => [f, readFileSync(join(ROOT, f), 'utf8')]));

/** Tables a file runs SQL on (SQL keywords are upper case in this codebase; prose is not). */
function tablesIn(src: string): Set<string> {
  const found = new Set<string>();
  const re = /\b(?:FROM|JOIN|INTO|UPDATE|TABLE|COPY)\s+([a-z_]+)\b/g;
  for (const m of src.matchAll(re)) if (m[1]! in OWNER) found.add(m[1]!);
  return found;
}

describe('architecture', () => {
  it('every table named in a migration has an owning feature', () => {
    const migrations = readdirSync(join(ROOT, 'migrations')).map((f) => readFileSync(join(ROOT, 'migrations', f), 'utf8'));
    const created = migrations.flatMap((m) => [...m.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)/gi)].map((x) => x[1]!.toLowerCase()));
    expect(created.filter((t) => !(t in OWNER))).toEqual([]);
  });

  it('only the owning feature folder runs SQL on a table', () => {
    const violations: string[] = [];
    for (const [file, src] of text) {
      if (TABLE_AGNOSTIC.some((p) => file.startsWith(p))) continue;
      for (const t of tablesIn(src)) if (!file.startsWith(OWNER[t]!)) violations.push(`${file} runs SQL on ${t} (owned by ${OWNER[t]})`);
    }
    expect(violations).toEqual([]);
  });

  it('the edges (activities, HTTP API, CLI, workflows, workers) run no SQL', () => {
    const edges = files.filter((f) => /^(activities|workflows|workers|src\/api|src\/cli)\//.test(f));
    // SQL text or a pool/transaction client; a Temporal `handle.query(someQuery)` is not SQL.
    const sql = /\.query(?:<[^>]*>)?\(\s*[`'"]|\b(?:db|tx|client|pool|pg)\.query\(/;
    expect(edges.filter((f) => sql.test(text.get(f)!))).toEqual([]);
  });

  it('nothing registers itself by being imported', () => {
    const sideEffectImports = files.filter((f) => /^import '\.{1,2}\//m.test(text.get(f)!));
    const registries = files.filter((f) => /\b(extraRoutes|extraSchedules|extraMetrics|registerDoctorCheck)\b/.test(text.get(f)!));
    expect({ sideEffectImports, registries }).toEqual({ sideEffectImports: [], registries: [] });
  });

  it('the worker path never imports HTTP code (routes are loaded on demand)', () => {
    const features = files.filter((f) => f.startsWith('src/app/features/'));
    const staticApiImports = features.filter((f) => /^import [^;]*from '[^']*\/api\//m.test(text.get(f)!.replace(/^import type .*$/gm, '')));
    expect(staticApiImports).toEqual([]);
    expect(text.get('src/serve.ts')!).not.toMatch(/^import [^;]*from '\.\/api\//m);
  });
});
