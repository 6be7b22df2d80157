/**
 * The real cosign binary for the interop tests (.ci/run installs v2.6.5 with `go install`):
 * where to find it, how to run it, and the pipeline's step those tests imitate — `cosign attest`
 * of an SLSA v1 provenance into the registry.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const GOBIN = join(process.env.GOPATH ?? join(process.env.HOME ?? '/root', 'go'), 'bin');

/** $COSIGN_BIN, go install's bin directory, or PATH; undefined when there is none (the tests skip). */
export const COSIGN_BIN: string | undefined = [
  process.env.COSIGN_BIN,
  join(GOBIN, 'cosign'),
  '/root/go/bin/cosign',
  ...(process.env.PATH ?? '').split(':').map((d) => d && join(d, 'cosign')),
].find((p): p is string => !!p && existsSync(p));

export type CosignResult = { code: number; stdout: string; stderr: string };

/** Runs cosign in `cwd` with the key password given (never prompts); a non-zero exit is a result, not a throw. */
export function runCosign(args: string[], opts: { cwd: string; password: string; env?: Record<string, string> }): Promise<CosignResult> {
  if (!COSIGN_BIN) throw new Error('no cosign binary; .ci/run installs it (go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5)');
  const env = { ...process.env, COSIGN_PASSWORD: opts.password, COSIGN_YES: 'true', ...opts.env };
  return run(COSIGN_BIN, args, { cwd: opts.cwd, env, maxBuffer: 8 << 20 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );
}

/**
 * What a pipeline does after pushing: `cosign attest --key cosign.key` (in `cwd`) of its SLSA v1
 * provenance about the image `ref` (host/repo@digest), stored in the registry without a Rekor entry.
 */
export async function attestLikeAPipeline(ref: string, opts: { cwd: string; password: string; repository: string }): Promise<CosignResult> {
  const predicate = {
    buildDefinition: { buildType: 'https://ci.example/pipeline/v1', externalParameters: { repository: opts.repository } },
    runDetails: { builder: { id: 'https://ci.example/builder' } },
  };
  await writeFile(join(opts.cwd, 'provenance.json'), JSON.stringify(predicate));
  return runCosign(
    ['attest', '--key', 'cosign.key', '--type', 'slsaprovenance1', '--predicate', 'provenance.json', '--tlog-upload=false', '--allow-insecure-registry', ref],
    opts,
  );
}

/** The in-toto statement cosign printed, the first of its verified attestations. */
export interface VerifiedStatement {
  subject: { digest: Record<string, string> }[];
  [k: string]: unknown;
}

/**
 * `cosign verify-attestation --key <key> --type <type>` of `ref` (host/repo@digest) in a local
 * registry without Rekor; with `trustedRoot`, the referrer bundles (`--new-bundle-format`). The
 * result carries the first verified statement, decoded, when cosign accepted.
 */
export async function verifyAttestation(
  ref: string,
  opts: { cwd: string; password: string; key: string; type: string; trustedRoot?: string },
): Promise<CosignResult & { statement?: VerifiedStatement }> {
  const bundles = opts.trustedRoot ? ['--new-bundle-format', '--trusted-root', opts.trustedRoot] : [];
  const r = await runCosign(
    ['verify-attestation', ...bundles, '--key', opts.key, '--insecure-ignore-tlog', '--allow-insecure-registry', '--type', opts.type, ref],
    opts,
  );
  if (r.code !== 0) return r;
  const envelope = JSON.parse(r.stdout.trim().split('\n')[0]!) as { payload: string };
  return { ...r, statement: JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as VerifiedStatement };
}
