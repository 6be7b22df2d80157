/**
 * Anchors anyone can verify (issue 18 item 5): every anchor is a C2SP checkpoint served with the
 * log in tlog-tiles layout; checked by an independent implementation (test/go/tlogcheck, built on
 * golang.org/x/mod/sumdb/note + tlog), RFC 3161 tokens from a real OpenSSL TSA checked with
 * `openssl ts -verify`, witness cosignatures with a k-of-n policy, and named tamper cases.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { anchorVerifyAll, createAnchor } from '../src/core/anchoring';
import { ALG_COSIGNATURE_V1, cosign, formatNote, formatVkey, parseNote, parseTilePath, tilePath } from '../src/merkle';
import { sha256Digest } from '../src/lib/hash';
import { apiFor, bearer } from './support/api';
import { exportEvidencePack } from '../src/core/backup/pack/export';
import { harness, type Harness } from './support/context';
import { cliEnvFor, runStella } from './support/cli';

const run = promisify(execFile);
let h: Harness;
let app: FastifyInstance;
let base: string;
let dir: string;
let tsa: Server;
let checker: string;
let cli: Record<string, string>;
const ART = sha256Digest('registry.example/app@standards');
const witnessKey = generateKeyPairSync('ed25519').privateKey;
const WITNESS = 'witness.example/w1';
const witnessVkey = formatVkey(WITNESS, ALG_COSIGNATURE_V1, Buffer.from(witnessKey.export({ format: 'jwk' }).x!, 'base64url'));

const ingest = async (n: number) => {
  for (let i = 0; i < n; i++) {
    await h.ctx.evidence.ingest({
      tenant: 'default',
      data: Buffer.from(`{"n":${i},"r":"${randomBytes(6).toString('hex')}"}`),
      kind: 'sbom',
      mediaType: 'application/json',
      subjects: [ART],
    });
  }
};

/** A test CA and a TSA certificate (EKU timeStamping) made by openssl, and `openssl ts -reply` behind HTTP. */
async function startTsa(d: string): Promise<{ url: string; caFile: string }> {
  const o = (args: string[]) => run('openssl', args, { cwd: d });
  await o([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=stella test TSA CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tsa.key', '-out', 'tsa.csr', '-subj', '/CN=stella test TSA']);
  writeFileSync(join(d, 'ext.cnf'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n');
  await o(['x509', '-req', '-in', 'tsa.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tsa.crt', '-days', '2', '-extfile', 'ext.cnf']);
  writeFileSync(join(d, 'serial'), '01\n');
  writeFileSync(
    join(d, 'tsa.cnf'),
    `[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = ${d}\nserial = $dir/serial\nsigner_cert = $dir/tsa.crt\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n` +
      'default_policy = 1.2.3.4.1\ndigests = sha256\naccuracy = secs:1\nordering = yes\ntsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n',
  );
  let n = 0;
  tsa = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const q = join(d, `q${++n}.tsq`);
      await writeFile(q, Buffer.concat(chunks));
      try {
        await o(['ts', '-reply', '-config', 'tsa.cnf', '-queryfile', q, '-out', `${q}.tsr`]);
        res.writeHead(200, { 'content-type': 'application/timestamp-reply' }).end(await readFile(`${q}.tsr`));
      } catch (e) {
        res.writeHead(500).end(String(e));
      }
    });
  });
  await new Promise<void>((r) => tsa.listen(0, '127.0.0.1', r));
  const addr = tsa.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}/tsr`, caFile: join(d, 'ca.crt') };
}

const get = async (path: string, scopes = ['evidence:read']) => app.inject({ method: 'GET', url: path, headers: await bearer(h, scopes) });
const goCheck = async (args: string[]) => {
  try {
    const r = await run(checker, args);
    return JSON.parse(r.stdout);
  } catch (e) {
    return JSON.parse((e as { stdout: string }).stdout || '{"ok":false}');
  }
};

beforeAll(async () => {
  dir = mkdtempSync(join(inject('scratch'), 'tlog-'));
  checker = join(dir, 'tlogcheck');
  // CI has Go; the binary is built once per run into this test's temp dir.
  const build = run('go', ['build', '-o', checker, './tlogcheck'], { cwd: join(import.meta.dirname, 'go'), env: { ...process.env, GOFLAGS: '-mod=mod' } });
  const t = await startTsa(dir);
  h = await harness({
    blob: 'fs',
    env: {
      STELLA_TSA_URL: t.url,
      STELLA_TSA_CA_FILE: t.caFile,
      STELLA_WITNESS_KEYS: witnessVkey,
      STELLA_WITNESS_QUORUM: '1',
      STELLA_CHECKPOINT_ORIGIN: 'stella.test/log',
    },
  });
  app = await apiFor(h);
  cli = await cliEnvFor(h, app);
  base = cli.STELLA_API_URL!;
  await build;
}, 600_000);
afterAll(async () => {
  await app?.close();
  await h?.close();
  tsa?.close();
});

describe('C2SP checkpoints, tlog-tiles and consistency, checked by golang.org/x/mod/sumdb', () => {
  let first: string;
  let second: string;
  let vkey: string;

  it('signs each anchor as a checkpoint that note.Open verifies, and serves it at /tlog/checkpoint', async () => {
    await ingest(270);
    first = (await createAnchor(h.ctx, { reason: 'test' })).anchor!.id;
    const cp = (await get(`/evidence/anchors/${first}/checkpoint`)).json();
    expect(cp.checkpoint).toMatch(/^stella\.test\/log\n270\n[A-Za-z0-9+/]{43}=\n\n— stella\.test\/log [A-Za-z0-9+/=]+\n$/);
    vkey = cp.vkeys[0].vkey;
    writeFileSync(join(dir, 'cp1.txt'), cp.checkpoint);
    const r = await goCheck(['checkpoint', '-vkey', vkey, '-note', join(dir, 'cp1.txt')]);
    expect(r).toMatchObject({ ok: true, origin: 'stella.test/log', size: 270 });
    const anchor = (await get(`/evidence/anchors/${first}`)).json().anchor;
    expect(r.root).toBe(anchor.rootHash);

    const served = await get('/tlog/checkpoint');
    expect(served.statusCode).toBe(200);
    expect(served.headers['content-type']).toMatch(/^text\/plain/);
    expect(served.body).toBe(cp.checkpoint);
    // A different key under the same name does not verify.
    const other = formatVkey('stella.test/log', 1, Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url'));
    expect((await goCheck(['checkpoint', '-vkey', other, '-note', join(dir, 'cp1.txt')])).ok).toBe(false);
  });

  it('serves tiles that tlog.TileHashReader accepts: an inclusion proof for a leaf from the tiles over HTTP', async () => {
    const token = (await bearer(h, ['admin'])).authorization.slice('Bearer '.length);
    const full = await get('/tlog/tile/0/000');
    expect(full.statusCode).toBe(200);
    expect(full.rawPayload.length).toBe(256 * 32);
    expect(full.headers['cache-control']).toContain('immutable');
    expect((await get('/tlog/tile/0/001.p/14')).rawPayload.length).toBe(14 * 32);
    expect((await get('/tlog/tile/0/001')).statusCode).toBe(404); // not full yet
    expect((await get('/tlog/tile/0/01')).statusCode).toBe(400);
    // Entry tiles name every tenant's items: administrators only.
    expect((await get('/tlog/tile/entries/001.p/14')).statusCode).toBe(403);
    const entries = await get('/tlog/tile/entries/001.p/14', ['admin']);
    expect(entries.statusCode).toBe(200);
    const leaf = (await h.ctx.db.query('SELECT leaf FROM evidence_log WHERE seq = 261')).rows[0].leaf as Buffer;
    expect(entries.rawPayload.includes(leaf)).toBe(true);
    writeFileSync(join(dir, 'leaf261'), leaf);
    const r = await goCheck([
      'inclusion',
      '-vkey',
      vkey,
      '-note',
      join(dir, 'cp1.txt'),
      '-url',
      base,
      '-token',
      token,
      '-index',
      '261',
      '-entry',
      join(dir, 'leaf261'),
    ]);
    expect(r).toMatchObject({ ok: true, size: 270, index: 261 });
    // Another leaf's bytes do not prove index 261.
    writeFileSync(join(dir, 'leaf0'), (await h.ctx.db.query('SELECT leaf FROM evidence_log WHERE seq = 0')).rows[0].leaf);
    expect(
      (await goCheck(['inclusion', '-vkey', vkey, '-note', join(dir, 'cp1.txt'), '-url', base, '-token', token, '-index', '261', '-entry', join(dir, 'leaf0')]))
        .ok,
    ).toBe(false);
    expect(tilePath(parseTilePath('0/x001/234.p/7'))).toBe('tile/0/x001/234.p/7');
  });

  it('proves consistency between two anchors (API + CLI shape), verified by tlog.CheckTree and from the tiles', async () => {
    await ingest(40);
    second = (await createAnchor(h.ctx, {})).anchor!.id;
    const res = await get(`/evidence/anchors/consistency?from=${first}&to=${second}`);
    expect(res.statusCode).toBe(200);
    const c = res.json();
    expect(c).toMatchObject({ ok: true, problem: null, from: { logSize: 270 }, to: { logSize: 310 } });
    writeFileSync(join(dir, 'cp2.txt'), (await get(`/evidence/anchors/${second}/checkpoint`)).json().checkpoint);
    const token = (await bearer(h, ['evidence:read'])).authorization.slice('Bearer '.length);
    const r = await goCheck([
      'consistency',
      '-vkey',
      vkey,
      '-old',
      join(dir, 'cp1.txt'),
      '-new',
      join(dir, 'cp2.txt'),
      '-proof',
      c.proof.join(','),
      '-url',
      base,
      '-token',
      token,
    ]);
    expect(r).toMatchObject({ ok: true, stellaProof: 'verified', tilesProof: 'verified' });
    // A wrong proof is refused by the independent checker.
    const bad = [...c.proof];
    bad[0] = '00'.repeat(32);
    expect((await goCheck(['consistency', '-vkey', vkey, '-old', join(dir, 'cp1.txt'), '-new', join(dir, 'cp2.txt'), '-proof', bad.join(',')])).ok).toBe(false);
    expect((await get(`/evidence/anchors/consistency?from=${second}&to=${first}`)).statusCode).toBe(400);
  });

  it('CLI: anchor consistency (json; swapped ids exit 2), anchor checkpoint --output writes the note and the token', async () => {
    const ok = await runStella(cli, 'evidence', 'anchor', 'consistency', '--from', first, '--to', second, '--format', 'json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, problem: null, from: { id: first, logSize: 270 }, to: { id: second, logSize: 310 } });
    const swapped = await runStella(cli, 'evidence', 'anchor', 'consistency', '--from', second, '--to', first);
    expect(swapped.code).toBe(2);
    expect(swapped.stderr).toMatch(/swap them/);
    const out = join(dir, 'cli-cp.txt');
    const cp = await runStella(cli, 'evidence', 'anchor', 'checkpoint', 'latest', '--output', out);
    expect(cp.code).toBe(0);
    expect(cp.stdout).toContain(vkey);
    expect(await readFile(out, 'utf8')).toBe(await readFile(join(dir, 'cp2.txt'), 'utf8'));
    expect((await readFile(`${out}.tsr`)).length).toBeGreaterThan(100);
  });

  it('timestamps each anchor at the TSA; openssl ts -verify accepts the stored token over the checkpoint', async () => {
    const cp = (await get(`/evidence/anchors/${second}/checkpoint`)).json();
    expect(cp.timestamp).toMatchObject({ tsaUrl: expect.stringMatching(/^http:/) });
    const raw = parseNote(cp.checkpoint);
    // The token covers the checkpoint as signed by the log (before witness lines).
    writeFileSync(join(dir, 'cp2-log.txt'), formatNote({ text: raw.text, signatures: raw.signatures.slice(0, 1) }));
    writeFileSync(join(dir, 'token.der'), Buffer.from(cp.timestamp.token, 'base64'));
    const v = await run('openssl', [
      'ts',
      '-verify',
      '-data',
      join(dir, 'cp2-log.txt'),
      '-in',
      join(dir, 'token.der'),
      '-token_in',
      '-CAfile',
      join(dir, 'ca.crt'),
    ]);
    expect(v.stdout).toContain('Verification: OK');
  });

  it('k-of-n witnesses: anchors without a valid cosignature do not count; a configured witness cosignature makes them count', async () => {
    const before = await anchorVerifyAll(h.ctx);
    expect(before.ok).toBe(false);
    expect(before.breaks).toEqual([]);
    expect(before.witness!.unwitnessed.map((u) => u.anchorId).sort()).toEqual([first, second].sort());
    expect(before.timestamps.every((t) => t.ok)).toBe(true);
    for (const id of [first, second]) {
      const text = parseNote((await get(`/evidence/anchors/${id}/checkpoint`)).json().checkpoint).text;
      const forged = cosign(text, { name: WITNESS, privateKey: generateKeyPairSync('ed25519').privateKey, timestamp: Math.floor(Date.now() / 1000) });
      const line = (s: typeof forged) => formatNote({ text: 'x\n', signatures: [s] }).split('\n\n')[1]!;
      const add = async (cosignature: string) =>
        app.inject({ method: 'POST', url: `/evidence/anchors/${id}/cosignatures`, payload: { cosignature }, headers: await bearer(h, ['evidence:write']) });
      expect((await add(line(forged))).statusCode).toBe(400); // right name, wrong key id → not a configured witness
      const good = cosign(text, { name: WITNESS, privateKey: witnessKey, timestamp: Math.floor(Date.now() / 1000) });
      const tampered = { ...good, sig: Buffer.from(good.sig) };
      tampered.sig[20] ^= 1;
      expect((await add(line(tampered))).statusCode).toBe(400);
      const ok = await add(line(good));
      expect(ok.statusCode).toBe(201);
      expect(ok.json().added[0]).toMatchObject({ witness: WITNESS });
    }
    const after = await anchorVerifyAll(h.ctx);
    expect(after).toMatchObject({ ok: true, witness: { quorum: 1, configured: 1, unwitnessed: [] }, checkpoints: { checked: 2 } });
    expect((await get('/tlog/checkpoint')).body).toContain(`— ${WITNESS} `);
  });

  it('an offline evidence pack verifies with the Go checker and openssl alone (docs/verify-offline.md)', async () => {
    const pack = join(dir, 'pack.tar.gz');
    const r = await exportEvidencePack(h.ctx, { tenant: 'default', digest: ART, includeDeps: false, actor: 'test' }, pack);
    expect(r.anchorId).toBe(second);
    const x = join(dir, 'pack');
    await run('mkdir', ['-p', x]);
    await run('tar', ['-xzf', pack, '-C', x]);
    const cpDir = join(x, 'checkpoint');
    // The vkey in the pack is the one the API publishes (an outside party pins it out of band).
    expect((await readFile(join(cpDir, 'vkeys.txt'), 'utf8')).trim()).toBe(vkey);
    const cp = await goCheck(['checkpoint', '-vkey', vkey, '-note', join(cpDir, 'checkpoint.txt')]);
    expect(cp).toMatchObject({ ok: true, size: 310 });
    expect((await goCheck(['checkpoint', '-vkey', vkey, '-note', join(cpDir, 'cosigned.txt')])).ok).toBe(true);
    // Inclusion of one item from its packed RFC 6962 proof, checked by tlog.CheckRecord.
    const index = JSON.parse(await readFile(join(x, 'index.json'), 'utf8'));
    const item = index.items[3];
    const proof = JSON.parse(await readFile(join(x, 'proofs', `${item.id.slice(7)}.json`), 'utf8'));
    writeFileSync(join(dir, 'pack-leaf'), Buffer.from(item.leaf, 'base64'));
    const incl = await goCheck([
      'inclusion',
      '-vkey',
      vkey,
      '-note',
      join(cpDir, 'checkpoint.txt'),
      '-index',
      String(item.logSeq),
      '-entry',
      join(dir, 'pack-leaf'),
      '-proof',
      proof.proof.join(','),
    ]);
    expect(incl).toMatchObject({ ok: true, index: item.logSeq, source: 'proof' });
    // The log only grew: the previous checkpoint is consistent with this one.
    const cons = JSON.parse(await readFile(join(cpDir, 'consistency.json'), 'utf8'));
    const c = await goCheck([
      'consistency',
      '-vkey',
      vkey,
      '-old',
      join(cpDir, 'previous.txt'),
      '-new',
      join(cpDir, 'checkpoint.txt'),
      '-proof',
      cons.proof.join(','),
    ]);
    expect(c).toMatchObject({ ok: true, old: 270, new: 310, stellaProof: 'verified' });
    // And a TSA attests when the checkpoint existed.
    const v = await run('openssl', [
      'ts',
      '-verify',
      '-data',
      join(cpDir, 'checkpoint.txt'),
      '-in',
      join(cpDir, 'timestamp.tsr'),
      '-token_in',
      '-CAfile',
      join(dir, 'ca.crt'),
    ]);
    expect(v.stdout).toContain('Verification: OK');
  });

  it('names tampering: a forked checkpoint, a rewritten leaf and a truncated log', async () => {
    // Forked checkpoint: a validly signed checkpoint for the same size with a different root.
    const { signCheckpoint } = await import('../src/core/anchoring/checkpoint');
    const forged = await signCheckpoint(h.ctx, 310, randomBytes(32));
    const orig = (await h.ctx.db.query('SELECT checkpoint FROM anchors WHERE id = $1', [second])).rows[0].checkpoint;
    await h.ctx.db.query('UPDATE anchors SET checkpoint = $2 WHERE id = $1', [second, forged.note]);
    const fork = await anchorVerifyAll(h.ctx);
    expect(fork.firstBreak).toMatchObject({ anchorId: second, reason: 'forked-checkpoint', tamper: 'forked-checkpoint' });
    await h.ctx.db.query('UPDATE anchors SET checkpoint = $2 WHERE id = $1', [second, orig]);

    // Rewritten leaf: leaf bytes and leaf_hash rewritten together (the row looks self-consistent).
    const row = (await h.ctx.db.query('SELECT seq, leaf, leaf_hash FROM evidence_log WHERE seq = 5')).rows[0];
    const { leafHash } = await import('../src/merkle');
    const newLeaf = Buffer.from(String(row.leaf).replace('"sbom"', '"vex"'));
    await h.ctx.db.query('UPDATE evidence_log SET leaf = $2, leaf_hash = $3 WHERE seq = $1', [5, newLeaf, leafHash(newLeaf)]);
    const rewritten = await anchorVerifyAll(h.ctx);
    expect(rewritten.firstBreak).toMatchObject({ anchorId: first, reason: 'root-mismatch', tamper: 'rewritten-leaf' });
    expect(rewritten.firstBreak!.detail).toMatch(/rewritten leaf/);
    // The independent checker sees it too: the leaf tile no longer hashes to the signed root.
    const token = (await bearer(h, ['admin'])).authorization.slice('Bearer '.length);
    writeFileSync(join(dir, 'leaf5'), newLeaf);
    const incl = await goCheck([
      'inclusion',
      '-vkey',
      vkey,
      '-note',
      join(dir, 'cp2.txt'),
      '-url',
      base,
      '-token',
      token,
      '-index',
      '5',
      '-entry',
      join(dir, 'leaf5'),
    ]);
    expect(incl.ok).toBe(false);
    await h.ctx.db.query('UPDATE evidence_log SET leaf = $2, leaf_hash = $3 WHERE seq = $1', [5, row.leaf, row.leaf_hash]);
    expect((await anchorVerifyAll(h.ctx)).ok).toBe(true);

    // Truncated log: the newest leaves removed.
    await h.ctx.db.query('ALTER TABLE evidence_log DISABLE TRIGGER evidence_log_no_delete');
    await h.ctx.db.query('DELETE FROM evidence_log WHERE seq >= 300');
    const truncated = await anchorVerifyAll(h.ctx);
    expect(truncated.firstBreak).toMatchObject({ anchorId: second, reason: 'truncated-log', tamper: 'truncated-log' });
    expect(truncated.firstBreak!.detail).toMatch(/truncated log: .*310 leaves .* holds 300/);
  });
});
