import { chmod, open } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsBlobStore } from '../src/blob';
import { sha256Digest } from '../src/lib/hash';
import { apiFor, bearer } from './support/api';
import { harness, type Harness } from './support/context';

// GET /evidence/:id streams items above 16 MiB from one read while hashing; a blob that rotted on
// disk must not reach a client as a complete response.
let h: Harness;
let app: FastifyInstance;
let base: string;
beforeAll(async () => {
  h = await harness();
  app = await apiFor(h);
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app?.close();
  await h?.close();
});

async function readAll(res: Response): Promise<{ bytes: number; error?: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    return { bytes };
  } catch (error) {
    return { bytes, error };
  }
}

describe('GET /evidence/:id, streamed', () => {
  it('serves a large item whole, and aborts the response (and counts it) when its blob no longer matches its digest', async () => {
    const data = randomBytes(17 * 1024 * 1024);
    const r = await h.ctx.evidence.ingest({
      tenant: 'default',
      data,
      kind: 'other',
      mediaType: 'application/octet-stream',
      subjects: [sha256Digest('get-stream')],
    });
    const headers = await bearer(h, ['evidence:read']);

    const ok = await fetch(`${base}/evidence/${r.id}`, { headers });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-length')).toBe(String(data.length));
    expect(await readAll(ok)).toEqual({ bytes: data.length });

    // Rot one byte near the end, keeping the size.
    const path = (h.ctx.blobs.primary as FsBlobStore).pathFor(r.id);
    await chmod(path, 0o644);
    const fh = await open(path, 'r+');
    await fh.write(Buffer.from([data[data.length - 10]! ^ 0xff]), 0, 1, data.length - 10);
    await fh.close();

    const bad = await fetch(`${base}/evidence/${r.id}`, { headers });
    expect(bad.status).toBe(200); // headers went out before the last byte was hashed
    const got = await readAll(bad);
    expect(got.error).toBeDefined(); // the client sees a failed body, never a complete one
    expect(got.bytes).toBeLessThan(data.length);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^stella_evidence_retrieval_integrity_failures_total 1$/m);
  });
});
