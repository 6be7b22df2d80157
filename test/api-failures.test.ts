/** Unexpected errors become a clear status without the driver's text (pure, no servers). */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { classifyFailure, portOf } from '../src/api/failures';

const pgError = (code: string, message: string) => Object.assign(new pg.DatabaseError(message, 0, 'error'), { code });
const sysError = (code: string, port: number) => Object.assign(new Error(`connect ${code} 127.0.0.1:${port}`), { code, port, address: '127.0.0.1' });

describe('classifyFailure', () => {
  it('PostgreSQL down or restarting is a 503 naming PostgreSQL, with Retry-After', () => {
    for (const e of [
      pgError('57P01', 'terminating connection due to administrator command'),
      pgError('08006', 'connection failure'),
      sysError('ECONNREFUSED', 5544),
      new Error('Connection terminated unexpectedly'),
    ]) {
      const f = classifyFailure(e, { postgres: 5544, temporal: 7233 });
      expect(f).toMatchObject({ status: 503, code: 'UNAVAILABLE', message: 'PostgreSQL is unavailable; retry later', retryAfter: 5 });
    }
  });

  it('a value PostgreSQL rejects is a 400 without the database text', () => {
    const f = classifyFailure(pgError('22P02', 'invalid input syntax for type bigint: "NaN"'));
    expect(f.status).toBe(400);
    expect(f.message).not.toMatch(/bigint|NaN|syntax/);
  });

  it('Temporal unreachable (gRPC UNAVAILABLE / DEADLINE_EXCEEDED, or its port refusing) is a 503 naming Temporal', () => {
    const service = Object.assign(new Error('14 UNAVAILABLE: No connection established'), {
      name: 'ServiceError',
      cause: Object.assign(new Error('x'), { code: 14, metadata: {} }),
    });
    expect(classifyFailure(service).message).toBe('Temporal is unavailable; retry later');
    expect(classifyFailure(sysError('ECONNREFUSED', 7233), { postgres: 5432, temporal: 7233 }).message).toBe('Temporal is unavailable; retry later');
  });

  it('an S3 server fault is a 503 naming the blob store', () => {
    const s3 = Object.assign(new Error('We encountered an internal error'), { name: 'InternalError', $fault: 'server', $metadata: { httpStatusCode: 500 } });
    expect(classifyFailure(s3)).toMatchObject({ status: 503, message: 'the blob store is unavailable; retry later' });
  });

  it('anything else is a 500 that points at the log, never the error text', () => {
    const f = classifyFailure(new TypeError("Cannot read properties of undefined (reading 'x')"));
    expect(f).toMatchObject({ status: 500, code: 'INTERNAL' });
    expect(f.message).not.toMatch(/undefined/);
  });

  it('finds the port of a database URL and a Temporal address', () => {
    expect(portOf('postgres://u:p@127.0.0.1:5544/db', 5432)).toBe(5544);
    expect(portOf('postgres://u@db/stella', 5432)).toBe(5432);
    expect(portOf('127.0.0.1:7233', 7233)).toBe(7233);
    expect(portOf(undefined, 1)).toBeUndefined();
  });
});
