/** The hand-written interior-node SHA-256 (src/merkle/node-sha256.ts) against node:crypto, and tree roots built with it against the RFC 6962 recursion. */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { leafHash, nodeHash } from '../src/merkle/hash';
import { nodeSha256Into, nodeSha256PairInto } from '../src/merkle/node-sha256';
import { merkleRoot, splitPoint } from '../src/merkle/tree';

const reference = (l: Uint8Array, r: Uint8Array) =>
  createHash('sha256')
    .update(Buffer.from([1]))
    .update(l)
    .update(r)
    .digest();

/** MTH by the RFC's recursion with node:crypto hashing. */
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return createHash('sha256').digest();
  if (leaves.length === 1) return leaves[0]!;
  const k = splitPoint(leaves.length);
  return reference(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

describe('interior node hash into a preallocated buffer', () => {
  it('equals SHA-256(0x01 ‖ left ‖ right) from node:crypto for 2,000 random pairs, at any offsets', () => {
    const dst = Buffer.alloc(100);
    for (let i = 0; i < 2000; i++) {
      const [l, r] = [randomBytes(32), randomBytes(32)];
      const src = Buffer.concat([randomBytes(i % 7), l, r]);
      nodeSha256Into(src, i % 7, dst, i % 50);
      expect(dst.subarray(i % 50, (i % 50) + 32).equals(reference(l, r))).toBe(true);
      nodeSha256PairInto(l, r, dst, 3);
      expect(dst.subarray(3, 35).equals(nodeHash(l, r))).toBe(true);
    }
  });

  it('may overwrite its own input (bottom-up hashing in place)', () => {
    const buf = randomBytes(64);
    const want = reference(buf.subarray(0, 32), buf.subarray(32));
    nodeSha256Into(buf, 0, buf, 0);
    expect(buf.subarray(0, 32).equals(want)).toBe(true);
  });

  it('tree roots match the RFC 6962 recursion for every size up to 70 and a few large ones', () => {
    for (const n of [...Array.from({ length: 70 }, (_, i) => i + 1), 127, 128, 129, 1000, 4097]) {
      const leaves = Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf-${i}`)));
      expect(merkleRoot(leaves).toString('hex'), `size ${n}`).toBe(mth(leaves).toString('hex'));
    }
  });
});
