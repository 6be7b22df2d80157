import type { StellaConfig } from '../config';
import { FsBlobStore } from './fs';
import { S3BlobStore } from './s3';
import type { BlobStore } from './types';

export * from './types';
export { FsBlobStore } from './fs';
export { S3BlobStore } from './s3';

export interface BlobStores {
  primary: BlobStore;
  replica?: BlobStore;
}

export function createBlobStores(cfg: StellaConfig): BlobStores {
  const b = cfg.blob;
  if (b.kind === 'fs') {
    return { primary: new FsBlobStore(b.path), replica: b.replicaPath ? new FsBlobStore(b.replicaPath) : undefined };
  }
  const base = { endpoint: b.endpoint, region: b.region, accessKeyId: b.accessKeyId, secretAccessKey: b.secretAccessKey, forcePathStyle: b.forcePathStyle };
  return {
    primary: S3BlobStore.create({ ...base, bucket: b.bucket }),
    replica: b.replicaBucket ? S3BlobStore.create({ ...base, bucket: b.replicaBucket }) : undefined,
  };
}
