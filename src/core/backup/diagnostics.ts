/**
 * `stella evidence diagnostics` (Evidence Capture): index status, storage stats, the recent
 * anchor chain, the latest integrity results and the operation audit log, as JSON documents.
 * Secrets never leave: private JWK members, tokens, passwords and secret keys are dropped by
 * name, URLs lose their password, bearer tokens / JWTs in free text are masked, and the result
 * is checked once more before it is returned.
 */
import type { AppContext } from '../context';
import { indexStatus } from '../evidence/locker/index-ops';
import { storageStats } from '../evidence/locker/storage';
import { verifyReport } from '../evidence/locker/verify';
import { recentLockerOps, recentVerifyRuns } from '../evidence/queries/backup';
import { listAnchors } from '../anchoring';
import { recentAnchorVerifications } from '../anchoring/queries/backup';
import { recentAuditEntries } from '../audit/queries/backup';
import { appliedMigrations, serverVersion } from '../../db/migrate';
import { recentBackupRuns, recentRestoreRuns } from './runs';

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
    section(() => indexStatus(ctx, { tenant, admin: true }, { sample: 1000 })),
    section(() => storageStats(ctx, tenant, false)),
    section(async () => ({
      ...(await listAnchors(ctx, { limit: opts.anchorLimit ?? 50, showLinks: true })),
      verifications: await recentAnchorVerifications(ctx.db, 5),
    })),
    section(async () => ({ latest: await verifyReport(ctx, { failedOnly: true }), recentRuns: await recentVerifyRuns(ctx.db, 10) })),
    section(() => recentAuditEntries(ctx.db, tenant, auditLimit)),
    section(async () => ({
      backups: await recentBackupRuns(ctx.db, 20),
      restores: await recentRestoreRuns(ctx.db, 20),
      lockerOps: await recentLockerOps(ctx.db, 20).catch(() => []),
    })),
    section(async () => ({
      node: process.version,
      postgres: await serverVersion(ctx.db),
      migrations: (await appliedMigrations(ctx.db)).map((m) => ({ version: m.version, name: m.name, applied_at: m.appliedAt })),
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
