/**
 * cosign interop, both ways, with the real cosign binary (no registry: blobs and files):
 * - a cosign-made DSSE envelope (`keyid: ""`) and a cosign-made Sigstore bundle v0.3 are accepted
 *   by stella's import (API and CLI) once a promotion policy names the pipeline's cosign key as a
 *   `{pem}` signer, and meet that policy's gate; refused (nothing stored) before, or tampered;
 * - a stella-made attestation, exported as a bundle or a bare envelope, verifies with
 *   `cosign verify-blob-attestation --key` (stella's public key, written by `attest export --public-key`).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signAndStore } from '../src/core/attest/attest';
import { evaluateGates } from '../src/core/promotion/evaluate';
import { pemSignerKey, resolvePolicy, setPolicy } from '../src/core/promotion/policy';
import { makeStatement, SLSA_PROVENANCE_V1, subject } from '../src/crypto/intoto';
import { apiFor } from './support/api';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';
import { COSIGN_BIN, runCosign } from './support/cosign';
import { statements } from './support/promotion';

const run = promisify(execFile);
const COSIGN = COSIGN_BIN ?? 'cosign';
const haveCosign = await run(COSIGN, ['version']).then(
  () => true,
  () => false,
);
if (!haveCosign) console.warn(`cosign-interop: skipped — no cosign binary (${COSIGN}); .ci/run installs it`);

const TENANT = 'default';
const PASSWORD = 'interop-test';
/** cosign verifies new-format bundles against a trusted root; keyed bundles need none of its authorities. */
const EMPTY_TRUSTED_ROOT = { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1' };

describe.skipIf(!haveCosign)('cosign interop (real cosign binary, stella API and CLI)', () => {
  let h: Harness;
  let app: FastifyInstance;
  let auth: { authorization: string };
  let cli: Record<string, string>;
  let dir: string;
  let cosignKid: string;

  const cosign = (...args: string[]) =>
    runCosign(args, { cwd: dir, password: PASSWORD, env: { TUF_ROOT: join(dir, 'tuf') } }).then((r) => ({ code: r.code, out: `${r.stdout}${r.stderr}` }));
  /** cosign verify-blob-attestation of `file` with `key`: a DSSE envelope, or a Sigstore bundle (against the empty trusted root: keyed, no tlog). */
  const verifyBlobAttestation = (key: string, att: { envelope: string } | { bundle: string }, file: string) =>
    cosign(
      'verify-blob-attestation',
      '--key',
      key,
      ...('bundle' in att ? ['--bundle', att.bundle, '--new-bundle-format', '--trusted-root', 'trusted_root.json'] : ['--signature', att.envelope]),
      '--type',
      'slsaprovenance1',
      '--insecure-ignore-tlog',
      file,
    );
  /** A fresh blob (the "artifact") and its sha256 digest. */
  const blob = () => {
    const bytes = randomBytes(64);
    const file = join(dir, `blob-${bytes.subarray(0, 4).toString('hex')}`);
    writeFileSync(file, bytes);
    return { file, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
  };
  /** cosign attest-blob of an SLSA v1 provenance about `b`: the DSSE envelope, or a Sigstore bundle v0.3. */
  const cosignAttest = async (b: { file: string; digest: string }, form: 'envelope' | 'bundle', key = 'cosign.key') => {
    const pred = join(dir, `pred-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(pred, JSON.stringify(statements.provenance(b.digest).predicate));
    const out = join(dir, `att-${randomBytes(4).toString('hex')}.json`);
    const where = form === 'bundle' ? ['--bundle', out, '--new-bundle-format'] : ['--output-signature', out];
    const r = await cosign('attest-blob', '--key', key, '--predicate', pred, '--type', 'slsaprovenance1', ...where, '--tlog-upload=false', '--yes', b.file);
    expect(r.code, r.out).toBe(0);
    return out;
  };
  const importRaw = async (bytes: Buffer) => {
    const r = await app.inject({ method: 'POST', url: '/attestations/import', headers: { ...auth, 'content-type': 'application/json' }, payload: bytes });
    return { status: r.statusCode, body: r.json() as any };
  };
  const itemCount = async () => Number((await h.ctx.db.query('SELECT count(*) AS n FROM evidence_items WHERE tenant_id=$1', [TENANT])).rows[0].n);
  const policyNamingCosignKey = () =>
    `requirements:\n  - kind: attestation\n    signers:\n      - pem: |\n${readFileSync(join(dir, 'cosign.pub'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => `          ${l}`)
      .join('\n')}\n`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cosign-'));
    h = await harness({ blob: 'fs' });
    app = await apiFor(h);
    cli = await cliEnvFor(h, app, 'ci-pipeline');
    auth = { authorization: `Bearer ${cli.STELLA_TOKEN}` };
    expect((await cosign('generate-key-pair')).code).toBe(0);
    expect((await cosign('generate-key-pair', '--output-key-prefix', 'other')).code).toBe(0);
    writeFileSync(join(dir, 'trusted_root.json'), JSON.stringify(EMPTY_TRUSTED_ROOT));
    cosignKid = pemSignerKey(readFileSync(join(dir, 'cosign.pub'), 'utf8'))!.kid;
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('a cosign-made envelope (keyid "") is refused until a policy names the cosign key; then it is stored, verifies and meets that policy\'s gate', async () => {
    const b = blob();
    const envFile = await cosignAttest(b, 'envelope');
    const env = JSON.parse(readFileSync(envFile, 'utf8'));
    expect(env.signatures[0].keyid).toBe(''); // what cosign writes
    expect(JSON.parse(Buffer.from(env.payload, 'base64').toString())._type).toBe('https://in-toto.io/Statement/v0.1');

    // No trusted key yet: refused, one line, nothing stored.
    const before = await itemCount();
    const refused = await runStella(cli, 'attest', 'import', envFile);
    expect(refused.code).toBe(4); // integrity
    expect(refused.stderr).toMatch(
      /signature refused: no valid signature by a trusted key.*\(no keyid\): signature has no keyid and verifies under none of the \d+ trusted keys/,
    );
    expect(await itemCount()).toBe(before);

    // The policy names the pipeline's cosign key: the same file imports, signed by that key's kid.
    await setPolicy(h.ctx.db, { tenant: TENANT, env: 'cosign', text: policyNamingCosignKey(), actor: 'test' });
    const imported = await runStella(cli, 'attest', 'import', envFile, '--format', 'json');
    expect(imported.code, imported.stderr).toBe(0);
    const r = JSON.parse(imported.stdout);
    expect(r).toMatchObject({ created: true, predicateType: SLSA_PROVENANCE_V1, subject: b.digest, signer: cosignKid, format: 'dsse' });
    // Stored as uploaded: the evidence is cosign's exact bytes.
    expect((await h.ctx.evidence.read(TENANT, r.id)).equals(readFileSync(envFile))).toBe(true);

    const verified = await runStella(cli, 'attest', 'verify', r.id);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toContain(`VALID: slsa-provenance attestation ${r.id}`);
    expect(verified.stdout).toMatch(new RegExp(`signer\\s+${cosignKid}`));

    const policy = (await resolvePolicy(h.ctx.db, TENANT, 'cosign')).policy;
    const [gate] = await evaluateGates(h.ctx, { tenant: TENANT, artifactDigest: b.digest, imageRef: null, policy });
    expect(gate).toMatchObject({ passed: true, evidence: { id: r.id, provenance: 'signed', signer: cosignKid } });
    expect(gate!.detail).toContain(`trusted as pem ${cosignKid}`);
  });

  it('a cosign-made Sigstore bundle v0.3 imports as its DSSE envelope and meets the gate; tampered, foreign-key and malformed input is refused with the reason, nothing stored', async () => {
    await setPolicy(h.ctx.db, { tenant: TENANT, env: 'cosign', text: policyNamingCosignKey(), actor: 'test' });
    const b = blob();
    const bundleFile = await cosignAttest(b, 'bundle');
    const bundle = JSON.parse(readFileSync(bundleFile, 'utf8'));
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(bundle.verificationMaterial.publicKey.hint).toBeTruthy();

    const before = await itemCount();
    // Tampered: one byte of the signed payload changed.
    const tampered = structuredClone(bundle);
    const payload = Buffer.from(tampered.dsseEnvelope.payload, 'base64');
    payload[payload.length - 3] ^= 1;
    tampered.dsseEnvelope.payload = payload.toString('base64');
    const t = await importRaw(Buffer.from(JSON.stringify(tampered)));
    expect(t.status).toBe(422);
    expect(t.body.detail).toMatch(/signature refused.*verifies under none of the \d+ trusted keys.*nothing stored/);
    // Signed by a cosign key no policy or RootPack trusts.
    const foreign = await importRaw(readFileSync(await cosignAttest(b, 'envelope', 'other.key')));
    expect(foreign.status).toBe(422);
    expect(foreign.body.detail).toMatch(/no valid signature by a trusted key/);
    // Malformed bundle: names what is wrong.
    const noEnvelope = await importRaw(Buffer.from(JSON.stringify({ ...bundle, dsseEnvelope: undefined })));
    expect(noEnvelope.status).toBe(400);
    expect(noEnvelope.body.detail).toMatch(/Sigstore bundle is invalid.*nothing stored/);
    const otherMedia = await importRaw(Buffer.from(JSON.stringify({ ...bundle, mediaType: 'application/vnd.dev.sigstore.bundle.v9+json' })));
    expect(otherMedia.status).toBe(400);
    expect(otherMedia.body.detail).toMatch(
      /mediaType is "application\/vnd.dev.sigstore.bundle.v9\+json", expected application\/vnd.dev.sigstore.bundle.v0.3\+json/,
    );
    expect(await itemCount()).toBe(before);

    const ok = await runStella(cli, 'attest', 'import', bundleFile, '--format', 'json');
    expect(ok.code, ok.stderr).toBe(0);
    const r = JSON.parse(ok.stdout);
    expect(r).toMatchObject({ created: true, subject: b.digest, signer: cosignKid, format: 'sigstore-bundle' });
    const policy = (await resolvePolicy(h.ctx.db, TENANT, 'cosign')).policy;
    const [gate] = await evaluateGates(h.ctx, { tenant: TENANT, artifactDigest: b.digest, imageRef: null, policy });
    expect(gate).toMatchObject({ passed: true, evidence: { id: r.id, signer: cosignKid } });
  });

  it('a stella-made attestation, exported as a Sigstore bundle or a DSSE envelope, verifies with cosign verify-blob-attestation --key; another key does not', async () => {
    const b = blob();
    const st = makeStatement([subject(b.file, b.digest)], SLSA_PROVENANCE_V1, statements.provenance(b.digest).predicate);
    const stored = await signAndStore(h.ctx, { tenant: TENANT, statement: st, attests: [], actor: 'test' });

    const bundleFile = join(dir, 'stella.bundle.json');
    const envFile = join(dir, 'stella.dsse.json');
    const pub = join(dir, 'stella.pub');
    const ex = await runStella(cli, 'attest', 'export', stored.id, '--output', bundleFile, '--public-key', pub);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toContain(`wrote sigstore-bundle of attestation ${stored.id} to ${bundleFile}`);
    const bundle = JSON.parse(readFileSync(bundleFile, 'utf8'));
    expect(bundle).toMatchObject({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', verificationMaterial: { publicKey: { hint: stored.kid } } });
    expect(pemSignerKey(readFileSync(pub, 'utf8'))!.kid).toBe(stored.kid);
    expect((await runStella(cli, 'attest', 'export', stored.id, '--as', 'dsse', '--output', envFile)).code).toBe(0);
    // The bundle imports back as the very envelope stored (the hint names the key): no second item.
    const back = await runStella(cli, 'attest', 'import', bundleFile, '--format', 'json');
    expect(back.code, back.stderr).toBe(0);
    expect(JSON.parse(back.stdout)).toMatchObject({ id: stored.id, created: false, signer: stored.kid, format: 'sigstore-bundle' });

    const asBundle = await verifyBlobAttestation(pub, { bundle: bundleFile }, b.file);
    expect(asBundle.code, asBundle.out).toBe(0);
    expect(asBundle.out).toContain('Verified OK');
    const asEnvelope = await verifyBlobAttestation(pub, { envelope: envFile }, b.file);
    expect(asEnvelope.code, asEnvelope.out).toBe(0);
    expect(asEnvelope.out).toContain('Verified OK');

    // The independent verifier is not a rubber stamp: another key, or another blob, fails.
    const wrongKey = await verifyBlobAttestation('cosign.pub', { envelope: envFile }, b.file);
    expect(wrongKey.code).not.toBe(0);
    const wrongBlob = await verifyBlobAttestation(pub, { envelope: envFile }, blob().file);
    expect(wrongBlob.code).not.toBe(0);
  });
});
