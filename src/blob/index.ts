/** Content-addressed blob storage: filesystem and S3 stores behind one interface. */
import { FsBlobStore } from './fs';
import { S3BlobStore } from './s3';
import type { BlobStore } from './types';

export * from './types';
export { type DirScan, FsBlobStore } from './fs';
export { S3BlobStore } from './s3';

export interface BlobStores {
  primary: BlobStore;
  replica?: BlobStore;
}

/** Where the stores live: a directory (and optional replica directory) or an S3 bucket (and optional replica bucket). */
export type BlobStoresOptions =
  | { kind: 'fs'; path: string; replicaPath?: string }
  | {
      kind: 's3';
      bucket: string;
      endpoint?: string;
      region: string;
      accessKeyId?: string;
      secretAccessKey?: string;
      forcePathStyle: boolean;
      replicaBucket?: string;
    };

export function createBlobStores(b: BlobStoresOptions): BlobStores {
  if (b.kind === 'fs') {
    return { primary: new FsBlobStore(b.path), replica: b.replicaPath ? new FsBlobStore(b.replicaPath) : undefined };
  }
  const base = { endpoint: b.endpoint, region: b.region, accessKeyId: b.accessKeyId, secretAccessKey: b.secretAccessKey, forcePathStyle: b.forcePathStyle };
  return {
    primary: S3BlobStore.create({ ...base, bucket: b.bucket }),
    replica: b.replicaBucket ? S3BlobStore.create({ ...base, bucket: b.replicaBucket }) : undefined,
  };
}
