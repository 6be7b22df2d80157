import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { emptyRoot, leafHash, nodeHash } from '../src/merkle/hash';
import { consistencyProof, inclusionProof, merkleRoot, rootFromInclusionProof, verifyConsistency, verifyInclusion } from '../src/merkle/tree';
import { MerkleFrontier } from '../src/merkle/frontier';
import { hex, unhex } from './fixtures/merkle/reference';
import { MerkleError } from '../src/merkle/errors';

/** The library's error with this code (the kind of bad input it names). */
const merkleError = (code: string) => expect.objectContaining({ name: MerkleError.name, code });

interface Vectors {
  leafInputs: string[];
  emptyRoot: string;
  rootsBySize: Record<string, string>;
  nodeHashes: string[][];
  inclusionProofs: { leafIndex: number; treeSize: number; proof: string[] }[];
  consistencyProofs: { size1: number; size2: number; proof: string[] }[];
  nodeIdInclusionProofs: { leafIndex: number; treeSize: number; nodes: string[] }[];
  nodeIdConsistencyProofs: { size1: number; size2: number; nodes: string[] }[];
}

const V = JSON.parse(readFileSync(new URL('./fixtures/merkle/rfc6962-vectors.json', import.meta.url), 'utf8')) as Vectors;
const leaves = V.leafInputs.map((h) => leafHash(unhex(h)));
const root = (n: number): Buffer => unhex(V.rootsBySize[String(n)]!);
const node = (id: string): string => {
  const [level, index] = id.split(':').map(Number);
  return V.nodeHashes[level!]![index!]!;
};
const SOME_HASH = unhex('abacaba000000000000000000000000000000000000000000060061e00123456');

describe('RFC 6962 hashing', () => {
  it('empty root is SHA-256 of the empty string', () => {
    expect(hex(emptyRoot())).toBe(V.emptyRoot);
    expect(hex(merkleRoot([]))).toBe(V.emptyRoot);
  });

  it('leaf hashes match the published level-0 node hashes', () => {
    expect(leaves.map(hex)).toEqual(V.nodeHashes[0]);
  });

  it('interior node hashes match the published levels 1..3', () => {
    for (let level = 1; level < V.nodeHashes.length; level++) {
      V.nodeHashes[level]!.forEach((h, i) => {
        expect(hex(nodeHash(unhex(V.nodeHashes[level - 1]![2 * i]!), unhex(V.nodeHashes[level - 1]![2 * i + 1]!)))).toBe(h);
      });
    }
  });

  it('leaf and node hashes are domain separated', () => {
    const a = Buffer.alloc(32, 1);
    const b = Buffer.alloc(32, 2);
    expect(hex(leafHash(Buffer.concat([a, b])))).not.toBe(hex(nodeHash(a, b)));
  });
});

describe('RFC 6962 roots for sizes 0..8', () => {
  for (let n = 0; n <= 8; n++) {
    it(`MTH of the first ${n} reference leaves`, () => {
      expect(hex(merkleRoot(leaves, n))).toBe(V.rootsBySize[String(n)]);
      expect(hex(merkleRoot(leaves.slice(0, n)))).toBe(V.rootsBySize[String(n)]);
    });
  }

  it('frontier reproduces every root and reports the published subtrees', () => {
    const completed: string[] = [];
    const f = new MerkleFrontier({ onSubtree: (s) => completed.push(`${s.level}:${s.index}:${hex(s.hash)}`) });
    expect(hex(f.root())).toBe(V.rootsBySize['0']);
    leaves.forEach((l, i) => {
      f.append(l);
      expect(hex(f.root())).toBe(V.rootsBySize[String(i + 1)]);
    });
    const expected: string[] = [];
    for (let level = 1; level < V.nodeHashes.length; level++)
      V.nodeHashes[level]!.forEach((h, i) => {
        expected.push(`${level}:${i}:${h}`);
      });
    expect(completed.sort()).toEqual(expected.sort());
  });
});

describe('published inclusion proofs', () => {
  for (const t of V.inclusionProofs) {
    it(`leaf ${t.leafIndex} in tree of ${t.treeSize}`, () => {
      expect(inclusionProof(t.leafIndex, leaves, t.treeSize).map(hex)).toEqual(t.proof);
      expect(verifyInclusion(leaves[t.leafIndex]!, t.leafIndex, t.treeSize, t.proof.map(unhex), root(t.treeSize))).toBe(true);
    });
  }
  for (const t of V.nodeIdInclusionProofs) {
    it(`leaf ${t.leafIndex} in tree of ${t.treeSize} (node-ID table)`, () => {
      const want = t.nodes.map(node);
      expect(inclusionProof(t.leafIndex, leaves, t.treeSize).map(hex)).toEqual(want);
      expect(verifyInclusion(leaves[t.leafIndex]!, t.leafIndex, t.treeSize, want.map(unhex), root(t.treeSize))).toBe(true);
    });
  }
});

