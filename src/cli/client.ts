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
  };
}

export class ApiClient {
  constructor(private readonly conn: CliConnection) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.conn.token) h.authorization = `Bearer ${this.conn.token}`;
    if (this.conn.tenant) h['x-stella-tenant'] = this.conn.tenant;
    return h;
  }

  async raw(
    method: string,
    path: string,
    init: { body?: string | Uint8Array | Readable; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.conn.apiUrl}${path}`, {
        method,
        headers: this.headers(init.headers),
        body: init.body as never,
        signal: AbortSignal.timeout(init.timeoutMs ?? 600_000),
        ...(init.body instanceof Readable ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new CliError(`cannot reach the stella API at ${this.conn.apiUrl} (${cause}); is the stack up? (stella dev up)`, EXIT.UNAVAILABLE);
    }
    if (!res.ok) {
      let code = 'HTTP_' + res.status;
      let message = res.statusText;
      try {
        const body = (await res.json()) as { error?: { code?: string; message?: string } };
        code = body.error?.code ?? code;
        message = body.error?.message ?? message;
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
