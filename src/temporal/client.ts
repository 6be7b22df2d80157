import { Client, Connection, type ConnectionOptions, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
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

/** Connection options of the API's and CLI's Temporal client: the RPC deadline, then the SDK's default retries. */
export function temporalConnectionOptions(cfg: Pick<StellaConfig, 'temporal'>, address = cfg.temporal.address): ConnectionOptions {
  return {
    address,
    connectTimeout: '10s',
    interceptors: [rpcDeadlineInterceptor(cfg.temporal.rpcTimeoutMs), makeGrpcRetryInterceptor(defaultGrpcRetryOptions())],
  };
}

export async function connectTemporal(cfg: StellaConfig): Promise<TemporalHandles> {
  if (!cfg.temporal.address) throw new Error('STELLA_TEMPORAL_ADDRESS is not set (stella dev up starts a Temporal dev server and sets it for you)');
  const connection = await Connection.connect(temporalConnectionOptions(cfg));
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
  const typeCode = { Keyword: 2, Text: 1, Int: 3, Datetime: 5 } as const;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([n, t]) => [n, typeCode[t]])),
    });
  } catch (e) {
    if ((e as { code?: number }).code !== 6 /* gRPC ALREADY_EXISTS: a concurrent start added them */) throw e;
  }
}
