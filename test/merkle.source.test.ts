import { describe, expect, it } from 'vitest';
import { leafHash, sha256 } from '../src/merkle/hash';
import { MerkleFrontier, type CompletedSubtree } from '../src/merkle/frontier';
import {
  MemorySubtreeSource,
  consistencyProofFromSource,
  frontierFromSource,
  inclusionProofFromSource,
  resolveSubtrees,
  rootFromSource,
  type SubtreeSource,
} from '../src/merkle/source';
import { consistencyProof, inclusionProof, merkleRoot, perfectSubtrees, verifyConsistency, verifyInclusion, type SubtreeRef } from '../src/merkle/tree';
import { RefTree, hex } from './fixtures/merkle/reference';
import { MerkleError } from '../src/merkle/errors';

/** The library's error with this code (the kind of bad input it names). */
const merkleError = (code: string) => expect.objectContaining({ name: MerkleError.name, code });

describe('MerkleFrontier', () => {
  const ref = RefTree.of(300);

  it('reports exactly the perfect subtrees it completes, with the right hashes', () => {
    const seen: CompletedSubtree[] = [];
    const f = new MerkleFrontier({ onSubtree: (s) => seen.push(s) });
    const returned: CompletedSubtree[] = [];
    for (const l of ref.leaves) returned.push(...f.append(l));
    expect(returned).toEqual(seen);
    // Every perfect subtree of level >= 1 inside [0, 300) is reported once: 300 - popcount(300).
    expect(seen.length).toBe(300 - 4);
    const keys = new Set(seen.map((s) => `${s.level}/${s.index}`));
    expect(keys.size).toBe(seen.length);
    for (const s of seen) {
      expect(s.level).toBeGreaterThanOrEqual(1);
      expect(hex(s.hash)).toBe(hex(ref.mth(s.index * 2 ** s.level, (s.index + 1) * 2 ** s.level)));
    }
  });

  it('append reports lowest level first and at most one subtree per level', () => {
    const f = new MerkleFrontier();
    for (let i = 0; i < 63; i++) f.append(ref.leaves[i]!);
    const done = f.append(ref.leaves[63]!);
    expect(done.map((d) => [d.level, d.index])).toEqual([
      [1, 31],
      [2, 15],
      [3, 7],
      [4, 3],
      [5, 1],
      [6, 0],
    ]);
  });

  it('nodes() is the compact range of [0, size)', () => {
    const f = new MerkleFrontier();
    for (const l of ref.leaves.slice(0, 13)) f.append(l);
    expect(f.nodes().map((n) => [n.level, n.index, hex(n.hash)])).toEqual([
      [3, 0, hex(ref.mth(0, 8))],
      [2, 2, hex(ref.mth(8, 12))],
      [0, 12, hex(ref.leaves[12]!)],
    ]);
    expect(f.toJSON()).toEqual({ v: 1, size: 13, nodes: f.nodes().map((n) => hex(n.hash)) });
  });

  it('clone and fromJSON are independent copies', () => {
    const f = new MerkleFrontier();
    for (const l of ref.leaves.slice(0, 5)) f.append(l);
    const g = f.clone();
    g.append(ref.leaves[5]!);
    expect(f.size).toBe(5);
    expect(hex(f.root())).toBe(hex(ref.mth(0, 5)));
    expect(hex(g.root())).toBe(hex(ref.mth(0, 6)));
  });

  it('is not corrupted by callers mutating the leaf buffer they appended', () => {
    const f = new MerkleFrontier();
    const leaf = Buffer.from(ref.leaves[0]!);
    f.append(leaf);
    leaf.fill(0);
    expect(hex(f.root())).toBe(hex(ref.leaves[0]!));
  });

  it('rejects malformed input and persisted state', () => {
    const f = new MerkleFrontier();
    expect(() => f.append(Buffer.alloc(31))).toThrow(merkleError('BAD_HASH'));
    expect(() => MerkleFrontier.fromJSON({ v: 1, size: 3, nodes: [hex(ref.leaves[0]!)] })).toThrow(merkleError('BAD_FRONTIER'));
    expect(() => MerkleFrontier.fromJSON({ v: 1, size: 1, nodes: ['XYZ'] })).toThrow(merkleError('BAD_HASH'));
    expect(() => MerkleFrontier.fromJSON({ v: 2, size: 0, nodes: [] })).toThrow(merkleError('BAD_FRONTIER'));
    expect(() => MerkleFrontier.fromJSON({ v: 1, size: -1, nodes: [] })).toThrow(merkleError('BAD_SIZE'));
    expect(() => MerkleFrontier.fromJSON(null)).toThrow(merkleError('BAD_FRONTIER'));
    expect(MerkleFrontier.fromJSON({ v: 1, size: 0, nodes: [] }).root()).toEqual(merkleRoot([]));
  });

  it('appendAll returns every completion', () => {
    const f = new MerkleFrontier();
    expect(f.appendAll(ref.leaves.slice(0, 16)).length).toBe(15);
    expect(hex(f.root())).toBe(hex(ref.mth(0, 16)));
  });
});

