import { existsSync, readFileSync, mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { createRequire } from 'node:module';
import type { ClientConfigProfile } from '@temporalio/envconfig';
import { z } from 'zod';
import { parseDuration } from './lib/format';

/**
 * The one configuration module. Sources, later wins: defaults < `<dataDir>/config.json`
 * (written by `stella config set`) < environment. Every value is validated; a bad one
 * stops start-up with a single line naming the variable and the problem.
 */

export class ConfigError extends Error {
  constructor(
    public readonly variable: string,
    problem: string,
  ) {
    super(`invalid configuration: ${variable}: ${problem}`);
  }
}

/** Runbook-style keys (`stella config set EvidenceLocker:Path …`) map onto env names. */
export const CONFIG_KEY_ALIASES: Record<string, string> = {
  'EvidenceLocker:Path': 'STELLA_BLOB_PATH',
  'EvidenceLocker:Kind': 'STELLA_BLOB_KIND',
  'EvidenceLocker:ReplicaPath': 'STELLA_REPLICA_PATH',
  'EvidenceLocker:MaxUploadBytes': 'STELLA_MAX_UPLOAD_BYTES',
  'Temporal:Address': 'STELLA_TEMPORAL_ADDRESS',
  'Temporal:Namespace': 'STELLA_TEMPORAL_NAMESPACE',
  'Temporal:TaskQueue': 'STELLA_TASK_QUEUE',
  'Temporal:UiUrl': 'STELLA_TEMPORAL_UI_URL',
  'Worker:Queues': 'STELLA_WORKER_QUEUES',
  'Worker:ControlConcurrency': 'STELLA_WORKER_CONTROL_CONCURRENCY',
  'Worker:HeavyConcurrency': 'STELLA_WORKER_HEAVY_CONCURRENCY',
  'Worker:DeploymentName': 'STELLA_WORKER_DEPLOYMENT',
  'Worker:BuildId': 'STELLA_WORKER_BUILD_ID',
  'Database:Url': 'DATABASE_URL',
  'Api:Port': 'STELLA_API_PORT',
  'Api:Url': 'STELLA_API_URL',
  'S3:Bucket': 'STELLA_S3_BUCKET',
  'S3:Endpoint': 'STELLA_S3_ENDPOINT',
  'S3:Region': 'STELLA_S3_REGION',
  'Anchor:Interval': 'STELLA_ANCHOR_INTERVAL',
  'Anchor:CheckpointOrigin': 'STELLA_CHECKPOINT_ORIGIN',
  'Anchor:TsaUrl': 'STELLA_TSA_URL',
  'Anchor:TsaCaFile': 'STELLA_TSA_CA_FILE',
  'Anchor:Witnesses': 'STELLA_WITNESS_KEYS',
  'Anchor:WitnessQuorum': 'STELLA_WITNESS_QUORUM',
  'Verify:DailyMode': 'STELLA_VERIFY_SCHEDULE_MODE',
  'Verify:QuickSampleRate': 'STELLA_VERIFY_SAMPLE_RATE',
  'Replay:NightlyLatestN': 'STELLA_REPLAY_VERIFY_LATEST_N',
  'Backup:Path': 'STELLA_BACKUP_DIR',
  'Backup:Schedule': 'STELLA_BACKUP_SCHEDULE',
  'Backup:Cron': 'STELLA_BACKUP_CRON',
  'Verify:TrustedRootPack': 'STELLA_TRUSTED_ROOTPACK',
  'Auth:IdentityFile': 'STELLA_IDENTITY_FILE',
  'Auth:Issuer': 'STELLA_OIDC_ISSUER',
  'Auth:ClientId': 'STELLA_OIDC_CLIENT_ID',
  'Auth:Scope': 'STELLA_OIDC_SCOPE',
};

/** `s3://bucket[/prefix]`: bucket names per S3 rules, prefix without empty segments. */
export const S3_URL_RE = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/((?:[^/\s]+\/)*[^/\s]+)?\/?)?$/;