describe('published consistency proofs', () => {
  for (const t of V.consistencyProofs) {
    it(`${t.size1} → ${t.size2}`, () => {
      expect(consistencyProof(t.size1, leaves, t.size2).map(hex)).toEqual(t.proof);
      expect(verifyConsistency(t.size1, t.size2, root(t.size1), root(t.size2), t.proof.map(unhex))).toBe(true);
    });
  }
  for (const t of V.nodeIdConsistencyProofs) {
    it(`${t.size1} → ${t.size2} (node-ID table)`, () => {
      const want = t.nodes.map(node);
      expect(consistencyProof(t.size1, leaves, t.size2).map(hex)).toEqual(want);
      expect(verifyConsistency(t.size1, t.size2, root(t.size1), root(t.size2), want.map(unhex))).toBe(true);
    });
  }
});

// The corruption probes of transparency-dev/merkle proof/verify_test.go, applied to the
// published vectors.
describe('verifiers reject corrupted published proofs', () => {
  for (const t of V.inclusionProofs.filter((x) => x.treeSize > 1)) {
    it(`inclusion: leaf ${t.leafIndex} in tree of ${t.treeSize}`, () => {
      const proof = t.proof.map(unhex);
      const i = t.leafIndex;
      const n = t.treeSize;
      const lh = leaves[i]!;
      const r = root(n);
      const probes: [number, number, Buffer, Buffer, Buffer[], string][] = [
        [i - 1, n, lh, r, proof, 'index - 1'],
        [i + 1, n, lh, r, proof, 'index + 1'],
        [i ^ 2, n, lh, r, proof, 'index ^ 2'],
        [i, n * 2, lh, r, proof, 'size * 2'],
        [i, Math.floor(n / 2), lh, r, proof, 'size / 2'],
        [i, n, leafHash(Buffer.from('WrongLeaf')), r, proof, 'wrong leaf'],
        [i, n, lh, emptyRoot(), proof, 'empty root'],
        [i, n, lh, SOME_HASH, proof, 'random root'],
        [i, n, lh, r, [...proof, Buffer.alloc(0)], 'trailing garbage'],
        [i, n, lh, r, [...proof, r], 'trailing root'],
        [i, n, lh, r, [Buffer.alloc(0), ...proof], 'preceding garbage'],
        [i, n, lh, r, [r, ...proof], 'preceding root'],
        [i, n, lh, r, proof.slice(0, -1), 'removed component'],
        [i, n, lh, r, [proof[0]!, SOME_HASH, ...proof.slice(1)], 'inserted component'],
      ];
      proof.forEach((_, j) => {
        const p = proof.map((x) => Buffer.from(x));
        p[j]![0]! ^= 8;
        probes.push([i, n, lh, r, p, `modified proof[${j}]`]);
      });
      const accepted = probes.filter(([a, b, c, d, e]) => verifyInclusion(c, a, b, e, d)).map((p) => p[5]);
      expect(accepted).toEqual([]);
    });
  }

  for (const t of V.consistencyProofs.filter((x) => x.proof.length > 0)) {
    it(`consistency: ${t.size1} → ${t.size2}`, () => {
      const proof = t.proof.map(unhex);
      const [m, n] = [t.size1, t.size2];
      const [r1, r2] = [root(m), root(n)];
      const wrong = leafHash(Buffer.from('WrongRoot'));
      const probes: [number, number, Buffer, Buffer, Buffer[], string][] = [
        [m - 1, n, r1, r2, proof, 'size1 - 1'],
        [m + 1, n, r1, r2, proof, 'size1 + 1'],
        [m ^ 2, n, r1, r2, proof, 'size1 ^ 2'],
        [m, n * 2, r1, r2, proof, 'size2 * 2'],
        [m, Math.floor(n / 2), r1, r2, proof, 'size2 / 2'],
        [m, n, wrong, r2, proof, 'wrong root1'],
        [m, n, r1, wrong, proof, 'wrong root2'],
        [m, n, r2, r1, proof, 'swapped roots'],
        [m, n, r1, r2, [], 'empty proof'],
        [m, n, r1, r2, [...proof, Buffer.alloc(0)], 'trailing garbage'],
        [m, n, r1, r2, [...proof, r1], 'trailing root1'],
        [m, n, r1, r2, [...proof, r2], 'trailing root2'],
        [m, n, r1, r2, [Buffer.alloc(0), ...proof], 'preceding garbage'],
        [m, n, r1, r2, [r1, ...proof], 'preceding root1'],
        [m, n, r1, r2, [r2, ...proof], 'preceding root2'],
        [m, n, r1, r2, [proof[0]!, ...proof], 'preceding proof[0]'],
        [m, n, r1, r2, proof.slice(0, -1), 'truncated proof'],
      ];
      proof.forEach((_, j) => {
        const p = proof.map((x) => Buffer.from(x));
        p[j]![0]! ^= 16;
        probes.push([m, n, r1, r2, p, `modified proof[${j}]`]);
      });
      const accepted = probes.filter(([a, b, c, d, e]) => verifyConsistency(a, b, c, d, e)).map((p) => p[5]);
      expect(accepted).toEqual([]);
    });
  }
});

