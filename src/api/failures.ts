/**
 * What an unexpected error means for the caller. A dependency that is down is a 503 naming it
 * (with Retry-After), a value PostgreSQL rejects is a 400, anything else a 500 that points at the
 * server log. A driver's own text never reaches the client.
 */
import pg from 'pg';

export interface Failure {
  status: number;
  code: 'UNAVAILABLE' | 'BAD_INPUT' | 'INTERNAL';
  message: string;
  /** Seconds, for Retry-After on a 503. */
  retryAfter?: number;
}

const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);
const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;

type Dependency = 'PostgreSQL' | 'Temporal' | 'the blob store';

const unavailable = (dep: Dependency): Failure => ({ status: 503, code: 'UNAVAILABLE', message: `${dep} is unavailable; retry later`, retryAfter: 5 });

/** Walks an error's cause chain (Temporal and the AWS SDK wrap the transport error). */
function* chain(err: unknown): Generator<Record<string, unknown>> {
  let e = err as Record<string, unknown> | undefined;
  for (let i = 0; e && typeof e === 'object' && i < 8; i++) {
    yield e;
    e = e.cause as Record<string, unknown> | undefined;
  }
}

function postgresFailure(e: Record<string, unknown>): Failure | undefined {
  if (e instanceof pg.DatabaseError) {
    const state = String(e.code ?? '');
    if (state.startsWith('08') || state.startsWith('57P') || state.startsWith('53')) return unavailable('PostgreSQL');
    // Class 22 is "data exception": a value the caller supplied that the schema did not catch.
    if (state.startsWith('22')) return { status: 400, code: 'BAD_INPUT', message: 'a parameter has a value of the wrong type or range' };
    return undefined;
  }
  const msg = String(e.message ?? '');
  if (/Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(msg)) return unavailable('PostgreSQL');
  return undefined;
}

/** The failure an unexpected error means, given the ports of our dependencies. */
export function classifyFailure(err: unknown, ports: { postgres?: number; temporal?: number } = {}): Failure {
  for (const e of chain(err)) {
    const pgFailure = postgresFailure(e);
    if (pgFailure) return pgFailure;
    const name = String(e.name ?? '');
    if (name === 'ServiceError' || name === 'WorkflowUpdateRPCTimeoutOrCancelledError') {
      const grpc = (e.cause as { code?: number } | undefined)?.code;
      if (grpc === GRPC_UNAVAILABLE || grpc === GRPC_DEADLINE_EXCEEDED) return unavailable('Temporal');
    }
    if (typeof e.code === 'number' && (e.code === GRPC_UNAVAILABLE || e.code === GRPC_DEADLINE_EXCEEDED) && 'metadata' in e) return unavailable('Temporal');
    if (typeof e.$metadata === 'object' && (e.$fault === 'server' || name === 'TimeoutError')) return unavailable('the blob store');
    if (typeof e.code === 'string' && NETWORK_ERRNOS.has(e.code)) {
      const port = Number(e.port);
      if (port && port === ports.postgres) return unavailable('PostgreSQL');
      if (port && port === ports.temporal) return unavailable('Temporal');
      return unavailable('the blob store');
    }
  }
  return { status: 500, code: 'INTERNAL', message: 'internal error; the server log has the details' };
}

/** Port of a `postgres://…` URL or a Temporal `host:port` address, for attributing connection errors. */
export function portOf(address: string | undefined, dflt: number): number | undefined {
  if (!address) return undefined;
  try {
    const u = new URL(address.includes('://') ? address : `tcp://${address}`);
    return u.port ? Number(u.port) : dflt;
  } catch {
    return undefined;
  }
}
