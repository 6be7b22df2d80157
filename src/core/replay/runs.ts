import type { AppContext } from '../context';
import { exportRootPack } from '../../crypto/rootpack';
import type { Envelope } from '../../crypto/dsse';
import { notFound } from '../../lib/errors';
import { BlobNotFoundError, DigestMismatchError } from '../../blob';
import { replayVerify, type ReplayResult } from './verify';
import type { ReplayManifest } from './manifest';

export interface ReplayRun {
  tenant: string;
  scanId: string;
  artifactDigest: string;
  manifestDigest: string;
  envelopeDigest: string;
  inputDigest: string;
  outputDigest: string;
  inputSize: number;
  outputSize: number;
  verdict: string;
  scannerVersion: string;
  createdAt: string;
  lastVerifiedAt: string | null;
  lastResult: string | null;
  lastCodes: string[];
}

function toRun(r: Record<string, any>): ReplayRun {
  return {
    tenant: r.tenant_id,
    scanId: r.scan_id,
    artifactDigest: r.artifact_digest,
    manifestDigest: r.manifest_digest,
    envelopeDigest: r.envelope_digest,
    inputDigest: r.input_digest,
    outputDigest: r.output_digest,
    inputSize: Number(r.input_size),
    outputSize: Number(r.output_size),
    verdict: r.verdict,
    scannerVersion: r.scanner_version,
    createdAt: new Date(r.created_at).toISOString(),
    lastVerifiedAt: r.last_verified_at ? new Date(r.last_verified_at).toISOString() : null,
    lastResult: r.last_result,
    lastCodes: r.last_codes ?? [],
  };
}

export async function getRun(ctx: AppContext, tenant: string, scanId: string): Promise<ReplayRun> {
  const r = await ctx.db.query('SELECT * FROM replay_runs WHERE tenant_id=$1 AND scan_id=$2', [tenant, scanId]);
  if (!r.rowCount) throw notFound(`replay run ${scanId} not found`);
  return toRun(r.rows[0]);
}

export async function listRuns(ctx: AppContext, tenant: string, q: { artifact?: string; limit?: number } = {}): Promise<ReplayRun[]> {
  const r = await ctx.db.query(
    `SELECT * FROM replay_runs WHERE tenant_id=$1 AND ($2::text IS NULL OR artifact_digest=$2) ORDER BY created_at DESC, scan_id LIMIT $3`,
    [tenant, q.artifact ?? null, Math.min(q.limit ?? 50, 1000)],
  );
  return r.rows.map(toRun);
}

/** What the last verification of a run found (for `stella verify --explain`). */
export interface RunExplain {
  last_result: string | null;
  last_codes: string[] | null;
  last_explain: unknown;
  last_verified_at: string | null;
}

export async function getRunExplain(ctx: AppContext, tenant: string, scanId: string): Promise<RunExplain> {
  const r = await ctx.db.query('SELECT last_result, last_codes, last_explain, last_verified_at FROM replay_runs WHERE tenant_id=$1 AND scan_id=$2', [
    tenant,
    scanId,
  ]);
  if (!r.rowCount) throw notFound(`replay run ${scanId} not found`);
  const row = r.rows[0];
  return {
    last_result: row.last_result ?? null,
    last_codes: row.last_codes ?? null,
    last_explain: row.last_explain ?? null,
    last_verified_at: row.last_verified_at ? new Date(row.last_verified_at).toISOString() : null,
  };
}

/** The files of an offline kit for one run, bundles base64-encoded, with this locker's RootPack. */
export async function runKit(ctx: AppContext, tenant: string, scanId: string) {
  const run = await getRun(ctx, tenant, scanId);
  const f = await loadRunFiles(ctx, run);
  if (!f.manifest || !f.envelope || !f.input || !f.output) throw notFound(`replay files for ${run.scanId} are missing from the store`);
  return {
    manifest: f.manifest,
    envelope: f.envelope,
    input: f.input.toString('base64'),
    output: f.output.toString('base64'),
    rootpack: await exportRootPack(ctx.keys),
  };
}

export async function tenantsWithRuns(ctx: AppContext): Promise<string[]> {
  const r = await ctx.db.query('SELECT DISTINCT tenant_id FROM replay_runs ORDER BY tenant_id');
  return r.rows.map((x) => x.tenant_id);
}

