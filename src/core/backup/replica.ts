/** Replica seeding for `stella dev up --replica`: a new replica receives every primary blob it lacks, each verified on the way. */
import type { BlobStore } from '../../blob';

export interface SeedResult {
  replica: string;
  copied: number;
  present: number;
}

/**
 * Copies each blob of `primary` that `replica` does not hold (getBuffer re-hashes it, put
 * refuses bytes that hash otherwise), so a replica set up after ingest can serve
 * `stella evidence recover --source replica` for evidence stored before it existed.
 */
export async function seedReplica(primary: BlobStore, replica: BlobStore, onProgress: (n: number) => void = () => {}): Promise<SeedResult> {
  const out: SeedResult = { replica: replica.location, copied: 0, present: 0 };
  for await (const d of primary.digests()) {
    if (await replica.stat(d)) out.present++;
    else {
      await replica.put(d, await primary.getBuffer(d));
      out.copied++;
    }
    if ((out.copied + out.present) % 1000 === 0) onProgress(out.copied + out.present);
  }
  return out;
}
