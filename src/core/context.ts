import type { StellaConfig } from '../config';
import { createPool, type Db } from '../db/pool';
import { migrate } from '../db/migrate';
import { createBlobStores, type BlobStores } from '../blob';
import { EvidenceService } from './evidence';
import { createLogger, type Logger } from '../log';
import type { KeyStore } from '../crypto/keys';
import { openKeyStore } from './keys';

/** Everything an activity or API handler needs to do I/O, built once per process. */
export interface AppContext {
  cfg: StellaConfig;
  db: Db;
  blobs: BlobStores;
  evidence: EvidenceService;
  log: Logger;
  keys: KeyStore;
}

export async function createAppContext(cfg: StellaConfig, opts: { migrate?: boolean; log?: Logger } = {}): Promise<AppContext> {
  if (!cfg.databaseUrl) throw new Error('DATABASE_URL is not set (stella dev up starts a local PostgreSQL and sets it for you)');
  const db = createPool(cfg.databaseUrl);
  if (opts.migrate !== false) await migrate(db);
  const blobs = createBlobStores(cfg.blob);
  const log = opts.log ?? createLogger(cfg.logLevel);
  const keys = await openKeyStore(cfg.keysDir);
  return { cfg, db, blobs, evidence: new EvidenceService(db, blobs), log, keys };
}

export async function closeAppContext(ctx: AppContext): Promise<void> {
  await ctx.db.end();
}
