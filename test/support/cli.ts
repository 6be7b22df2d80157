import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

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
