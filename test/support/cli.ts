import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { TOKEN_PURPOSE } from '../../src/core/keys';
import { mintToken } from '../../src/crypto/tokens';
import type { Harness } from './context';

export const STELLA_BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'stella.mjs');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI binary asynchronously (the API it talks to may live in the test process). */
export function runStella(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [STELLA_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', rej);
    p.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * Serves an API on a free loopback port and returns the environment that points the CLI at it
 * with an admin token. The data dir is empty (no cli.json), so only these variables tell the CLI
 * where to go.
 */
export async function cliEnvFor(h: Harness, app: FastifyInstance, sub = 'cli-test'): Promise<Record<string, string>> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  const token = await mintToken(h.ctx.keys, { sub, tenant: 'default', scopes: ['admin'], ttlSeconds: 600 }, { purpose: TOKEN_PURPOSE });
  return { STELLA_API_URL: `http://127.0.0.1:${port}`, STELLA_TOKEN: token, STELLA_DATA_DIR: mkdtempSync(join(tmpdir(), 'cli-')), STELLA_TENANT: '' };
}
