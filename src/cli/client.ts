import { existsSync, readFileSync } from 'node:fs';
import { type IncomingMessage, type RequestOptions, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { formatZodError } from '../lib/zod';
import { defaultDataDir } from '../config';
import { CliError, EXIT, API_CODE_TO_EXIT } from './exit';

export interface CliConnection {
  apiUrl: string;
  token?: string;
  tenant?: string;
  /** Where the CLI keeps its DPoP key (the data dir). */
  dataDir?: string;
}

/** The `cnf.jkt` of a token (read without verifying: the API verifies), or undefined for a bearer token. */
export function tokenJkt(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { cnf?: { jkt?: unknown } };
    return typeof payload.cnf?.jkt === 'string' ? payload.cnf.jkt : undefined;
  } catch {
    return undefined;
  }
}

/** Where `stella dev up` leaves the API URL and a dev token for the CLI. */
export function cliStatePath(dataDir = defaultDataDir()): string {
  return join(dataDir, 'cli.json');
}

export function resolveConnection(flags: { apiUrl?: string; token?: string; tenant?: string }): CliConnection {
  let file: Partial<CliConnection> = {};
  const p = cliStatePath();
  if (existsSync(p)) {
    try {
      file = JSON.parse(readFileSync(p, 'utf8'));
    } catch {
      throw new CliError(`${p} is not valid JSON`, EXIT.USAGE);
    }
  }
  const apiUrl = flags.apiUrl || process.env.STELLA_API_URL || file.apiUrl || 'http://127.0.0.1:8787';
  return {
    apiUrl: apiUrl.replace(/\/$/, ''),
    token: flags.token || process.env.STELLA_TOKEN || file.token,
    tenant: flags.tenant || process.env.STELLA_TENANT || undefined,
    dataDir: defaultDataDir(),
  };
}

export class ApiClient {
  /** The last DPoP-Nonce the API handed out (RFC 9449 §8), sent in the next proof. */
  private nonce: string | undefined;

  constructor(private readonly conn: CliConnection) {}

  /** Authorization (Bearer, or DPoP with a fresh proof by the CLI's key for a DPoP-bound token) and tenant headers. */
  private async headers(method: string, url: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
    const h: Record<string, string> = { ...extra };
    const token = this.conn.token;
    const jkt = token ? tokenJkt(token) : undefined;
    if (token && jkt) {
      const dataDir = this.conn.dataDir ?? defaultDataDir();
      // jose is loaded only for DPoP-bound tokens: plain Bearer calls start faster without it.
      const { dpopProof, dpopThumbprint } = await import('./dpop');
      if ((await dpopThumbprint(dataDir)) !== jkt) {
        throw new CliError(
          `the token is bound to another DPoP key than this CLI's (${dataDir}/dpop-key.json); mint one with stella auth token --dpop`,
          EXIT.UNAUTHORIZED,
        );
      }
      h.authorization = `DPoP ${token}`;
      h.dpop = await dpopProof(dataDir, method, url, token, this.nonce);
    } else if (token) h.authorization = `Bearer ${token}`;
    if (this.conn.tenant) h['x-stella-tenant'] = this.conn.tenant;
    return h;
  }

  private async send(method: string, url: string, init: { body?: string | Uint8Array | Readable; headers?: Record<string, string>; timeoutMs?: number }) {
    const res = await httpSend(method, url, await this.headers(method, url, init.headers), init.body, init.timeoutMs ?? 600_000);
    const nonce = res.headers.get('dpop-nonce');
    const wantsNonce = res.status === 401 && /error="use_dpop_nonce"/.test(res.headers.get('www-authenticate') ?? '');
    if (nonce) this.nonce = nonce;
    if (wantsNonce && nonce !== null && !(init.body instanceof Readable)) {
      res.body.resume(); // the retry replaces this answer
      return { res, retry: true };
    }
    return { res, retry: false };
  }