describe('verifier edge cases (transparency-dev/merkle TestVerifyInclusion / TestVerifyConsistency)', () => {
  it('single-entry tree: root equals leaf hash, empty proof', () => {
    const h = leafHash(Buffer.from('data'));
    expect(verifyInclusion(h, 0, 1, [], h)).toBe(true);
    expect(verifyInclusion(h, 0, 1, [], Buffer.alloc(0))).toBe(false);
    expect(verifyInclusion(Buffer.alloc(0), 0, 1, [], h)).toBe(false);
    expect(verifyInclusion(Buffer.alloc(0), 0, 1, [], Buffer.alloc(0))).toBe(false);
  });

  it('rejects impossible index/size pairs', () => {
    for (const [i, n] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [2, 1],
    ] as const) {
      expect(verifyInclusion(SOME_HASH, i, n, [], Buffer.alloc(0))).toBe(false);
      expect(verifyInclusion(Buffer.alloc(0), i, n, [], emptyRoot())).toBe(false);
      expect(verifyInclusion(SOME_HASH, i, n, [], emptyRoot())).toBe(false);
    }
    expect(rootFromInclusionProof(SOME_HASH, -1, 4, [])).toBeUndefined();
    expect(rootFromInclusionProof(SOME_HASH, 0.5, 4, [])).toBeUndefined();
  });

  it('consistency edge cases', () => {
    const r1 = leafHash(Buffer.from("don't care 1"));
    const r2 = leafHash(Buffer.from("don't care 2"));
    const e = emptyRoot();
    const cases: [number, number, Buffer, Buffer, Buffer[], boolean][] = [
      [0, 0, r1, r2, [], false],
      [1, 1, r1, r2, [], false],
      [0, 0, e, e, [], true],
      [1, 1, r2, r2, [], true],
      [0, 1, e, r2, [], true], // an empty tree is a prefix of everything
      [0, 1, r1, r2, [], false], // stricter than Trillian: root1 must be the empty root
      [1, 0, r1, r2, [], false],
      [2, 1, r1, r2, [], false],
      [1, 2, r1, r2, [], false],
      [0, 0, e, r2, [], false],
      [1, 1, e, r2, [], false],
      [0, 0, e, e, [e], false],
      [0, 1, e, e, [e], false],
      [1, 1, e, e, [e], false],
    ];
    for (const [m, n, a, b, p, want] of cases) expect([m, n, verifyConsistency(m, n, a, b, p)]).toEqual([m, n, want]);
  });

  it('generators reject out-of-range arguments', () => {
    expect(() => inclusionProof(8, leaves, 8)).toThrow(merkleError('BAD_SIZE'));
    expect(() => inclusionProof(0, leaves, 0)).toThrow(merkleError('BAD_SIZE'));
    expect(() => inclusionProof(-1, leaves)).toThrow(merkleError('BAD_SIZE'));
    expect(() => inclusionProof(0, leaves, 9)).toThrow(merkleError('BAD_SIZE'));
    expect(() => consistencyProof(6, leaves, 3)).toThrow(merkleError('BAD_SIZE'));
    expect(() => merkleRoot([Buffer.alloc(31)])).toThrow(merkleError('BAD_HASH'));
    expect(consistencyProof(0, leaves, 3)).toEqual([]);
    expect(consistencyProof(5, leaves, 5)).toEqual([]);
  });
});
