import type { Readable } from 'node:stream';

export { BlobError, BlobNotFoundError, DigestMismatchError, type BlobErrorCode } from './errors';

export interface BlobStat {
  digest: string;
  size: number;
  modifiedAt?: Date;
}

/** How putFile may treat its source file. */
export interface PutFileOptions {
  /**
   * The caller hashed the file as it wrote it (and fsynced it): the digest is not recomputed
   * before the write (the store's own end-to-end check, where it has one, still applies).
   */
  trusted?: boolean;
  /** The file is the caller's private temp file: a store on the same filesystem renames it into place instead of copying. */
  move?: boolean;
  /** With `trusted`: the file's size, as the caller counted it while writing (saves a stat). */
  size?: number;
  /** The caller just found the blob absent: no second existence check before it is written. */
  absent?: boolean;
  /**
   * false: the caller makes the new directory entry durable itself, for a whole batch at once,
   * with syncDirs() before it reports the blob stored (default true: each write syncs its directory).
   */
  syncDir?: boolean;
}

/** How put may treat the write (see PutFileOptions). */
export type PutOptions = Pick<PutFileOptions, 'absent' | 'syncDir'>;

export interface PutResult {
  digest: string;
  size: number;
  created: boolean;
}

/**
 * Content-addressed blob storage. Keys are `sha256:<hex>` digests; every write is verified
 * against the digest before it becomes visible, every read is re-hashed.
 */
export interface BlobStore {
  readonly kind: 'fs' | 's3';
  /** Human-readable location, e.g. a path or s3://bucket/prefix. */
  readonly location: string;
  /** Stores bytes under `digest`; refuses content that hashes otherwise. Idempotent. */
  put(digest: string, data: Buffer, opts?: PutOptions): Promise<PutResult>;
  /** Stores a local file (streamed) under `digest`; refuses content that hashes otherwise (unless `trusted`). */
  putFile(digest: string, path: string, opts?: PutFileOptions): Promise<PutResult>;
  /** Streams the blob; the stream errors with DigestMismatchError at its end if content is wrong. */
  get(digest: string): Promise<Readable>;
  /** Whole blob in memory, verified. `expectedSize` (the index's size) lets a small blob be read in one call. */
  getBuffer(digest: string, expectedSize?: number): Promise<Buffer>;
  /**
   * Makes the blobs written with `syncDir: false` durable under their names: each distinct
   * directory holding them synced once (a no-op for stores whose writes are durable when they return).
   */
  syncDirs(digests: readonly string[]): Promise<void>;
  /**
   * Hashes the stored bytes without trusting them (for verify); null when absent. `expectedSize`
   * (the index's size) lets a small blob be read in one call; any other size is still hashed whole.
   */
  hash(digest: string, expectedSize?: number): Promise<{ actual: string; size: number } | null>;
  stat(digest: string): Promise<BlobStat | null>;
  list(): AsyncIterable<BlobStat>;
  /** Just the digests stored, cheaper than list() where sizes are not needed (no per-blob stat). */
  digests(): AsyncIterable<string>;
  /** Removes the blob; true if it existed. Callers write the audit entry. */
  delete(digest: string): Promise<boolean>;
  /** Overwrites raw bytes without verification; only for recovery tooling and fault-injection tests. */
  writeRaw(digest: string, data: Buffer): Promise<void>;
  /** A store rooted under a sub-namespace (e.g. `replay`, `cold`). */
  withPrefix(prefix: string): BlobStore;
  /** Cheap connectivity/permission check: writes, reads back and deletes a probe. */
  health(): Promise<void>;
  /** Stale temp files / incomplete uploads older than `olderThanMs`; removed unless dryRun. */
  cleanupTemp(olderThanMs: number, dryRun: boolean): Promise<{ removed: number; bytes: number }>;
}