const port = z.coerce.number().int().min(0).max(65535);
const bool = z
  .string()
  .transform((s) => s.trim().toLowerCase())
  .pipe(z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off']))
  .transform((s) => ['1', 'true', 'yes', 'on'].includes(s));
const duration = z.string().regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration such as 30s, 15m, 6h or 1d');

/**
 * The settings' schema, built on first use (loadConfig, `config set`): most CLI commands import this
 * module only for the data directory, and building it is a good part of their start-up.
 */
function buildSchema() {
  return z.object({
    STELLA_DATA_DIR: z.string().min(1),
    STELLA_TENANT: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, . _ -')
      .default('default'),
    STELLA_TEMPORAL_ADDRESS: z
      .string()
      .regex(/^[^\s:]+:\d+$/, 'expected host:port')
      .optional(),
    // Unset: TEMPORAL_NAMESPACE / the Temporal profile, else `default` (see temporalProfile below).
    STELLA_TEMPORAL_NAMESPACE: z.string().min(1).optional(),
    // The control queue (workflows, light activities); heavy activities go to `<queue>-heavy`.
    STELLA_TASK_QUEUE: z.string().min(1).default('stella'),
    // Which queues this process's worker polls (`stella serve --queues`), and activity slots per queue.
    STELLA_WORKER_QUEUES: z
      .string()
      .regex(/^(control|heavy)(,(control|heavy))*$/, 'expected control, heavy or control,heavy')
      .default('control,heavy'),
    STELLA_WORKER_CONTROL_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(20),
    STELLA_WORKER_HEAVY_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(2),
    // Worker Versioning (Temporal server 1.28+): set a deployment name to turn it on; the build id defaults to the package version.
    STELLA_WORKER_DEPLOYMENT: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,200}$/, 'letters, digits, . _ -')
      .optional(),
    STELLA_WORKER_BUILD_ID: z
      .string()
      .regex(/^[A-Za-z0-9._+-]{1,200}$/, 'letters, digits, . _ + -')
      .optional(),
    // Base URL of the Temporal Web UI that `stella promotion status` links to (the dev server's UI by default).
    STELLA_TEMPORAL_UI_URL: z.url().default('http://127.0.0.1:8233'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL')
      .optional(),
    STELLA_BLOB_KIND: z.enum(['fs', 's3']).default('fs'),
    STELLA_BLOB_PATH: z.string().min(1).optional(),
    STELLA_REPLICA_PATH: z.string().min(1).optional(),
    STELLA_REPLICA_BUCKET: z.string().min(3).optional(),
    STELLA_S3_BUCKET: z.string().min(3).optional(),
    STELLA_S3_ENDPOINT: z.url().optional(),
    STELLA_S3_REGION: z.string().min(1).default('us-east-1'),
    STELLA_S3_ACCESS_KEY_ID: z.string().optional(),
    STELLA_S3_SECRET_ACCESS_KEY: z.string().optional(),
    STELLA_S3_FORCE_PATH_STYLE: bool.default(true),
    STELLA_API_HOST: z.string().min(1).default('127.0.0.1'),
    STELLA_API_PORT: port.default(8787),
    STELLA_API_URL: z.url().optional(),
    STELLA_TOKEN: z.string().optional(),
    STELLA_KEYS_DIR: z.string().min(1).optional(),
    STELLA_MAX_UPLOAD_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(64 * 1024 * 1024),
    // Signed documents parsed in memory (attestation import, RootPack import): a smaller cap.
    STELLA_MAX_DOCUMENT_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(8 * 1024 * 1024),
    // Deadline of the API's Temporal calls that do not wait by design (describe, query, list, start, signal).
    STELLA_TEMPORAL_RPC_TIMEOUT: duration.default('5s'),
    STELLA_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    // Telemetry (issue 16): DB-backed gauges recomputed at most this often; the worker-only process's
    // /healthz + /metrics listener; the Temporal SDK's Prometheus endpoint (off unless set); OTLP traces (off unless set).
    STELLA_METRICS_CACHE_SECONDS: z.coerce.number().min(0).max(3600).default(15),
    STELLA_WORKER_HTTP_PORT: port.default(8788),
    STELLA_SDK_METRICS_ADDRESS: z
      .string()
      .regex(/^[^\s:]+:\d+$/, 'expected host:port')
      .optional(),
    STELLA_OTLP_ENDPOINT: z
      .string()
      .regex(/^https?:\/\//, 'expected an http(s):// URL of an OTLP/HTTP collector')
      .optional(),
    STELLA_ANCHOR_INTERVAL: duration.default('6h'),
    // Anchors as C2SP checkpoints (issue 18): the log's origin line (and note key name), an optional RFC 3161
    // TSA and the CA certificate its tokens chain to, witness vkeys (comma-separated) and how many must cosign.
    STELLA_CHECKPOINT_ORIGIN: z
      .string()
      .regex(/^[^\s+]+$/, 'one word without spaces or "+", e.g. stella.example.com/evidence-log')
      .default('stella.local/evidence-log'),
    STELLA_TSA_URL: z.url().optional(),
    STELLA_TSA_CA_FILE: z.string().min(1).optional(),
    STELLA_WITNESS_KEYS: z
      .string()
      .regex(
        /^(\s*[^+\s,]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+\s*)?(,\s*[^+\s,]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+\s*)*$/,
        'expected comma-separated vkeys <name>+<8 hex>+<base64>',
      )
      .default(''),
    STELLA_WITNESS_QUORUM: z.coerce.number().int().min(0).max(64).default(0),
    STELLA_VERIFY_SCHEDULE_MODE: z.enum(['quick', 'full']).default('quick'),
    STELLA_VERIFY_SAMPLE_RATE: z.coerce.number().gt(0).max(1).default(0.1),
    STELLA_REPLAY_VERIFY_LATEST_N: z.coerce.number().int().positive().default(20),
    STELLA_SCHEDULES: bool.default(true),
    // A directory, or s3://bucket[/prefix] (endpoint, region and credentials from STELLA_S3_*).
    STELLA_BACKUP_DIR: z
      .string()
      .min(1)
      .refine((s) => !/^s3:/i.test(s) || S3_URL_RE.test(s), 'expected a directory or s3://<bucket>[/<prefix>]')
      .optional(),
    STELLA_BACKUP_SCHEDULE: bool.default(false),
    STELLA_BACKUP_CRON: z
      .string()
      .regex(/^\S+( \S+){4}$/, 'expected a 5-field cron expression')
      .default('30 3 * * *'),
    // The RootPack file offline verification (evidence packs, replay kits) trusts when no --rootpack is given.
    STELLA_TRUSTED_ROOTPACK: z.string().min(1).optional(),
    // A Sigstore trusted_root.json: certificate (keyless) Sigstore bundles and transparency-log entries verify against it.
    STELLA_SIGSTORE_TRUSTED_ROOT: z.string().min(1).optional(),
    // Identity (issue 17): the API's trusted issuers and trusted publishers; the IdP `stella auth login` uses.
    STELLA_IDENTITY_FILE: z.string().min(1).optional(),
    STELLA_OIDC_ISSUER: z.url().optional(),
    STELLA_OIDC_CLIENT_ID: z.string().min(1).default('stella-cli'),
    STELLA_OIDC_SCOPE: z.string().min(1).default('openid'),
    STELLA_TEMPORAL_BIN: z.string().optional(),
    STELLA_DEV_TEMPORAL_PORT: port.default(7233),
    STELLA_DEV_TEMPORAL_UI_PORT: port.default(8233),
    STELLA_DEV_PG_PORT: port.default(55432),
    // API access tokens (issue 17): public base URL for DPoP htu checks, proof iat window, server nonces, per-token rate limit.
    STELLA_API_PUBLIC_URL: z.url().optional(),
    STELLA_DPOP_IAT_WINDOW: z.coerce.number().int().min(5).max(3600).default(300),
    STELLA_DPOP_NONCE: bool.default(false),
    STELLA_API_RATE_LIMIT: z.coerce.number().int().positive().default(6000),
    // OCI registries (issue 14): docker config.json with `auths`, hosts spoken to over plain HTTP, the content-addressed layer cache.
    STELLA_REGISTRY_AUTH_FILE: z.string().min(1).optional(),
    STELLA_INSECURE_REGISTRIES: z
      .string()
      .regex(/^(\s*[^\s,/]+\s*)?(,\s*[^\s,/]+\s*)*$/, 'expected comma-separated host[:port]')
      .default(''),
    STELLA_LAYER_CACHE_DIR: z.string().min(1).optional(),
    STELLA_LAYER_CACHE_MAX_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(10 * 1024 * 1024 * 1024),
  });
}
let schemaMemo: ReturnType<typeof buildSchema> | undefined;
const configSchema = () => (schemaMemo ??= buildSchema());

/** Every setting stella reads from the environment (the schema's keys). */
export function settingNames(): string[] {
  return Object.keys(configSchema().shape);
}

export type RawConfig = z.infer<ReturnType<typeof buildSchema>>;

export interface StellaConfig {
  dataDir: string;
  tenant: string;
  /**
   * address/namespace: STELLA_TEMPORAL_* first, then TEMPORAL_* / the Temporal profile. `profile`
   * keeps the TLS and API-key settings (paths, not file contents) for src/temporal/client.ts.
   */
  temporal: { address?: string; namespace: string; taskQueue: string; rpcTimeoutMs: number; uiUrl: string; profile: TemporalProfile };
  /** The worker of `stella serve`: queues polled, activity slots per queue, Worker Versioning. */
  worker: { queues: ('control' | 'heavy')[]; controlConcurrency: number; heavyConcurrency: number; deployment?: { deploymentName: string; buildId: string } };
  databaseUrl?: string;
  blob:
    | { kind: 'fs'; path: string; replicaPath?: string }
    | {
        kind: 's3';
        bucket: string;
        endpoint?: string;
        region: string;
        accessKeyId?: string;
        secretAccessKey?: string;
        forcePathStyle: boolean;
        replicaBucket?: string;
      };
  api: { host: string; port: number; url: string; token?: string };
  keysDir: string;
  maxUploadBytes: number;
  maxDocumentBytes: number;
  logLevel: RawConfig['STELLA_LOG_LEVEL'];
  /** Metrics and traces (issue 16): see docs/production.md. */
  telemetry: { metricsCacheSeconds: number; workerHttpPort: number; sdkMetricsAddress?: string; otlpEndpoint?: string };
  schedules: { enabled: boolean; anchorInterval: string; verifyMode: 'quick' | 'full'; verifySampleRate: number; replayLatestN: number };
  dev: { temporalBin?: string; temporalPort: number; temporalUiPort: number; pgPort: number };
  /** Anchors as C2SP checkpoints: origin, optional RFC 3161 TSA, witness vkeys and the k-of-n quorum. */
  anchoring: { origin: string; tsaUrl?: string; tsaCaFile?: string; witnesses: string[]; witnessQuorum: number };
  /** API access tokens: DPoP checks (RFC 9449) and the per-token rate limit (requests per minute). */
  auth: { publicUrl?: string; dpopIatWindowSeconds: number; dpopNonce: boolean; rateLimitPerMinute: number };
  /** Offline verification trusts only this RootPack (or --rootpack); never one carried by a pack. */
  trustedRootPack?: string;
  /** A Sigstore trusted_root.json (certificate bundles, Rekor entries); none configured: such bundles are refused with that reason. */
  sigstoreTrustedRoot?: string;
  /** Identity (issue 17): `file` is the API's identity file (trusted issuers, trusted publishers); `login` the IdP of `stella auth login`. */
  identity: { file?: string; login: { issuer?: string; clientId: string; scope: string } };
  /** OCI registries (issue 14): credentials file, plain-HTTP hosts (never implied), the layer cache (off unless a dir is set). */
  registry: { authFile?: string; insecureRegistries: string[]; layerCacheDir?: string; layerCacheMaxBytes: number };
  /** Evidence Locker backups (issue 9): where they go, and the optional daily schedule. */
  backup: {
    /** An absolute directory, or an s3://bucket[/prefix] URL. */
    dir: string;
    schedule: boolean;
    cron: string;
    /** S3 connection for s3:// backup locations (the STELLA_S3_* settings, whatever the blob kind). */
    s3: { endpoint?: string; region: string; accessKeyId?: string; secretAccessKey?: string; forcePathStyle: boolean };
  };
}

/** The Temporal profile's TLS, API key and gRPC metadata (what `@temporalio/envconfig` reads). */
export type TemporalProfile = Pick<ClientConfigProfile, 'apiKey' | 'tls' | 'grpcMeta'> & { name?: string };

/**
 * The Temporal CLI's own configuration: TEMPORAL_CONFIG_FILE (or ~/.config/temporalio/temporal.toml),
 * profile TEMPORAL_PROFILE (else `default`), overridden by TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
 * TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_GRPC_META_*.
 */
function temporalProfile(env: NodeJS.ProcessEnv): ClientConfigProfile & { name?: string } {
  const vars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''));
  try {
    // Loaded on first use, not at import: it costs ~30-100 ms of every CLI call, and API-client
    // commands (which never talk to Temporal) import this module for the data directory only.
    const { loadClientConfigProfile } = createRequire(import.meta.url)('@temporalio/envconfig') as typeof import('@temporalio/envconfig');
    return { ...loadClientConfigProfile({ overrideEnvVars: vars }), name: vars.TEMPORAL_PROFILE };
  } catch (e) {
    const variable = vars.TEMPORAL_PROFILE ? 'TEMPORAL_PROFILE' : 'TEMPORAL_CONFIG_FILE';
    throw new ConfigError(variable, (e as Error).message.split('\n')[0]!);
  }
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.STELLA_DATA_DIR ?? env.STELLA_HOME ?? join(homedir(), '.stella'));
}

