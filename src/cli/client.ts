import { existsSync, readFileSync } from 'node:fs';
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
    const res = await fetch(url, {
      method,
      headers: await this.headers(method, url, init.headers),
      body: init.body as never,
      signal: AbortSignal.timeout(init.timeoutMs ?? 600_000),
      ...(init.body instanceof Readable ? { duplex: 'half' } : {}),
    } as RequestInit);
    const nonce = res.headers.get('dpop-nonce');
    const wantsNonce = res.status === 401 && /error="use_dpop_nonce"/.test(res.headers.get('www-authenticate') ?? '');
    if (nonce) this.nonce = nonce;
    return { res, retry: wantsNonce && nonce !== null && !(init.body instanceof Readable) };
  }

  async raw(
    method: string,
    path: string,
    init: { body?: string | Uint8Array | Readable; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<Response> {
    let res: Response;
    try {
      const url = `${this.conn.apiUrl}${path}`;
      const first = await this.send(method, url, init);
      // The API asked for its nonce: once more with it (a streamed body cannot be sent twice).
      res = first.retry ? (await this.send(method, url, init)).res : first.res;
    } catch (e) {
      if (e instanceof CliError) throw e;
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
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

export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== false) u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}
