import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../src/blob';
import { sha256Digest } from '../src/lib/hash';
import { seedReplica } from '../src/core/backup/replica';

// `stella dev up --replica` seeds a new replica with every blob stored before it existed.
describe('replica seeding', () => {
  it('copies each primary blob the replica lacks, verified; a second run copies nothing; a damaged primary blob is refused', async () => {
    const primary = new FsBlobStore(mkdtempSync(join(tmpdir(), 'seed-primary-')));
    const replica = new FsBlobStore(mkdtempSync(join(tmpdir(), 'seed-replica-')));
    const blobs = ['a', 'b', 'c'].map((x) => Buffer.from(`{"blob":"${x}"}`));
    for (const b of blobs) await primary.put(sha256Digest(b), b);
    await replica.put(sha256Digest(blobs[0]!), blobs[0]!);

    expect(await seedReplica(primary, replica)).toMatchObject({ copied: 2, present: 1 });
    for (const b of blobs) expect(await replica.getBuffer(sha256Digest(b))).toEqual(b);
    expect(await seedReplica(primary, replica)).toMatchObject({ copied: 0, present: 3 });

    const rotten = Buffer.from('{"blob":"d"}');
    await primary.writeRaw(sha256Digest(rotten), Buffer.from('not what it claims'));
    await expect(seedReplica(primary, replica)).rejects.toThrow(/digest|hash/i);
    expect(await replica.stat(sha256Digest(rotten))).toBeNull();
  });
});