  async raw(
    method: string,
    path: string,
    init: { body?: string | Uint8Array | Readable; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<ApiResponse> {
    let res: ApiResponse;
    try {
      const url = `${this.conn.apiUrl}${path}`;
      const first = await this.send(method, url, init);
      // The API asked for its nonce: once more with it (a streamed body cannot be sent twice).
      res = first.retry ? (await this.send(method, url, init)).res : first.res;
    } catch (e) {
      if (e instanceof CliError) throw e;
      const cause = (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new CliError(`cannot reach the stella API at ${this.conn.apiUrl} (${cause}); is the stack up? (stella dev up)`, EXIT.UNAVAILABLE);
    }
    if (!res.ok) {
      let code = 'HTTP_' + res.status;
      let message = res.statusText;
      try {
        // RFC 9457 problem details ({ code, detail, ... }); older servers answered { error: { code, message } }.
        const body = (await res.json()) as { code?: string; detail?: string; title?: string; error?: { code?: string; message?: string } };
        code = body.code ?? body.error?.code ?? code;
        message = body.detail ?? body.error?.message ?? body.title ?? message;
      } catch {
        /* non-JSON error body */
      }
      const exit = res.status === 401 ? EXIT.UNAUTHORIZED : (API_CODE_TO_EXIT[code] ?? (res.status === 404 ? EXIT.NOT_FOUND : EXIT.FAILURE));
      throw new CliError(message, exit);
    }
    return res;
  }

  async json<T = unknown>(method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
    const res = await this.raw(method, path, {
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      timeoutMs: opts.timeoutMs,
    });
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  /**
   * Calls the API and parses the answer with the route's contract schema (src/contracts), so
   * nothing untyped crosses into the CLI; an answer that does not match is a clear failure.
   */
  async call<S extends z.ZodType>(schema: S, method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<z.infer<S>> {
    const data = await this.json<unknown>(method, path, body, opts);
    const r = schema.safeParse(data);
    if (!r.success) throw new CliError(`unexpected answer from ${method} ${path}: ${formatZodError(r.error, 'response')}`, EXIT.FAILURE);
    return r.data;
  }

  get<T = unknown>(path: string) {
    return this.json<T>('GET', path);
  }
  post<T = unknown>(path: string, body: unknown = {}, opts?: { timeoutMs?: number }) {
    return this.json<T>('POST', path, body, opts);
  }
}

/**
 * An answer of the API: status, headers, and the body as a Node stream (read once, with json(),
 * text() or by piping `body`).
 */
export interface ApiResponse {
  status: number;
  statusText: string;
  ok: boolean;
  headers: { get(name: string): string | null };
  body: Readable;
  json(): Promise<unknown>;
  text(): Promise<string>;
}

/** How fetch() words a request that ran out of time; kept so messages stay the same. */
const TIMEOUT_MESSAGE = 'The operation was aborted due to timeout';
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * One HTTP request with node:http (node:https for https URLs). The CLI makes one or two calls per
 * run, and fetch() would first load and initialise undici (and compile its llhttp wasm), which
 * costs more than the call: node:http is already part of Node's start-up snapshot. Behaves like the
 * fetch() it replaces where the CLI can tell: follows redirects (not with a streamed body, and
 * without credentials to another origin), one timeout for the whole exchange including the body.
 */
async function httpSend(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: string | Uint8Array | Readable | undefined,
  timeoutMs: number,
  redirects = 0,
): Promise<ApiResponse> {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('fetch failed'); // fetch()'s words for it
  const request = u.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  const h: Record<string, string> = { accept: '*/*', ...headers };
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  if (payload && !(payload instanceof Readable)) h['content-length'] = String(payload.byteLength);
  const options: RequestOptions = { method, headers: h };
  const msg = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(u, options, resolve);
    // Like AbortSignal.timeout(): the whole exchange, body included, fails with the same message.
    let answer: IncomingMessage | undefined;
    const timer = setTimeout(() => (answer ?? req).destroy(Object.assign(new Error(TIMEOUT_MESSAGE), { name: 'TimeoutError' })), timeoutMs);
    timer.unref();
    // on, not once: an upload can fail after the answer came (a second error must not be unhandled).
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.once('response', (res: IncomingMessage) => {
      answer = res;
      res.on('error', () => {}); // whoever reads the body sees its errors; one nobody reads must not crash the CLI
      res.once('close', () => clearTimeout(timer));
    });
    if (payload instanceof Readable) {
      payload.on('error', (e) => req.destroy(e));
      payload.pipe(req);
    } else req.end(payload);
  });
  const status = msg.statusCode ?? 0;
  // A body nobody reads keeps its socket busy, and a busy socket keeps the CLI from exiting.
  if (status === 204 || status === 304) msg.resume();
  const location = msg.headers.location;
  if (REDIRECTS.has(status) && location && !(body instanceof Readable)) {
    msg.resume();
    if (redirects >= 20) throw new Error('redirect count exceeded');
    const next = new URL(location, u);
    const toGet = status === 303 || ((status === 301 || status === 302) && method === 'POST');
    const nextHeaders = { ...headers };
    if (toGet) for (const k of Object.keys(nextHeaders)) if (/^content-/i.test(k)) delete nextHeaders[k];
    if (next.origin !== u.origin) for (const k of Object.keys(nextHeaders)) if (/^(authorization|dpop|cookie)$/i.test(k)) delete nextHeaders[k];
    return httpSend(toGet ? 'GET' : method, next.href, nextHeaders, toGet ? undefined : body, timeoutMs, redirects + 1);
  }
  const text = async () => {
    const chunks: Buffer[] = [];
    for await (const c of msg) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  return {
    status,
    statusText: msg.statusMessage ?? '',
    ok: status >= 200 && status < 300,
    headers: {
      get: (name) => {
        const v = msg.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      },
    },
    body: msg,
    text,
    json: async () => JSON.parse(await text()),
  };
}

export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== false) u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}
