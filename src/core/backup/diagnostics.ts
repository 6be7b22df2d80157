import type { AppContext } from './context';
import { indexStatus } from './locker/index-ops';
import { storageStats } from './locker/storage';
import { verifyReport } from './verify';
import { listAnchors } from './anchoring';

/**
 * `stella evidence diagnostics` (Evidence Capture): index status, storage stats, the recent
 * anchor chain, the latest integrity results and the operation audit log, as JSON documents.
 * Secrets never leave: private JWK members, tokens, passwords and secret keys are dropped by
 * name, URLs lose their password, bearer tokens / JWTs in free text are masked, and the result
 * is checked once more before it is returned.
 */

const SECRET_KEYS =
  /^(d|p|q|dp|dq|qi|oth|k|privatejwk|privatekey|private_key|password|passwd|secret|token|accesstoken|refreshtoken|authorization|cookie|secretaccesskey|s3secretaccesskey|stella_s3_secret_access_key|stella_token|apikey|api_key)$/i;
const JWT_RE = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g;
const URL_PW_RE = /\b([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+):[^@\s]+@/gi;

export function redact(value: unknown, key = ''): unknown {
  if (key && SECRET_KEYS.test(key)) return value == null ? value : '[redacted]';
  if (typeof value === 'string') return value.replace(URL_PW_RE, '$1:****@').replace(JWT_RE, '[redacted-jwt]');
  if (Array.isArray(value)) return value.map((v) => redact(v));
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, redact(v, k)]));
  return value;
}

/** Refuses output that still looks like it carries key material. */
export function assertNoSecrets(files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    if (/"d"\s*:/.test(text)) throw new Error(`diagnostics ${name} would contain a private JWK member; refusing`);
    if (JWT_RE.test(text)) throw new Error(`diagnostics ${name} would contain a bearer token; refusing`);
    JWT_RE.lastIndex = 0;
  }
}

async function section<T>(fn: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await fn();
  } catch (e) {
    return { error: (e as Error).message };
  }
}

export async function collectDiagnostics(ctx: AppContext, tenant: string, opts: { auditLimit?: number; anchorLimit?: number } = {}) {
  const generatedAt = new Date().toISOString();
  const auditLimit = Math.min(Math.max(opts.auditLimit ?? 1000, 1), 10_000);
  const [index, storage, anchors, integrity, audit, ops, env] = await Promise.all([
    section(() => indexStatus(ctx, tenant, { sample: 1000 })),
    section(() => storageStats(ctx, tenant, false)),
    section(async () => {
      const list = await listAnchors(ctx, { limit: opts.anchorLimit ?? 50, showLinks: true });
      const v = await ctx.db.query('SELECT scope, ok, checked, first_break, verified_at FROM anchor_verifications ORDER BY verified_at DESC, id DESC LIMIT 5');
      return { ...list, verifications: v.rows };
    }),
    section(async () => {
      const runs = await ctx.db.query(
        'SELECT id, tenant_id, mode, status, total, checked, ok, failed, to_anchor, started_at, finished_at FROM verify_runs ORDER BY started_at DESC LIMIT 10',
      );
      return { latest: await verifyReport(ctx, { failedOnly: true }), recentRuns: runs.rows };
    }),
    section(
      async () =>
        (
          await ctx.db.query(
            `SELECT id, tenant_id, at, actor, action, target, reason, details FROM audit_log WHERE tenant_id IN ($1, '*') ORDER BY id DESC LIMIT $2`,
            [tenant, auditLimit],
          )
        ).rows,
    ),
    section(async () => ({
      backups: (await ctx.db.query('SELECT id, status, location, actor, started_at, finished_at, summary FROM backup_runs ORDER BY started_at DESC LIMIT 20'))
        .rows,
      restores: (
        await ctx.db.query(
          'SELECT id, backup_id, to_anchor, target, actor, status, phase, started_at, finished_at FROM restore_runs ORDER BY started_at DESC LIMIT 20',
        )
      ).rows,
      lockerOps: (
        await ctx.db
          .query('SELECT id, op, status, actor, started_at, finished_at FROM locker_ops ORDER BY started_at DESC LIMIT 20')
          .catch(() => ({ rows: [] }))
      ).rows,
    })),
    section(async () => ({
      node: process.version,
      postgres: (await ctx.db.query('SHOW server_version')).rows[0].server_version,
      migrations: (await ctx.db.query('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')).rows,
      config: {
        dataDir: ctx.cfg.dataDir,
        tenant: ctx.cfg.tenant,
        temporal: ctx.cfg.temporal,
        databaseUrl: ctx.cfg.databaseUrl,
        blob: ctx.cfg.blob,
        api: { host: ctx.cfg.api.host, port: ctx.cfg.api.port, url: ctx.cfg.api.url },
        schedules: ctx.cfg.schedules,
        backup: ctx.cfg.backup,
        maxUploadBytes: ctx.cfg.maxUploadBytes,
      },
    })),
  ]);
  const files: Record<string, string> = {
    'index-status.json': JSON.stringify(redact(index), null, 2) + '\n',
    'storage-stats.json': JSON.stringify(redact(storage), null, 2) + '\n',
    'anchors.json': JSON.stringify(redact(anchors), null, 2) + '\n',
    'integrity.json': JSON.stringify(redact(integrity), null, 2) + '\n',
    'audit-log.jsonl': Array.isArray(audit) ? audit.map((r) => JSON.stringify(redact(r))).join('\n') + '\n' : JSON.stringify(redact(audit)) + '\n',
    'operations.json': JSON.stringify(redact(ops), null, 2) + '\n',
    'environment.json': JSON.stringify(redact(env), null, 2) + '\n',
  };
  assertNoSecrets(files);
  return { generatedAt, tenant, files };
}
