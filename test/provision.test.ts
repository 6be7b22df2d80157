import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { inject } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { harness, type Harness } from './support/context';
import { provisionStorage } from '../src/core/backup/provision';
import { S3BlobStore } from '../src/blob';

describe('evidence storage provision (DR-001 step 1)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ blob: 's3', worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('checks the configured bucket, creates a named one when missing, and refuses a directory without the space', async () => {
    const configured = await provisionStorage(h.ctx, { size: '10G', actor: 'test' });
    expect(configured).toMatchObject({ created: false, availableBytes: null, ok: true });
    expect(configured.path).toMatch(/^s3:\/\/stella-/);

    const bucket = `dr-${randomBytes(4).toString('hex')}`;
    const fresh = await provisionStorage(h.ctx, { size: '1T', path: `s3://${bucket}/evidence`, actor: 'test' });
    expect(fresh).toMatchObject({ created: true, path: `s3://${bucket}/evidence` });
    const s3 = S3BlobStore.create({
      bucket,
      endpoint: inject('s3Endpoint'),
      region: 'us-east-1',
      accessKeyId: 'test',
      secretAccessKey: 'test',
      forcePathStyle: true,
    });
    expect(await s3.bucketExists()).toBe(true);
    await expect(provisionStorage(h.ctx, { size: '1T', path: 's3://Not_A_Bucket', actor: 'test' })).rejects.toThrow(/bad bucket URL/);

    const dir = join(mkdtempSync(join(tmpdir(), 'prov-')), 'target');
    await expect(provisionStorage(h.ctx, { size: '5000T', path: dir, actor: 'test' })).rejects.toThrow(/not enough space/);
    expect(existsSync(dir)).toBe(false);
    const ok = await provisionStorage(h.ctx, { size: '1M', path: dir, actor: 'test' });
    expect(ok).toMatchObject({ created: true, path: dir });
    expect((ok.availableBytes ?? 0) > 1_000_000).toBe(true);
  });
});
