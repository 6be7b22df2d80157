import { createServer, globalAgent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ApiClient } from '../src/cli/client';
import { CliError, EXIT } from '../src/cli/exit';

// The CLI's API client speaks node:http (not fetch): what it sends and how it reads answers, on a
// local server that records each request.
type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
const routes = new Map<string, Handler>();
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];
const servers: Server[] = [];

async function serve(): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const h = routes.get(`${req.method} ${req.url?.split('?')[0]}`);
      if (h) h(req, body, res);
      else res.writeHead(404, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ code: 'NOT_FOUND', detail: `no ${req.url}` }));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let url = '';
let other = '';
beforeAll(async () => {
  url = await serve();
  other = await serve();
});
afterAll(() => {
  for (const s of servers) s.close();
});

const client = (token = 'tok') => new ApiClient({ apiUrl: url, token, tenant: 'acme' });
const json = (res: ServerResponse, status: number, v: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));

describe('CLI API client (node:http)', () => {
  it('sends the bearer token, tenant and JSON body; parses the answer with the contract schema', async () => {
    routes.set('POST /things', (_req, body, res) => json(res, 201, { got: JSON.parse(body) }));
    const r = await client().call(z.object({ got: z.object({ a: z.number() }) }), 'POST', '/things', { a: 1 });
    expect(r).toEqual({ got: { a: 1 } });
    const req = seen.at(-1)!;
    expect(req.headers.authorization).toBe('Bearer tok');
    expect(req.headers['x-stella-tenant']).toBe('acme');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['content-length']).toBe(String(Buffer.byteLength('{"a":1}')));
  });

  it('an answer that does not match the schema, and API errors, fail with the reason and exit code', async () => {
    routes.set('GET /odd', (_req, _b, res) => json(res, 200, { a: 'x' }));
    await expect(client().call(z.object({ a: z.number() }), 'GET', '/odd')).rejects.toThrow(/^unexpected answer from GET \/odd: /);
    const e = await client()
      .get('/missing')
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).message).toBe('no /missing');
    expect((e as CliError).exitCode).toBe(EXIT.NOT_FOUND);
    routes.set('GET /busy', (_req, _b, res) => res.writeHead(503, 'Service Unavailable').end('not json'));
    await expect(client().get('/busy')).rejects.toMatchObject({ message: 'Service Unavailable', exitCode: EXIT.FAILURE });
    routes.set('GET /who', (_req, _b, res) => json(res, 401, { code: 'UNAUTHENTICATED', detail: 'token expired' }));
    await expect(client().get('/who')).rejects.toMatchObject({ message: 'token expired', exitCode: EXIT.UNAUTHORIZED });
  });

  it('a 204 is undefined and frees its connection (a busy socket would keep the CLI from exiting)', async () => {
    routes.set('DELETE /x', (_req, _b, res) => res.writeHead(204).end());
    expect(await client().json('DELETE', '/x')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 50));
    const host = new URL(url).host;
    expect(Object.keys(globalAgent.sockets).filter((k) => k.startsWith(host))).toEqual([]);
  });

  it('streams an upload and a download', async () => {
    routes.set('POST /up', (req, body, res) => json(res, 200, { n: body.length, chunked: req.headers['transfer-encoding'] ?? null }));
    const up = await client().raw('POST', '/up', { body: Readable.from(['ab', 'cd', 'e']), headers: { 'content-type': 'application/octet-stream' } });
    expect(await up.json()).toEqual({ n: 5, chunked: 'chunked' });
    routes.set('GET /down', (_req, _b, res) => {
      res.writeHead(200, { 'x-stella-pack-items': '3' });
      res.write('x'.repeat(100_000));
      res.end('y');
    });
    const down = await client().raw('GET', '/down');
    expect(down.headers.get('X-Stella-Pack-Items')).toBe('3');
    expect(down.headers.get('x-absent')).toBeNull();
    let n = 0;
    for await (const c of down.body) n += (c as Buffer).length;
    expect(n).toBe(100_001);
  });

  it('follows redirects, without credentials to another origin', async () => {
    routes.set('GET /old', (_req, _b, res) => res.writeHead(307, { location: '/new' }).end());
    routes.set('GET /new', (req, _b, res) => json(res, 200, { auth: req.headers.authorization ?? null }));
    expect(await client().get('/old')).toEqual({ auth: 'Bearer tok' });
    routes.set('GET /away', (_req, _b, res) => res.writeHead(302, { location: `${other}/new` }).end());
    expect(await client().get('/away')).toEqual({ auth: null });
  });

  it('says why it cannot reach the API: refused, unknown host, timeout (as fetch() worded them)', async () => {
    const refused = new ApiClient({ apiUrl: 'http://127.0.0.1:59998' });
    await expect(refused.get('/x')).rejects.toMatchObject({
      message: 'cannot reach the stella API at http://127.0.0.1:59998 (ECONNREFUSED); is the stack up? (stella dev up)',
      exitCode: EXIT.UNAVAILABLE,
    });
    await expect(new ApiClient({ apiUrl: 'http://no-such-host.invalid' }).get('/x')).rejects.toThrow(/\(ENOTFOUND\)/);
    routes.set('POST /slow', () => {}); // never answers
    await expect(client().json('POST', '/slow', {}, { timeoutMs: 200 })).rejects.toMatchObject({
      message: `cannot reach the stella API at ${url} (The operation was aborted due to timeout); is the stack up? (stella dev up)`,
      exitCode: EXIT.UNAVAILABLE,
    });
  });
});
