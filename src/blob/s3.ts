import { randomBytes } from 'node:crypto';
import { sha256Digest, sha256File, sha256Stream } from '../lib/hash';
import { createReadStream, promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  S3Client,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  ListMultipartUploadsCommand,
  AbortMultipartUploadCommand,
  HeadBucketCommand,
  CreateBucketCommand,
} from '@aws-sdk/client-s3';
import { BlobNotFoundError, DigestMismatchError, type BlobStat, type BlobStore, type PutFileOptions, type PutResult } from './types';
import { hexOf, VerifyingStream } from './hashing';

export interface S3StoreOptions {
  bucket: string;
  prefix?: string;
  endpoint?: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle?: boolean;
}

export function createS3Client(o: S3StoreOptions): S3Client {
  return new S3Client({
    region: o.region,
    endpoint: o.endpoint,
    forcePathStyle: o.forcePathStyle ?? true,
    credentials: o.accessKeyId && o.secretAccessKey ? { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey } : undefined,
    // Checksums are computed and sent by us (SHA-256 of the content, which is the key).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NotFound' || err?.name === 'NoSuchKey' || err?.$metadata?.httpStatusCode === 404;
}

/**
 * S3 blob store (AWS, MinIO, any S3 API). Key `<prefix>sha256/<hex>`. Puts carry
 * x-amz-checksum-sha256 so the server itself refuses bytes that don't match the digest;
 * reads are re-hashed on our side as well.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  private readonly prefix: string;
  constructor(
    private readonly client: S3Client,
    private readonly opts: S3StoreOptions,
  ) {
    this.prefix = opts.prefix ? opts.prefix.replace(/\/?$/, '/') : '';
  }

  static create(opts: S3StoreOptions): S3BlobStore {
    return new S3BlobStore(createS3Client(opts), opts);
  }

  get location(): string {
    return `s3://${this.opts.bucket}/${this.prefix}`;
  }

  keyFor(digest: string): string {
    return `${this.prefix}sha256/${hexOf(digest)}`;
  }

  async bucketExists(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.opts.bucket }));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.opts.bucket }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await this.client.send(new CreateBucketCommand({ Bucket: this.opts.bucket }));
    }
  }

  private async existingIsGood(digest: string): Promise<boolean> {
    if (!(await this.stat(digest))) return false;
    const h = await this.hash(digest);
    return h?.actual === digest;
  }

  async put(digest: string, data: Buffer): Promise<PutResult> {
    const hex = hexOf(digest);
    const actual = sha256Digest(data);
    if (actual !== digest) throw new DigestMismatchError(digest, actual);
    const existed = (await this.stat(digest)) !== null;
    if (existed && (await this.existingIsGood(digest))) return { digest, size: data.length, created: false };
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.opts.bucket,
        Key: this.keyFor(digest),
        Body: data,
        ContentLength: data.length,
        ChecksumSHA256: Buffer.from(hex, 'hex').toString('base64'),
      }),
    );
    return { digest, size: data.length, created: !existed };
  }

  async putFile(digest: string, path: string, opts: PutFileOptions = {}): Promise<PutResult> {
    const hex = hexOf(digest);
    // First pass: hash locally so a wrong digest never reaches the bucket (a trusted file was
    // hashed as it was written; ChecksumSHA256 still makes the bucket check it end to end).
    const { digest: actual, size } = opts.trusted ? { digest, size: (await fsp.stat(path)).size } : await sha256File(path);
    if (actual !== digest) throw new DigestMismatchError(digest, actual);
    const existed = (await this.stat(digest)) !== null;
    if (existed && (await this.existingIsGood(digest))) return { digest, size, created: false };
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.opts.bucket,
        Key: this.keyFor(digest),
        Body: createReadStream(path),
        ContentLength: size,
        ChecksumSHA256: Buffer.from(hex, 'hex').toString('base64'),
      }),
    );
    return { digest, size, created: !existed };
  }

  private async rawStream(digest: string): Promise<Readable> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.keyFor(digest) }));
      return res.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) throw new BlobNotFoundError(digest);
      throw e;
    }
  }

  async get(digest: string): Promise<Readable> {
    const body = await this.rawStream(digest);
    return body.pipe(new VerifyingStream(digest));
  }

  async getBuffer(digest: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.rawStream(digest)) chunks.push(c as Buffer);
    const data = Buffer.concat(chunks);
    const actual = sha256Digest(data);
    if (actual !== digest) throw new DigestMismatchError(digest, actual);
    return data;
  }

  async hash(digest: string): Promise<{ actual: string; size: number } | null> {
    let body: Readable;
    try {
      body = await this.rawStream(digest);
    } catch (e) {
      if (e instanceof BlobNotFoundError) return null;
      throw e;
    }
    const { digest: actual, size } = await sha256Stream(body);
    return { actual, size };
  }

  async stat(digest: string): Promise<BlobStat | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key: this.keyFor(digest) }));
      return { digest, size: r.ContentLength ?? 0, modifiedAt: r.LastModified };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  async *list(): AsyncIterable<BlobStat> {
    let token: string | undefined;
    const base = `${this.prefix}sha256/`;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix: base, ContinuationToken: token }));
      for (const o of r.Contents ?? []) {
        const hex = o.Key!.slice(base.length);
        if (/^[0-9a-f]{64}$/.test(hex)) yield { digest: `sha256:${hex}`, size: o.Size ?? 0, modifiedAt: o.LastModified };
      }
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  async *digests(): AsyncIterable<string> {
    // A listing already carries the keys; nothing cheaper exists on S3.
    for await (const b of this.list()) yield b.digest;
  }

  async delete(digest: string): Promise<boolean> {
    const existed = (await this.stat(digest)) !== null;
    if (existed) await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.keyFor(digest) }));
    return existed;
  }

  async writeRaw(digest: string, data: Buffer): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.opts.bucket, Key: this.keyFor(digest), Body: data, ContentLength: data.length }));
  }

  /** An S3 PUT is durable when it returns: nothing to sync. */
  async syncDirs(_digests: readonly string[]): Promise<void> {}

  withPrefix(prefix: string): BlobStore {
    return new S3BlobStore(this.client, { ...this.opts, prefix: `${this.prefix}${prefix}` });
  }

  async health(): Promise<void> {
    const key = `${this.prefix}tmp/health-${Date.now()}-${randomBytes(4).toString('hex')}`;
    const probe = Buffer.from(key);
    await this.client.send(new PutObjectCommand({ Bucket: this.opts.bucket, Key: key, Body: probe }));
    const r = await this.client.send(new GetObjectCommand({ Bucket: this.opts.bucket, Key: key }));
    const back = Buffer.from(await r.Body!.transformToByteArray());
    await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: key }));
    if (!back.equals(probe)) throw new Error(`S3 store ${this.location} returned different bytes than written`);
  }

  async cleanupTemp(olderThanMs: number, dryRun: boolean): Promise<{ removed: number; bytes: number }> {
    // Partial uploads on S3 are incomplete multipart uploads; abort the stale ones.
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.opts.bucket, Prefix: this.prefix }));
    for (const u of r.Uploads ?? []) {
      if (!u.Initiated || u.Initiated.getTime() > cutoff) continue;
      removed++;
      if (!dryRun) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.opts.bucket, Key: u.Key!, UploadId: u.UploadId! }));
    }
    return { removed, bytes: 0 };
  }
}
