import { loadMigrations } from '../../../db/migrate';
import type { DoctorCheck, DoctorOutcome } from '../../doctor';
import { probeStore, capacity, tierStore } from './storage';
import { humanBytes } from '../../../lib/format';

// Evidence Locker checks for `stella doctor --category evidence` / `--check check.storage.evidencelocker`.

const VERIFY_MAX_AGE_H = 36; // the daily schedule plus slack

export const lockerDoctorChecks: DoctorCheck[] = [
  {
    id: 'check.evidence.database',
    categories: ['evidence', 'database'],
    description: 'PostgreSQL reachable and every migration applied unchanged',
    scope: 'evidence:read',
    async run({ ctx }) {
      const t = performance.now();
      await ctx.db.query('SELECT 1');
      const ms = Math.round(performance.now() - t);
      const applied = await ctx.db.query('SELECT version, checksum FROM schema_migrations');
      const have = new Map(applied.rows.map((r) => [Number(r.version), r.checksum as string]));
      const files = loadMigrations();
      const pending = files.filter((m) => !have.has(m.version)).map((m) => `${m.version}_${m.name}`);
      const changed = files.filter((m) => have.has(m.version) && have.get(m.version) !== m.checksum).map((m) => `${m.version}_${m.name}`);
      if (changed.length)
        return {
          status: 'FAIL',
          message: `applied migrations changed on disk: ${changed.join(', ')}`,
          remedy: 'restore the original migration files; add a new migration instead',
          details: { changed },
        };
      if (pending.length)
        return {
          status: 'FAIL',
          message: `migrations not applied: ${pending.join(', ')}`,
          remedy: 'stella service restart (migrations run at start)',
          details: { pending },
        };
      return { status: 'PASS', message: `reachable in ${ms} ms; ${files.length} migrations current`, details: { latencyMs: ms, migrations: files.length } };
    },
  },
  {
    id: 'check.storage.evidencelocker',
    categories: ['evidence', 'storage'],
    description: 'evidence blob store: connectivity and a write/read/delete probe',
    scope: 'evidence:read',
    async run({ ctx }) {
      const p = await probeStore(ctx.blobs.primary, 'primary');
      const lat = p.steps.map((s) => `${s.op} ${s.ms} ms`).join(', ');
      if (!p.ok)
        return {
          status: 'FAIL',
          message: `${p.kind} store ${p.location}: ${p.error}`,
          remedy:
            p.kind === 'fs'
              ? `check the mount, free space and permissions of ${p.location}; then stella evidence storage test`
              : 'check the S3 endpoint, bucket and credentials; then stella evidence storage test',
          details: { ...p },
        };
      return { status: 'PASS', message: `${p.kind} store ${p.location} ok (${lat})`, details: { ...p } };
    },
  },
  {
    id: 'check.storage.evidencelocker.replica',
    categories: ['evidence', 'storage'],
    description: 'replica blob store (used by recover --source replica)',
    scope: 'evidence:read',
    async run({ ctx }) {
      if (!ctx.blobs.replica)
        return {
          status: 'WARN',
          message: 'no replica store configured: corrupted evidence cannot be recovered',
          remedy: 'stella config set EvidenceLocker:ReplicaPath <dir> (or STELLA_REPLICA_BUCKET) && stella service restart',
        };
      const p = await probeStore(ctx.blobs.replica, 'replica');
      if (!p.ok)
        return {
          status: 'FAIL',
          message: `replica ${p.location}: ${p.error}`,
          remedy: `check the replica store ${p.location}; ingestion writes to it and will fail`,
          details: { ...p },
        };
      return { status: 'PASS', message: `replica ${p.location} ok (${p.steps.map((s) => `${s.op} ${s.ms} ms`).join(', ')})`, details: { ...p } };
    },
  },
  {
    id: 'check.storage.evidencelocker.capacity',
    categories: ['evidence', 'storage'],
    description: 'free space under the evidence store',
    scope: 'evidence:read',
    async run({ ctx }) {
      const c = await capacity(ctx.blobs.primary);
      if (!c) return { status: 'PASS', message: `${ctx.blobs.primary.kind} store: capacity is managed by the provider` };
      const free = c.availableBytes / c.totalBytes;
      const msg = `${humanBytes(c.availableBytes)} free of ${humanBytes(c.totalBytes)} (${(free * 100).toFixed(1)}%)`;
      const remedy = 'stella evidence storage analyze --sort size --limit 20; stella evidence cleanup --apply-retention --dry-run; or expand the volume';
      if (free < 0.05) return { status: 'FAIL', message: msg, remedy, details: c };
      if (free < 0.15) return { status: 'WARN', message: msg, remedy, details: c };
      return { status: 'PASS', message: msg, details: c };
    },
  },
  {
    id: 'check.storage.evidencelocker.temp',
    categories: ['evidence', 'storage'],
    description: 'stale temp files / incomplete uploads in the store',
    scope: 'evidence:read',
    async run({ ctx }) {
      const stale = await ctx.blobs.primary.cleanupTemp(3_600_000, true);
      if (stale.removed)
        return {
          status: 'WARN',
          message: `${stale.removed} temp file(s) older than 1 h (${humanBytes(stale.bytes)}): interrupted writes`,
          remedy: 'stella evidence cleanup --temp-only',
          details: stale,
        };
      return { status: 'PASS', message: 'no stale temp files' };
    },
  },
  {
    id: 'check.evidence.verify',
    categories: ['evidence'],
    description: 'latest integrity verification run: age and result',
    scope: 'evidence:read',
    async run({ ctx, tenant }): Promise<DoctorOutcome> {
      const r = await ctx.db.query(
        `SELECT id, mode, status, failed, checked, started_at, finished_at FROM verify_runs WHERE tenant_id IN ($1,'*') ORDER BY started_at DESC LIMIT 1`,
        [tenant],
      );
      if (!r.rowCount) return { status: 'WARN', message: 'no integrity verification has run yet', remedy: 'stella evidence verify --mode quick' };
      const v = r.rows[0];
      const ageH = (Date.now() - new Date(v.finished_at ?? v.started_at).getTime()) / 3_600_000;
      const details = { runId: v.id, mode: v.mode, status: v.status, failed: v.failed, checked: v.checked, ageHours: Math.round(ageH * 10) / 10 };
      if (v.status === 'failed')
        return {
          status: 'FAIL',
          message: `latest ${v.mode} run ${v.id} found ${v.failed} failure(s)`,
          remedy: 'stella evidence verify-report --latest --filter failed',
          details,
        };
      if (v.status === 'running' && ageH > 6)
        return {
          status: 'WARN',
          message: `run ${v.id} has been running for ${ageH.toFixed(1)} h`,
          remedy: 'check the worker and the Temporal UI for the verifyEvidence workflow',
          details,
        };
      if (ageH > VERIFY_MAX_AGE_H)
        return {
          status: 'WARN',
          message: `latest run ${v.id} is ${ageH.toFixed(1)} h old (schedule stella-integrity-daily)`,
          remedy: 'stella evidence verify --mode quick',
          details,
        };
      return { status: 'PASS', message: `${v.mode} run ${v.id} ${v.status}, ${ageH.toFixed(1)} h ago (${v.checked} checked)`, details };
    },
  },
  {
    id: 'check.evidence.index',
    categories: ['evidence'],
    description: 'index consistency sample: rows vs blobs, log leaves, unindexed blobs',
    scope: 'evidence:read',
    timeoutMs: 30_000,
    async run({ ctx, tenant }): Promise<DoctorOutcome> {
      const sample = await ctx.db.query(`SELECT id, size_bytes, tier FROM evidence_items WHERE tenant_id=$1 AND state='present' ORDER BY random() LIMIT 200`, [
        tenant,
      ]);
      const missing: string[] = [];
      for (const row of sample.rows) {
        const st = await tierStore(ctx, row.tier).stat(row.id);
        if (!st || st.size !== Number(row.size_bytes)) missing.push(row.id);
      }
      const noLeaf = Number(
        (
          await ctx.db.query(
            'SELECT count(*) AS n FROM evidence_items i WHERE i.tenant_id=$1 AND NOT EXISTS (SELECT 1 FROM evidence_log l WHERE l.tenant_id=i.tenant_id AND l.item_id=i.id)',
            [tenant],
          )
        ).rows[0].n,
      );
      const corrupted = Number((await ctx.db.query(`SELECT count(*) AS n FROM evidence_items WHERE tenant_id=$1 AND state='corrupted'`, [tenant])).rows[0].n);
      let listed = 0;
      const page: string[] = [];
      for await (const b of ctx.blobs.primary.list()) {
        page.push(b.digest);
        if (++listed >= 500) break;
      }
      const known = page.length ? (await ctx.db.query('SELECT DISTINCT id FROM evidence_items WHERE id = ANY($1)', [page])).rowCount! : 0;
      const unindexed = page.length - known;
      const details = {
        sampledRows: sample.rowCount,
        missingOrWrongSize: missing.slice(0, 20),
        itemsWithoutLogLeaf: noLeaf,
        corrupted,
        sampledBlobs: page.length,
        unindexedBlobs: unindexed,
      };
      if (missing.length)
        return {
          status: 'FAIL',
          message: `${missing.length} of ${sample.rowCount} sampled items have no (or a wrong-size) blob`,
          remedy: 'stella evidence index refresh; then stella evidence retry-store --artifact <digest> or recover --source replica',
          details,
        };
      if (noLeaf)
        return { status: 'FAIL', message: `${noLeaf} item(s) have no Merkle log leaf`, remedy: 'escalate (L2): the ingest transaction was bypassed', details };
      if (corrupted)
        return {
          status: 'WARN',
          message: `${corrupted} item(s) are marked corrupted`,
          remedy: 'stella evidence verify-report --latest --filter failed; stella evidence recover --id <id> --source replica',
          details,
        };
      if (unindexed)
        return { status: 'WARN', message: `${unindexed} of ${page.length} sampled blobs are not indexed`, remedy: 'stella evidence index rebuild', details };
      return { status: 'PASS', message: `${sample.rowCount} sampled items have their blobs; ${page.length} sampled blobs indexed`, details };
    },
  },
];
