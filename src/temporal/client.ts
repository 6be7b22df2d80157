import { Client, Connection, type ConnectionOptions, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { toClientOptions } from '@temporalio/envconfig';
import type { StellaConfig } from '../config';
import { SEARCH_ATTRIBUTES } from './names';

export interface TemporalHandles {
  connection: Connection;
  client: Client;
  namespace: string;
  taskQueue: string;
}

/** Calls that wait for something by design (long polls, updates awaiting their result): no short deadline. */
const LONG_POLLS = /\/(GetWorkflowExecutionHistory|PollWorkflowExecutionUpdate|UpdateWorkflowExecution|Poll\w+TaskQueue)$/;

type Interceptor = NonNullable<ConnectionOptions['interceptors']>[number];

/**
 * Every other call (describe, query, list, start, signal…) gets a deadline unless the caller set
 * one, so a Temporal that is down answers DEADLINE_EXCEEDED (an API 503) instead of the client
 * retrying UNAVAILABLE for a long time. Outermost, so the retries share the one deadline.
 */
export function rpcDeadlineInterceptor(ms: number): Interceptor {
  // nextCall's InterceptingCall is what grpc-js expects back; its declared type is narrower.
  type Call = ReturnType<Interceptor>;
  return (options, nextCall) => {
    const path = String((options as { method_definition?: { path?: string } }).method_definition?.path ?? '');
    if (options.deadline || LONG_POLLS.test(path)) return nextCall(options) as Call;
    return nextCall({ ...options, deadline: Date.now() + ms }) as Call;
  };
}

/**
 * TLS, API key and gRPC metadata of the Temporal profile (TEMPORAL_TLS*, TEMPORAL_API_KEY, temporal.toml),
 * as both the client and the worker's native connection take them. Reads the certificate files.
 */
export function temporalSecurity(cfg: Pick<StellaConfig, 'temporal'>): Pick<ConnectionOptions, 'tls' | 'metadata'> & { apiKey?: string } {
  const p = cfg.temporal.profile;
  let o: ReturnType<typeof toClientOptions>['connectionOptions'];
  try {
    o = toClientOptions({ apiKey: p.apiKey, tls: p.tls, grpcMeta: p.grpcMeta }).connectionOptions;
  } catch (e) {
    throw new Error(`Temporal TLS settings: cannot read a certificate or key (${(e as Error).message}); check TEMPORAL_TLS_*_PATH`);
  }
  return {
    ...(o.tls !== undefined ? { tls: o.tls } : {}),
    ...(typeof o.apiKey === 'string' ? { apiKey: o.apiKey } : {}),
    ...(o.metadata && Object.keys(o.metadata).length ? { metadata: o.metadata } : {}),
  };
}

/** One line saying where stella connects and how (no secrets): `host:7233 namespace ns (TLS, CA ca.pem, client cert, API key)`. */
export function describeTemporalTarget(cfg: Pick<StellaConfig, 'temporal'>): string {
  const { tls, apiKey, name } = cfg.temporal.profile;
  const on = tls ? !tls.disabled : apiKey !== undefined;
  const parts = [on ? 'TLS' : 'plaintext'];
  const src = (d: unknown) => (d && typeof d === 'object' && 'path' in d ? String(d.path) : 'inline data');
  if (on && tls?.serverCACert) parts.push(`CA ${src(tls.serverCACert)}`);
  if (on && tls?.clientCert) parts.push(`client cert ${src(tls.clientCert)}`);
  if (on && tls?.serverName) parts.push(`server name ${tls.serverName}`);
  if (apiKey !== undefined) parts.push('API key');
  if (name) parts.push(`profile ${name}`);
  return `${cfg.temporal.address ?? '(no address)'} namespace ${cfg.temporal.namespace} (${parts.join(', ')})`;
}

/** Connection options of the API's and CLI's Temporal client: TLS/API key, the RPC deadline, then the SDK's default retries. */
export function temporalConnectionOptions(cfg: Pick<StellaConfig, 'temporal'>, address = cfg.temporal.address): ConnectionOptions {
  return {
    address,
    ...temporalSecurity(cfg),
    connectTimeout: '10s',
    interceptors: [rpcDeadlineInterceptor(cfg.temporal.rpcTimeoutMs), makeGrpcRetryInterceptor(defaultGrpcRetryOptions())],
  };
}

/**
 * gRPC reports a refused TLS handshake only as "failed to connect before the deadline": repeat
 * the handshake with node:tls and the same trust settings to learn why (null when it succeeds).
 */
export async function probeTls(cfg: Pick<StellaConfig, 'temporal'>): Promise<string | null> {
  const tlsCfg = temporalSecurity(cfg).tls;
  if (!tlsCfg || !cfg.temporal.address) return null;
  const t = typeof tlsCfg === 'object' ? tlsCfg : {};
  const [host, port] = [cfg.temporal.address.replace(/:\d+$/, ''), Number(cfg.temporal.address.split(':').pop())];
  const { connect } = await import('node:tls');
  return new Promise((resolve) => {
    const s = connect({
      host,
      port,
      ALPNProtocols: ['h2'],
      servername: t.serverNameOverride ?? (/^[\d.]+$/.test(host) ? undefined : host),
      ...(t.serverRootCACertificate ? { ca: Buffer.from(t.serverRootCACertificate) } : {}),
      ...(t.clientCertPair ? { cert: Buffer.from(t.clientCertPair.crt), key: Buffer.from(t.clientCertPair.key) } : {}),
      timeout: 5000,
    });
    const done = (r: string | null) => {
      s.destroy();
      resolve(r);
    };
    s.once('secureConnect', () => done(null));
    s.once('error', (err) => done(err.message));
    s.once('timeout', () => done('no TLS answer within 5 s'));
  });
}

/** A connection failure as one line naming the target and the likely fix (TLS trust, API key). */
export function temporalConnectError(cfg: Pick<StellaConfig, 'temporal'>, e: unknown, tlsProblem?: string | null): Error {
  const msg = `${String((e as Error).message ?? e).split('\n')[0]!}${tlsProblem ? `; TLS handshake failed: ${tlsProblem}` : ''}`;
  const tlsHint = /certificate|self[- ]signed|handshake|tls|ssl|alpn/i.test(msg)
    ? '; TLS was refused: trust the server CA with TEMPORAL_TLS_SERVER_CA_CERT_PATH (and TEMPORAL_TLS_SERVER_NAME if the certificate names another host)'
    : /unauthenticated|permission|api key|unauthorized/i.test(msg)
      ? '; check TEMPORAL_API_KEY or the client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH/KEY_PATH)'
      : '';
  return new Error(`cannot connect to Temporal at ${describeTemporalTarget(cfg)}: ${msg}${tlsHint}`, { cause: e });
}

export async function connectTemporal(cfg: StellaConfig): Promise<TemporalHandles> {
  if (!cfg.temporal.address) {
    throw new Error(
      'no Temporal address: set STELLA_TEMPORAL_ADDRESS or TEMPORAL_ADDRESS, or a TEMPORAL_PROFILE (stella dev up starts a Temporal dev server and sets it for you)',
    );
  }
  let connection: Connection;
  try {
    connection = await Connection.connect(temporalConnectionOptions(cfg));
  } catch (e) {
    throw temporalConnectError(cfg, e, await probeTls(cfg).catch(() => null));
  }
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  return { connection, client, namespace: cfg.temporal.namespace, taskQueue: cfg.temporal.taskQueue };
}

/**
 * Registers our custom search attributes on the namespace (idempotent). The dev server gets
 * them on its command line too; a real cluster gets them here at first start.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = Object.entries(SEARCH_ATTRIBUTES).filter(([name]) => !(name in (existing.customAttributes ?? {})));
  if (!missing.length) return;
  const typeCode = { Keyword: 2, Text: 1, Int: 3, Datetime: 5, KeywordList: 7 } as const;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([n, t]) => [n, typeCode[t]])),
    });
  } catch (e) {
    if ((e as { code?: number }).code !== 6 /* gRPC ALREADY_EXISTS: a concurrent start added them */) throw e;
  }
}

/**
 * Start-up's registration: where the operator API is refused (Temporal Cloud, a locked-down
 * cluster) stella keeps starting and returns one warning line naming the attributes and how to add them.
 */
export async function ensureSearchAttributesBestEffort(connection: Connection, namespace: string): Promise<string | null> {
  try {
    await ensureSearchAttributes(connection, namespace);
    return null;
  } catch (e) {
    const list = Object.entries(SEARCH_ATTRIBUTES).map(([n, t]) => `${n} (${t})`);
    const tcld = Object.entries(SEARCH_ATTRIBUTES)
      .map(([n, t]) => `--sa "${n}=${t}"`)
      .join(' ');
    const why = String((e as Error).message ?? e).split('\n')[0];
    return (
      `could not register search attributes on namespace ${namespace} (${why}); add them once: ${list.join(', ')} ` +
      `with \`tcld namespace search-attributes add -n ${namespace} ${tcld}\`, the Temporal Cloud UI (Namespace → Search Attributes), ` +
      `or \`temporal operator search-attribute create\`; until then promotions cannot be filtered by them`
    );
  }
}