export function configFilePath(dataDir: string): string {
  return join(dataDir, 'config.json');
}

export function readConfigFile(dataDir: string): Record<string, string> {
  const file = configFilePath(dataDir);
  if (!existsSync(file)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(file, `not valid JSON (${(e as Error).message})`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(file, 'expected a JSON object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) out[CONFIG_KEY_ALIASES[k] ?? k] = String(v);
  return out;
}

/** `stella config set`: validate the key and value, then write the file atomically. */
export function writeConfigValue(dataDir: string, key: string, value: string): { key: string; variable: string } {
  const variable = CONFIG_KEY_ALIASES[key] ?? key;
  const schema = configSchema();
  if (!(variable in schema.shape)) {
    throw new ConfigError(key, `unknown setting; known: ${Object.keys(CONFIG_KEY_ALIASES).join(', ')} or any STELLA_* variable`);
  }
  const field = schema.shape[variable as keyof typeof schema.shape];
  const check = field.safeParse(value);
  if (!check.success) throw new ConfigError(key, check.error.issues[0]?.message ?? 'invalid value');
  const file = configFilePath(dataDir);
  mkdirSync(dirname(file), { recursive: true });
  const current = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {};
  current[key] = value;
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(current, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  return { key, variable };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): StellaConfig {
  const dataDir = defaultDataDir(env);
  const merged: Record<string, string | undefined> = { ...readConfigFile(dataDir) };
  const schema = configSchema();
  for (const key of Object.keys(schema.shape)) if (env[key] !== undefined && env[key] !== '') merged[key] = env[key];
  merged.STELLA_DATA_DIR = dataDir;
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'config');
    const shown = merged[variable] === undefined ? '' : ` (got ${JSON.stringify(merged[variable])})`;
    throw new ConfigError(variable, issue.message + shown);
  }
  const c = parsed.data;
  const profile = temporalProfile(env);
  const temporalAddress = c.STELLA_TEMPORAL_ADDRESS ?? profile.address;
  if (temporalAddress && !/^[^\s:]+:\d+$/.test(temporalAddress))
    throw new ConfigError('TEMPORAL_ADDRESS', `expected host:port (got ${JSON.stringify(temporalAddress)})`);
  let blob: StellaConfig['blob'];
  if (c.STELLA_BLOB_KIND === 's3') {
    if (!c.STELLA_S3_BUCKET) throw new ConfigError('STELLA_S3_BUCKET', 'required when STELLA_BLOB_KIND=s3');
    blob = {
      kind: 's3',
      bucket: c.STELLA_S3_BUCKET,
      endpoint: c.STELLA_S3_ENDPOINT,
      region: c.STELLA_S3_REGION,
      accessKeyId: c.STELLA_S3_ACCESS_KEY_ID,
      secretAccessKey: c.STELLA_S3_SECRET_ACCESS_KEY,
      forcePathStyle: c.STELLA_S3_FORCE_PATH_STYLE,
      replicaBucket: c.STELLA_REPLICA_BUCKET,
    };
  } else {
    blob = { kind: 'fs', path: resolve(c.STELLA_BLOB_PATH ?? join(dataDir, 'evidence')), replicaPath: c.STELLA_REPLICA_PATH && resolve(c.STELLA_REPLICA_PATH) };
  }
  const witnesses = c.STELLA_WITNESS_KEYS.split(',')
    .map((w) => w.trim())
    .filter(Boolean);
  if (c.STELLA_WITNESS_QUORUM > witnesses.length)
    throw new ConfigError('STELLA_WITNESS_QUORUM', `${c.STELLA_WITNESS_QUORUM} witnesses required but STELLA_WITNESS_KEYS lists ${witnesses.length}`);
  return {
    dataDir,
    tenant: c.STELLA_TENANT,
    temporal: {
      address: temporalAddress,
      namespace: c.STELLA_TEMPORAL_NAMESPACE ?? profile.namespace ?? 'default',
      taskQueue: c.STELLA_TASK_QUEUE,
      rpcTimeoutMs: parseDuration(c.STELLA_TEMPORAL_RPC_TIMEOUT),
      uiUrl: c.STELLA_TEMPORAL_UI_URL.replace(/\/+$/, ''),
      profile: { name: profile.name, apiKey: profile.apiKey, tls: profile.tls, grpcMeta: profile.grpcMeta },
    },
    worker: {
      queues: [...new Set(c.STELLA_WORKER_QUEUES.split(','))] as ('control' | 'heavy')[],
      controlConcurrency: c.STELLA_WORKER_CONTROL_CONCURRENCY,
      heavyConcurrency: c.STELLA_WORKER_HEAVY_CONCURRENCY,
      ...(c.STELLA_WORKER_DEPLOYMENT
        ? { deployment: { deploymentName: c.STELLA_WORKER_DEPLOYMENT, buildId: c.STELLA_WORKER_BUILD_ID ?? packageVersion() } }
        : {}),
    },
    databaseUrl: c.DATABASE_URL,
    blob,
    api: {
      host: c.STELLA_API_HOST,
      port: c.STELLA_API_PORT,
      url: c.STELLA_API_URL ?? `http://${c.STELLA_API_HOST === '0.0.0.0' ? '127.0.0.1' : c.STELLA_API_HOST}:${c.STELLA_API_PORT}`,
      token: c.STELLA_TOKEN,
    },
    keysDir: resolve(c.STELLA_KEYS_DIR ?? join(dataDir, 'keys')),
    maxUploadBytes: c.STELLA_MAX_UPLOAD_BYTES,
    maxDocumentBytes: c.STELLA_MAX_DOCUMENT_BYTES,
    logLevel: c.STELLA_LOG_LEVEL,
    telemetry: {
      metricsCacheSeconds: c.STELLA_METRICS_CACHE_SECONDS,
      workerHttpPort: c.STELLA_WORKER_HTTP_PORT,
      sdkMetricsAddress: c.STELLA_SDK_METRICS_ADDRESS,
      otlpEndpoint: c.STELLA_OTLP_ENDPOINT,
    },
    schedules: {
      enabled: c.STELLA_SCHEDULES,
      anchorInterval: c.STELLA_ANCHOR_INTERVAL,
      verifyMode: c.STELLA_VERIFY_SCHEDULE_MODE,
      verifySampleRate: c.STELLA_VERIFY_SAMPLE_RATE,
      replayLatestN: c.STELLA_REPLAY_VERIFY_LATEST_N,
    },
    trustedRootPack: c.STELLA_TRUSTED_ROOTPACK && resolve(c.STELLA_TRUSTED_ROOTPACK),
    sigstoreTrustedRoot: c.STELLA_SIGSTORE_TRUSTED_ROOT && resolve(c.STELLA_SIGSTORE_TRUSTED_ROOT),
    anchoring: {
      origin: c.STELLA_CHECKPOINT_ORIGIN,
      tsaUrl: c.STELLA_TSA_URL,
      tsaCaFile: c.STELLA_TSA_CA_FILE && resolve(c.STELLA_TSA_CA_FILE),
      witnesses,
      witnessQuorum: c.STELLA_WITNESS_QUORUM,
    },
    registry: {
      authFile: c.STELLA_REGISTRY_AUTH_FILE && resolve(c.STELLA_REGISTRY_AUTH_FILE),
      insecureRegistries: c.STELLA_INSECURE_REGISTRIES.split(',')
        .map((h) => h.trim())
        .filter(Boolean),
      layerCacheDir: c.STELLA_LAYER_CACHE_DIR && resolve(c.STELLA_LAYER_CACHE_DIR),
      layerCacheMaxBytes: c.STELLA_LAYER_CACHE_MAX_BYTES,
    },
    identity: {
      file: c.STELLA_IDENTITY_FILE && resolve(c.STELLA_IDENTITY_FILE),
      login: { issuer: c.STELLA_OIDC_ISSUER, clientId: c.STELLA_OIDC_CLIENT_ID, scope: c.STELLA_OIDC_SCOPE },
    },
    dev: {
      temporalBin: c.STELLA_TEMPORAL_BIN,
      temporalPort: c.STELLA_DEV_TEMPORAL_PORT,
      temporalUiPort: c.STELLA_DEV_TEMPORAL_UI_PORT,
      pgPort: c.STELLA_DEV_PG_PORT,
    },
    auth: {
      publicUrl: c.STELLA_API_PUBLIC_URL,
      dpopIatWindowSeconds: c.STELLA_DPOP_IAT_WINDOW,
      dpopNonce: c.STELLA_DPOP_NONCE,
      rateLimitPerMinute: c.STELLA_API_RATE_LIMIT,
    },
    backup: {
      dir: c.STELLA_BACKUP_DIR && S3_URL_RE.test(c.STELLA_BACKUP_DIR) ? c.STELLA_BACKUP_DIR : resolve(c.STELLA_BACKUP_DIR ?? join(dataDir, 'backups')),
      schedule: c.STELLA_BACKUP_SCHEDULE,
      cron: c.STELLA_BACKUP_CRON,
      s3: {
        endpoint: c.STELLA_S3_ENDPOINT,
        region: c.STELLA_S3_REGION,
        accessKeyId: c.STELLA_S3_ACCESS_KEY_ID,
        secretAccessKey: c.STELLA_S3_SECRET_ACCESS_KEY,
        forcePathStyle: c.STELLA_S3_FORCE_PATH_STYLE,
      },
    },
  };
}

/** The build id Worker Versioning uses when STELLA_WORKER_BUILD_ID is unset. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'dev';
  }
}

export { parseDuration } from './lib/format';
