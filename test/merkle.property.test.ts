import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { emptyRoot, leafHash } from '../src/merkle/hash';
import { consistencyProof, inclusionProof, merkleRoot, verifyConsistency, verifyInclusion } from '../src/merkle/tree';
import { MerkleFrontier } from '../src/merkle/frontier';
import { MemorySubtreeSource, consistencyProofFromSource, inclusionProofFromSource, rootFromSource } from '../src/merkle/source';
import { RefTree, flipped, hex } from './fixtures/merkle/reference';

/**
 * Exhaustive checks for every tree size 1..MAX against the RFC's recursive definitions
 * (RefTree). Proofs for every (index, size) and every (m, n) pair come from the storage-backed
 * prover, which is cheap per proof, and all of them are generated, compared and verified; the
 * in-memory prover costs O(n) hashes per proof, so it is checked exhaustively up to 64 leaves
 * and by fast-check sampling above that, where source == in-memory is asserted too.
 */
const MAX = 300;
const ref = RefTree.of(MAX);
const L = ref.leaves;
const roots: Buffer[] = [emptyRoot()];
let src: MemorySubtreeSource;

// Corruption probes cost ~log n verifications each; run them for every pair up to 100 leaves
// and for a rotating 1-in-5 sample above that, to keep the suite light on a shared machine.
const probe = (i: number, n: number): boolean => n <= 100 || i % 5 === n % 5;

// Cheap equality for hot loops (vitest's deep equal is the bottleneck otherwise).
function same(got: readonly Buffer[], want: readonly Buffer[], what: string): void {
  if (got.length !== want.length || got.some((g, k) => !g.equals(want[k]!))) expect(got.map(hex), what).toEqual(want.map(hex));
}

beforeAll(() => {
  src = new MemorySubtreeSource();
  for (let n = 1; n <= MAX; n++) {
    src.append(L[n - 1]!);
    roots.push(ref.mth(0, n));
  }
});

describe(`roots, sizes 1..${MAX}`, () => {
  it('merkleRoot and an incrementally built frontier equal the RFC MTH at every size', () => {
    const f = new MerkleFrontier();
    for (let n = 1; n <= MAX; n++) {
      f.append(L[n - 1]!);
      const want = hex(roots[n]!);
      expect(hex(merkleRoot(L, n))).toBe(want);
      expect(hex(f.root())).toBe(want);
      expect(f.size).toBe(n);
    }
  });

  it('the frontier survives a JSON round trip at every size', () => {
    const f = new MerkleFrontier();
    for (let n = 1; n <= MAX; n++) {
      f.append(L[n - 1]!);
      const g = MerkleFrontier.fromJSON(JSON.parse(JSON.stringify(f)));
      expect(hex(g.root())).toBe(hex(roots[n]!));
      // Appending after a restore continues the same tree.
      if (n < MAX) {
        g.append(L[n]!);
        expect(hex(g.root())).toBe(hex(roots[n + 1]!));
      }
    }
  });

  it('rootFromSource equals the MTH at every size', async () => {
    for (let n = 0; n <= MAX; n++) expect(hex(await rootFromSource(src, n))).toBe(hex(roots[n]!));
  });
});

