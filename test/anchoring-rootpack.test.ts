import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { harness, type Harness } from './support/context';
import { apiFor, bearer } from './support/api';
import { sha256Digest } from '../src/lib/hash';
import { createAnchor } from '../src/core/anchoring';
import { exportRootPack } from '../src/crypto/rootpack';
import { SIGNING_PURPOSE } from '../src/core/keys';

/** DR: anchors signed by a key the new host no longer has verify once its RootPack is supplied. */
describe('anchor verify --rootpack', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ blob: 'fs', worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a lost signing key breaks verification until its RootPack is given', async () => {
    for (let i = 0; i < 3; i++)
      await h.ctx.evidence.ingest({
        tenant: 'default',
        data: Buffer.from(`{"i":${i}}`),
        kind: 'sbom',
        mediaType: 'application/json',
        subjects: [sha256Digest('rp-app')],
      });
    await createAnchor(h.ctx, { reason: 'test' });
    const kid = (await h.ctx.keys.active(SIGNING_PURPOSE)).kid;
    const saved = await exportRootPack(h.ctx.keys);
    // the key is lost with the old host; the new host signs with a fresh key
    rmSync(join(h.ctx.cfg.keysDir, 'keys', `${kid}.json`));
    await h.ctx.keys.generate({ alg: 'ES256', purpose: SIGNING_PURPOSE });

    const app = await apiFor(h);
    const headers = await bearer(h, ['evidence:read']);
    const without = await app.inject({ method: 'POST', url: '/evidence/anchors/verify', headers, payload: { scope: 'all' } });
    expect(without.json().ok).toBe(false);
    expect(JSON.stringify(without.json())).toContain('signature');
    const withPack = await app.inject({ method: 'POST', url: '/evidence/anchors/verify', headers, payload: { scope: 'all', rootPack: saved } });
    expect(withPack.json(), withPack.body).toMatchObject({ ok: true, checked: 1 });
    const tampered = await app.inject({
      method: 'POST',
      url: '/evidence/anchors/verify',
      headers,
      payload: { scope: 'all', rootPack: { ...saved, digest: sha256Digest('x') } },
    });
    expect(tampered.statusCode).toBe(400);
    await app.close();
  });
});
