/**
 * Error answers as RFC 9457 problem details (`application/problem+json`): `type`, `title`,
 * `status`, `detail`, `instance`, plus the stable `code` clients branch on (and any details the
 * error carries, as extension members). One shape for stella's errors and the framework's own
 * (404 route not found, 413, 415, 429, validation).
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The problem type URI of a code: stable (the README lists the codes). */
export const problemType = (code: string) => `urn:stella:problem:${code.toLowerCase().replace(/_/g, '-')}`;

/** The stable code of a framework or HTTP-level error, by status. */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'BAD_INPUT',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  409: 'CONFLICT',
  411: 'LENGTH_REQUIRED',
  413: 'TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'INTEGRITY',
  429: 'RATE_LIMITED',
  503: 'UNAVAILABLE',
};

/** The code for an error with this status whose own code is not one of ours (e.g. FST_ERR_CTP_BODY_TOO_LARGE). */
export function codeForStatus(status: number, own?: string): string {
  if (own && /^[A-Z][A-Z_]*$/.test(own) && !own.startsWith('FST_')) return own;
  return CODE_BY_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'BAD_REQUEST');
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  [extension: string]: unknown;
}

export function problem(req: FastifyRequest, status: number, code: string, detail: string, extensions: Record<string, unknown> = {}): Problem {
  // Extension members never override the standard members.
  return { ...extensions, type: problemType(code), title: STATUS_CODES[status] ?? 'Error', status, detail, instance: req.url.split('?')[0]!, code };
}

/** Sends a problem-details answer. */
export function sendProblem(
  reply: FastifyReply,
  req: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  extensions?: Record<string, unknown>,
): FastifyReply {
  return reply
    .status(status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problem(req, status, code, detail, extensions));
}