describe(`inclusion proofs, every index of every size 1..${MAX}`, () => {
  it('match PATH(m, D[n]) and verify; corruptions rejected (all pairs to 100 leaves, 1 in 5 above)', async () => {
    let proofs = 0;
    for (let n = 1; n <= MAX; n++) {
      const root = roots[n]!;
      for (let i = 0; i < n; i++) {
        const proof = await inclusionProofFromSource(src, i, n);
        const lh = L[i]!;
        same(proof, ref.path(i, 0, n), `PATH(${i}, D[${n}])`);
        if (!verifyInclusion(lh, i, n, proof, root)) throw new Error(`valid proof rejected: leaf ${i} of ${n}`);
        proofs++;
        if (!probe(i, n)) continue;

        // A flipped byte anywhere in the proof (position varies with i, n).
        for (let j = 0; j < proof.length; j++) {
          if (verifyInclusion(lh, i, n, flipped(proof, j, i + n + j, 1 << ((i + j) % 8)), root)) throw new Error(`flip ${j} accepted at ${i}/${n}`);
        }
        const leafFlip = flipped([lh], 0, i * 7 + n)[0]!;
        const rootFlip = flipped([root], 0, i + 3)[0]!;
        const bad: [string, boolean][] = [
          ['flipped leaf', verifyInclusion(leafFlip, i, n, proof, root)],
          ['flipped root', verifyInclusion(lh, i, n, proof, rootFlip)],
          ['index + 1', verifyInclusion(lh, i + 1, n, proof, root)],
          ['index - 1', i > 0 && verifyInclusion(lh, i - 1, n, proof, root)],
          ['index ^ 2', verifyInclusion(lh, i ^ 2, n, proof, root)],
          // Sizes are checked against the true root of the claimed size: anchors bind the two.
          ['size + 1', n < MAX && verifyInclusion(lh, i, n + 1, proof, roots[n + 1]!)],
          ['size - 1', i < n - 1 && verifyInclusion(lh, i, n - 1, proof, roots[n - 1]!)],
          ['size * 2', 2 * n <= MAX && verifyInclusion(lh, i, 2 * n, proof, roots[2 * n]!)],
          ['truncated', proof.length > 0 && verifyInclusion(lh, i, n, proof.slice(0, -1), root)],
          ['extended', verifyInclusion(lh, i, n, [...proof, root], root)],
        ];
        const accepted = bad.filter(([, ok]) => ok).map(([d]) => d);
        if (accepted.length) throw new Error(`accepted ${accepted.join(', ')} for leaf ${i} of ${n}`);
      }
    }
    expect(proofs).toBe((MAX * (MAX + 1)) / 2);
  });

  it("a proof never verifies for any other (index, size) against that size's root (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: MAX }), fc.nat(), fc.integer({ min: 1, max: MAX }), fc.nat(), async (n, a, n2, b) => {
        const i = a % n;
        const j = b % n2;
        fc.pre(i !== j || n !== n2);
        const proof = await inclusionProofFromSource(src, i, n);
        expect(verifyInclusion(L[i]!, j, n2, proof, roots[n2]!)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('in-memory prover equals the RFC definition exhaustively up to 64 leaves', () => {
    for (let n = 1; n <= 64; n++) {
      for (let i = 0; i < n; i++) expect(inclusionProof(i, L, n).map(hex)).toEqual(ref.path(i, 0, n).map(hex));
    }
  });

  it('in-memory prover equals the async source prover (fast-check, sizes to 300)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: MAX }), fc.nat(), async (n, a) => {
        const i = a % n;
        const mem = inclusionProof(i, L, n);
        expect((await inclusionProofFromSource(src, i, n)).map(hex)).toEqual(mem.map(hex));
        expect(verifyInclusion(L[i]!, i, n, mem, roots[n]!)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe(`consistency proofs, every m < n for sizes 1..${MAX}`, () => {
  it('match PROOF(m, D[n]) and verify; corruptions rejected (all pairs to 100 leaves, 1 in 5 above)', async () => {
    let proofs = 0;
    for (let n = 1; n <= MAX; n++) {
      const r2 = roots[n]!;
      for (let m = 1; m < n; m++) {
        const r1 = roots[m]!;
        const proof = await consistencyProofFromSource(src, m, n);
        same(proof, ref.proof(m, n), `PROOF(${m}, D[${n}])`);
        if (!verifyConsistency(m, n, r1, r2, proof)) throw new Error(`valid proof rejected: ${m}→${n}`);
        proofs++;
        if (!probe(m, n)) continue;

        for (let j = 0; j < proof.length; j++) {
          if (verifyConsistency(m, n, r1, r2, flipped(proof, j, m + n + j, 1 << ((m + j) % 8)))) throw new Error(`flip ${j} accepted at ${m}→${n}`);
        }
        const bad: [string, boolean][] = [
          ['flipped root1', verifyConsistency(m, n, flipped([r1], 0, m)[0]!, r2, proof)],
          ['flipped root2', verifyConsistency(m, n, r1, flipped([r2], 0, n)[0]!, proof)],
          ['swapped roots', verifyConsistency(m, n, r2, r1, proof)],
          // Wrong sizes, each with the true root of the claimed size.
          ['size1 - 1', verifyConsistency(m - 1, n, roots[m - 1]!, r2, proof)],
          ['size1 + 1', m + 1 < n && verifyConsistency(m + 1, n, roots[m + 1]!, r2, proof)],
          ['size2 + 1', n < MAX && verifyConsistency(m, n + 1, r1, roots[n + 1]!, proof)],
          ['size2 - 1', n - 1 > m && verifyConsistency(m, n - 1, r1, roots[n - 1]!, proof)],
          ['empty', verifyConsistency(m, n, r1, r2, [])],
          ['truncated', verifyConsistency(m, n, r1, r2, proof.slice(0, -1))],
          ['extended', verifyConsistency(m, n, r1, r2, [...proof, r1])],
          ['prepended', verifyConsistency(m, n, r1, r2, [r1, ...proof])],
        ];
        const accepted = bad.filter(([, ok]) => ok).map(([d]) => d);
        if (accepted.length) throw new Error(`accepted ${accepted.join(', ')} for ${m}→${n}`);
      }
    }
    expect(proofs).toBe((MAX * (MAX - 1)) / 2);
  });

  it('in-memory prover equals the RFC definition exhaustively up to 64 leaves', () => {
    for (let n = 1; n <= 64; n++) {
      for (let m = 1; m <= n; m++) expect(consistencyProof(m, L, n).map(hex)).toEqual(m === n ? [] : ref.proof(m, n).map(hex));
    }
  });

  it('in-memory prover equals the async source prover (fast-check, sizes to 300)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: MAX }), fc.nat(), async (n, a) => {
        const m = (a % (n - 1)) + 1;
        const mem = consistencyProof(m, L, n);
        expect((await consistencyProofFromSource(src, m, n)).map(hex)).toEqual(mem.map(hex));
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, mem)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('a proof never links two different logs (fast-check)', async () => {
    const other = RefTree.of(MAX, 'other');
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: MAX }), fc.nat(), fc.nat(), async (n, a, b) => {
        const m = (a % (n - 1)) + 1;
        // Fork: the second log shares the first k leaves, then diverges before m.
        const k = b % m;
        const forked = [...L.slice(0, k), ...other.leaves.slice(k, n)];
        const proof = consistencyProof(m, forked, n);
        expect(verifyConsistency(m, n, roots[m]!, merkleRoot(forked, n), proof)).toBe(false);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, proof)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });
});

it('leafHash is deterministic and input-sensitive (fast-check)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (a, b) => {
      expect(hex(leafHash(a)) === hex(leafHash(b))).toBe(Buffer.from(a).equals(Buffer.from(b)));
    }),
  );
});