/**
 * A synthetic million-leaf log: every hash is derived from its position, so lookups can be
 * counted without hashing a million leaves. Proof bytes are meaningless here; correctness is
 * covered by the real-data tests below and in merkle.property.test.ts.
 */
class CountingSource implements SubtreeSource {
  lookups = 0;
  roundTrips = 0;
  leafReads = 0;
  leavesRead = 0;
  constructor(readonly size: number) {}
  async getLeafHashes(start: number, end: number): Promise<Buffer[]> {
    this.leafReads++;
    this.leavesRead += end - start;
    return Array.from({ length: end - start }, (_, i) => sha256(Buffer.from(`leaf ${start + i}`)));
  }
  async getSubtrees(refs: readonly SubtreeRef[]): Promise<Buffer[]> {
    this.roundTrips++;
    this.lookups += refs.length;
    for (const r of refs) if ((r.index + 1) * 2 ** r.level > this.size) throw new Error(`asked for incomplete subtree ${r.level}/${r.index}`);
    return refs.map((r) => sha256(Buffer.from(`node ${r.level}/${r.index}`)));
  }
}

describe('proofs over a SubtreeSource', () => {
  const N = 1_000_000;
  const LOG = Math.ceil(Math.log2(N)); // 20

  it(`inclusion proofs in a ${N}-leaf log use O(log N) lookups in one round trip`, async () => {
    for (const index of [0, 1, 123_456, 524_287, 524_288, 999_998, 999_999]) {
      const s = new CountingSource(N);
      const proof = await inclusionProofFromSource(s, index, N);
      expect(proof.length).toBeLessThanOrEqual(LOG);
      expect(s.lookups).toBeLessThanOrEqual(2 * LOG);
      expect(s.roundTrips).toBe(1);
      // At most the sibling leaf and a lone right-edge leaf (odd tree size).
      expect(s.leavesRead).toBeLessThanOrEqual(2);
    }
  });

  it(`consistency proofs and roots in a ${N}-leaf log use O(log N) lookups`, async () => {
    for (const [m, n] of [
      [1, N],
      [999_999, N],
      [500_000, N],
      [524_288, N],
      [3, 17],
      [123_457, 987_653],
    ] as const) {
      const s = new CountingSource(N);
      await consistencyProofFromSource(s, m, n);
      expect(s.lookups).toBeLessThanOrEqual(2 * LOG);
      expect(s.roundTrips).toBe(1);
      expect(s.leavesRead).toBeLessThanOrEqual(3);
    }
    const s = new CountingSource(N);
    await rootFromSource(s, N);
    expect(s.lookups + s.leavesRead).toBeLessThanOrEqual(LOG);
  });

  describe('on real data', () => {
    // 2^16 + 2^12 + 5 leaves: deep enough that every level is exercised, cheap enough to hash.
    const N2 = 65_536 + 4_096 + 5;
    const ref = RefTree.of(N2, 'real');
    const full = new MemorySubtreeSource();
    full.appendAll(ref.leaves);
    const root = merkleRoot(ref.leaves);
    const samples = [0, 1, 2, 4_095, 4_096, 65_535, 65_536, 69_631, 69_632, N2 - 1];
    // In-memory proofs cost O(N) hashes each, so compute each expected proof once.
    const memo = new Map<number, string[]>();
    const expectedPath = (i: number): string[] => {
      let p = memo.get(i);
      if (!p) memo.set(i, (p = inclusionProof(i, ref.leaves).map(hex)));
      return p;
    };

    it('root and frontier agree with the in-memory tree', async () => {
      expect(hex(full.frontier.root())).toBe(hex(root));
      expect(hex(await rootFromSource(full, N2))).toBe(hex(root));
      const f = await frontierFromSource(full, N2);
      expect(f.toJSON()).toEqual(full.frontier.toJSON());
    });

    it('inclusion proofs equal the in-memory ones and need O(log N) lookups', async () => {
      for (const i of samples) {
        full.resetStats();
        const p = await inclusionProofFromSource(full, i, N2);
        expect(full.stats.roundTrips).toBe(1);
        expect(full.stats.subtreeLookups).toBeLessThanOrEqual(2 * 17);
        expect(full.stats.leavesRead).toBeLessThanOrEqual(2);
        expect(p.map(hex)).toEqual(expectedPath(i));
        expect(verifyInclusion(ref.leaves[i]!, i, N2, p, root)).toBe(true);
      }
    });

    it('consistency proofs equal the in-memory ones', async () => {
      for (const m of [1, 7, 4_096, 65_536, 65_537, N2 - 1]) {
        const p = await consistencyProofFromSource(full, m, N2);
        expect(p.map(hex)).toEqual(consistencyProof(m, ref.leaves).map(hex));
        expect(verifyConsistency(m, N2, merkleRoot(ref.leaves, m), root, p)).toBe(true);
      }
    });

    it('sparse storage (every 4th level) falls back to children and leaves, with identical proofs', async () => {
      const sparse = new MemorySubtreeSource({ storeLevel: (l) => l % 4 === 0 });
      sparse.appendAll(ref.leaves);
      expect(sparse.storedSubtrees).toBeLessThan(full.storedSubtrees / 10);
      for (const i of samples) {
        sparse.resetStats();
        const p = await inclusionProofFromSource(sparse, i, N2, { maxLeafRead: 8 });
        expect(p.map(hex)).toEqual(expectedPath(i));
        // A missing node is split at most 3 times before reaching a stored level: <= 1+2+4+8.
        expect(sparse.stats.subtreeLookups).toBeLessThanOrEqual(17 * 15);
        expect(sparse.stats.roundTrips).toBeLessThanOrEqual(4);
      }
      expect(hex(await rootFromSource(sparse, N2))).toBe(hex(root));
    });

    it('a source without subtree lookups still gives correct proofs from leaves', async () => {
      const leavesOnly: SubtreeSource = { getLeafHashes: (a, b) => full.getLeafHashes(a, b) };
      for (const i of [0, 4_096, N2 - 1]) {
        expect((await inclusionProofFromSource(leavesOnly, i, N2)).map(hex)).toEqual(expectedPath(i));
      }
      expect(hex(await rootFromSource(leavesOnly, 1000))).toBe(hex(merkleRoot(ref.leaves, 1000)));
    });

    it('the unbatched getSubtree path gives the same proofs', async () => {
      const unbatched = new MemorySubtreeSource({ batched: false });
      unbatched.appendAll(ref.leaves.slice(0, 5_000));
      expect(unbatched.getSubtrees).toBeUndefined();
      for (const i of [0, 2_047, 4_999]) {
        expect((await inclusionProofFromSource(unbatched, i, 5_000)).map(hex)).toEqual(inclusionProof(i, ref.leaves, 5_000).map(hex));
      }
      expect((await consistencyProofFromSource(unbatched, 1_234, 5_000)).map(hex)).toEqual(consistencyProof(1_234, ref.leaves, 5_000).map(hex));
    });

    it('resolveSubtrees handles overlapping and duplicate refs', async () => {
      const sparse = new MemorySubtreeSource({ storeLevel: (l) => l === 10 });
      sparse.appendAll(ref.leaves.slice(0, 4_096));
      const refs: SubtreeRef[] = [
        { level: 12, index: 0 },
        { level: 11, index: 1 },
        { level: 12, index: 0 },
        { level: 3, index: 5 },
      ];
      const got = await resolveSubtrees(sparse, refs, { maxLeafRead: 4 });
      expect(got.map(hex)).toEqual(refs.map((r) => hex(ref.mth(r.index * 2 ** r.level, (r.index + 1) * 2 ** r.level))));
    });
  });

  it('rejects a source that returns the wrong data', async () => {
    const shortLeaves: SubtreeSource = { getLeafHashes: async () => [] };
    await expect(inclusionProofFromSource(shortLeaves, 0, 4)).rejects.toThrow(/returned 0 hashes/);
    await expect(inclusionProofFromSource(shortLeaves, 0, 4)).rejects.toThrow(merkleError('BAD_SOURCE'));
    const badNode: SubtreeSource = {
      getLeafHashes: async (a, b) => Array.from({ length: b - a }, () => leafHash(Buffer.from('x'))),
      getSubtree: async () => Buffer.alloc(16),
    };
    await expect(inclusionProofFromSource(badNode, 0, 1024)).rejects.toThrow(/not a 32-byte hash/);
    const m = new MemorySubtreeSource();
    m.append(leafHash(Buffer.from('a')));
    await expect(inclusionProofFromSource(m, 0, 2)).rejects.toThrow(merkleError('BAD_SIZE'));
    await expect(inclusionProofFromSource(m, 1, 1)).rejects.toThrow(merkleError('BAD_SIZE'));
  });

  it('perfectSubtrees decomposes aligned ranges and rejects unaligned ones', () => {
    expect(perfectSubtrees(0, 13)).toEqual([
      { level: 3, index: 0 },
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    expect(perfectSubtrees(8, 11)).toEqual([
      { level: 1, index: 4 },
      { level: 0, index: 10 },
    ]);
    expect(() => perfectSubtrees(2, 8)).toThrow(merkleError('BAD_SIZE'));
  });
});