/** How a stored replay file read back: fine, absent, or present but damaged (hashes otherwise). */
export type StoredState = 'ok' | 'missing' | 'corrupt';
export type StoredFile = 'manifest' | 'envelope' | 'input' | 'output';

/**
 * The stored files of a run, read back from the replay/ namespace (verified reads), and for each
 * file that could not be used whether it was missing or corrupt, so --explain says which.
 */
export async function loadRunFiles(ctx: AppContext, run: ReplayRun) {
  const store = ctx.blobs.primary.withPrefix('replay');
  const stored: Record<StoredFile, StoredState> = { manifest: 'ok', envelope: 'ok', input: 'ok', output: 'ok' };
  const storedProblems: Partial<Record<StoredFile, string>> = {};
  const get = async (file: StoredFile, d: string) => {
    try {
      return await store.getBuffer(d);
    } catch (e) {
      if (!(e instanceof DigestMismatchError) && !(e instanceof BlobNotFoundError)) throw e;
      const corrupt = e instanceof DigestMismatchError;
      stored[file] = corrupt ? 'corrupt' : 'missing';
      storedProblems[file] = corrupt
        ? `${FILE_NAMES[file]} is corrupt in the replay store (${(e as Error).message}); repair: stella evidence recover --id replay/${d}`
        : `${FILE_NAMES[file]} is missing from the replay store (${d}); repair: stella evidence recover --id replay/${d}`;
      return null;
    }
  };
  const [m, e, input, output] = await Promise.all([
    get('manifest', run.manifestDigest),
    get('envelope', run.envelopeDigest),
    get('input', run.inputDigest),
    get('output', run.outputDigest),
  ]);
  return {
    manifest: m ? (JSON.parse(m.toString('utf8')) as ReplayManifest) : null,
    envelope: e ? (JSON.parse(e.toString('utf8')) as Envelope) : null,
    input,
    output,
    stored,
    storedProblems,
  };
}

const FILE_NAMES: Record<StoredFile, string> = {
  manifest: 'manifest.json',
  envelope: 'manifest.dsse.json',
  input: 'inputbundle.tar.zst',
  output: 'outputbundle.tar.zst',
};

/** Verifies one run online (RootPack from the key store) and records the outcome. */
export async function verifyRun(ctx: AppContext, tenant: string, scanId: string, source: string, strict = true): Promise<ReplayResult> {
  const run = await getRun(ctx, tenant, scanId);
  const files = await loadRunFiles(ctx, run);
  const result = await replayVerify({
    manifest: files.manifest,
    envelope: files.envelope,
    inputBundle: files.input,
    outputBundle: files.output,
    rootpack: await exportRootPack(ctx.keys),
    strict,
    storedProblems: files.storedProblems,
  });
  await recordVerification(ctx, tenant, scanId, source, result);
  return result;
}

/** A problem as stored: offline logs may carry codes from a newer CLI, so the code is any string. */
export interface RecordedProblem {
  code: string;
  detail: string;
  severity: 'error' | 'warning';
}

export async function recordVerification(
  ctx: AppContext,
  tenant: string,
  scanId: string,
  source: string,
  result: { ok: boolean; problems: readonly RecordedProblem[] } & Partial<Omit<ReplayResult, 'ok' | 'problems'>>,
): Promise<void> {
  const codes = result.problems.filter((p) => p.severity === 'error').map((p) => p.code);
  const outcome = result.ok ? 'passed' : 'failed';
  await ctx.db.query('INSERT INTO replay_verifications (tenant_id, scan_id, source, result, codes, explain) VALUES ($1,$2,$3,$4,$5,$6)', [
    tenant,
    scanId,
    source,
    outcome,
    JSON.stringify(codes),
    JSON.stringify(result),
  ]);
  await ctx.db.query('UPDATE replay_runs SET last_verified_at=now(), last_result=$3, last_codes=$4, last_explain=$5 WHERE tenant_id=$1 AND scan_id=$2', [
    tenant,
    scanId,
    outcome,
    JSON.stringify(codes),
    JSON.stringify(result),
  ]);
}
