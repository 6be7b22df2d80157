import { HASH_SIZE, emptyRoot, hashEquals, nodeHash, nodeHashInPlace } from './hash';
import { MerkleError } from './errors';
import { nodeSha256PairInto } from './node-sha256';

/**
 * In-memory RFC 6962 Merkle Tree Hash, proof generation (§2.1.1 PATH, §2.1.2 SUBPROOF) and
 * RFC 9162 §2.1.3.2 / §2.1.4.2 proof verification.
 *
 * Sizes and indices are plain numbers (safe integers, so up to 2^53 leaves). Bit operators
 * are avoided in the size arithmetic because JS bit operators truncate to 32 bits.
 */

/** A half-open leaf range [start, end). */
export interface LeafRange {
  start: number;
  end: number;
}

/** A perfect subtree: 2^level leaves starting at index * 2^level. */
export interface SubtreeRef {
  level: number;
  index: number;
}

function assertSize(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new MerkleError('BAD_SIZE', `${name} must be a non-negative safe integer, got ${n}`);
}

function assertLeafHashes(leafHashes: readonly Uint8Array[], count: number): void {
  if (count > leafHashes.length) throw new MerkleError('BAD_SIZE', `tree size ${count} exceeds the ${leafHashes.length} leaf hashes given`);
  for (let i = 0; i < count; i++) {
    const h = leafHashes[i];
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) throw new MerkleError('BAD_HASH', `leaf hash ${i} is not a ${HASH_SIZE}-byte hash`);
  }
}

/** Largest power of two strictly less than n (n >= 2): the RFC 6962 split point k. */
export function splitPoint(n: number): number {
  if (n < 2) throw new MerkleError('BAD_SIZE', 'split point needs n >= 2');
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * MTH(D[start:end]) computed bottom-up: pair neighbours, promote an unpaired last node
 * unchanged. That is equivalent to the RFC's "split at the largest power of two" recursion
 * but needs no recursion. Levels above the leaves live in one preallocated flat buffer, hashed in
 * place (node i is written over slot i, which its children at 2i, 2i+1 have already vacated):
 * no Buffer is allocated per node.
 */
export function rangeRoot(leafHashes: readonly Uint8Array[], start: number, end: number): Buffer {
  const n = end - start;
  if (n <= 0) return emptyRoot();
  if (n === 1) return Buffer.from(leafHashes[start]!);
  let len = Math.ceil(n / 2);
  const buf = Buffer.allocUnsafe(len * HASH_SIZE);
  let j = 0;
  let i = start;
  for (; i + 1 < end; i += 2, j += HASH_SIZE) {
    const l = leafHashes[i]!;
    const r = leafHashes[i + 1]!;
    if (l.length === HASH_SIZE && r.length === HASH_SIZE) nodeSha256PairInto(l, r, buf, j);
    else nodeHash(l, r).copy(buf, j);
  }
  if (i < end) buf.set(leafHashes[i]!, j);
  while (len > 1) {
    let k = 0;
    let w = 0;
    for (; k + 1 < len; k += 2, w += HASH_SIZE) nodeHashInPlace(buf, k * HASH_SIZE, w);
    if (k < len) buf.copy(buf, w, k * HASH_SIZE, (k + 1) * HASH_SIZE);
    len = Math.ceil(len / 2);
  }
  return Buffer.from(buf.subarray(0, HASH_SIZE));
}

/** MTH over leaf hashes (RFC 6962 §2.1). The empty tree's root is SHA-256(""). */
export function merkleRoot(leafHashes: readonly Uint8Array[], treeSize: number = leafHashes.length): Buffer {
  assertSize('treeSize', treeSize);
  assertLeafHashes(leafHashes, treeSize);
  return rangeRoot(leafHashes, 0, treeSize);
}

/**
 * The leaf ranges whose MTHs form PATH(index, D[0:size]), in proof order (deepest first).
 * Pure size arithmetic, shared by the in-memory and the storage-backed provers.
 */
export function inclusionPlan(index: number, size: number): LeafRange[] {
  assertSize('index', index);
  assertSize('treeSize', size);
  if (index >= size) throw new MerkleError('BAD_SIZE', `leaf index ${index} out of range for tree size ${size}`);
  const out: LeafRange[] = [];
  let lo = 0;
  let hi = size;
  // Walk from the root down; PATH appends the sibling after the deeper sub-path, so reverse.
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      out.push({ start: lo + k, end: hi });
      hi = lo + k;
    } else {
      out.push({ start: lo, end: lo + k });
      lo += k;
    }
  }
  return out.reverse();
}

/**
 * The leaf ranges whose MTHs form PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true), in proof
 * order. m == n and m == 0 give the empty proof (both are trivially consistent).
 */
export function consistencyPlan(m: number, n: number): LeafRange[] {
  assertSize('size1', m);
  assertSize('size2', n);
  if (m > n) throw new MerkleError('BAD_SIZE', `size1 ${m} is larger than size2 ${n}`);
  if (m === 0 || m === n) return [];
  const out: LeafRange[] = [];
  let lo = 0;
  let hi = n;
  let whole = true; // the RFC's flag b: is D[lo:hi]'s left part the whole old tree?
  for (;;) {
    if (m === hi) {
      // SUBPROOF(m, D[m], b): {} when b, else {MTH(D[lo:hi])}.
      if (!whole) out.push({ start: lo, end: hi });
      break;
    }
    const k = splitPoint(hi - lo);
    if (m - lo <= k) {
      out.push({ start: lo + k, end: hi });
      hi = lo + k;
    } else {
      out.push({ start: lo, end: lo + k });
      lo += k;
      whole = false;
    }
  }
  return out.reverse();
}

/**
 * Decompose a range produced by a plan (start is a multiple of the next power of two at or
 * above its length, which every RFC 6962 split range is) into perfect subtrees, left to right.
 * MTH of the range is then the right fold nodeHash(s0, nodeHash(s1, ... s_last)).
 */
export function perfectSubtrees(start: number, end: number): SubtreeRef[] {
  const out: SubtreeRef[] = [];
  let pos = start;
  let remaining = end - start;
  let width = 1;
  let level = 0;
  while (width * 2 <= remaining) {
    width *= 2;
    level++;
  }
  for (; remaining > 0; width /= 2, level--) {
    if (width <= remaining) {
      if (pos % width !== 0) throw new MerkleError('BAD_SIZE', `range [${start}, ${end}) is not aligned to perfect subtrees`);
      out.push({ level, index: pos / width });
      pos += width;
      remaining -= width;
    }
  }
  return out;
}

/** Fold perfect subtree hashes (left to right) into the MTH of their union. */
export function foldSubtrees(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return emptyRoot();
  let h: Uint8Array = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) h = nodeHash(hashes[i]!, h);
  return Buffer.from(h);
}

/** PATH(index, D[0:treeSize]) — RFC 6962 §2.1.1 audit path, deepest sibling first. */
export function inclusionProof(index: number, leafHashes: readonly Uint8Array[], treeSize: number = leafHashes.length): Buffer[] {
  const plan = inclusionPlan(index, treeSize);
  assertLeafHashes(leafHashes, treeSize);
  return plan.map((r) => rangeRoot(leafHashes, r.start, r.end));
}

/** PROOF(m, D[0:n]) — RFC 6962 §2.1.2 consistency proof between sizes m and n. */
export function consistencyProof(m: number, leafHashes: readonly Uint8Array[], n: number = leafHashes.length): Buffer[] {
  const plan = consistencyPlan(m, n);
  assertLeafHashes(leafHashes, n);
  return plan.map((r) => rangeRoot(leafHashes, r.start, r.end));
}

function half(n: number): number {
  return Math.floor(n / 2);
}

/**
 * RFC 9162 §2.1.3.2: recompute the root from a leaf hash and its inclusion proof.
 * Returns undefined when the proof cannot belong to a tree of that size.
 */
export function rootFromInclusionProof(leaf: Uint8Array, index: number, treeSize: number, proof: readonly Uint8Array[]): Buffer | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize) || index < 0 || index >= treeSize) return undefined;
  if (!(leaf instanceof Uint8Array) || leaf.length !== HASH_SIZE) return undefined;
  let fn = index;
  let sn = treeSize - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (!(p instanceof Uint8Array) || p.length !== HASH_SIZE) return undefined;
    if (sn === 0) return undefined; // proof longer than the path to the root
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      // Skip levels where this node is the right-edge node with no sibling.
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return undefined; // proof too short
  return Buffer.from(r);
}

/** RFC 9162 §2.1.3.2 inclusion proof verification. */
export function verifyInclusion(leaf: Uint8Array, index: number, treeSize: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!(root instanceof Uint8Array) || root.length !== HASH_SIZE) return false;
  return hashEquals(rootFromInclusionProof(leaf, index, treeSize, proof), root);
}

/**
 * RFC 9162 §2.1.4.2 consistency proof verification, plus the edge cases the RFC leaves to the
 * caller: equal sizes need an empty proof and equal roots; size1 == 0 needs an empty proof and
 * root1 equal to the empty-tree root (stricter than accepting any root1, which proves nothing).
 */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size2 < size1) return false;
  if (!(root1 instanceof Uint8Array) || root1.length !== HASH_SIZE) return false;
  if (!(root2 instanceof Uint8Array) || root2.length !== HASH_SIZE) return false;
  for (const p of proof) if (!(p instanceof Uint8Array) || p.length !== HASH_SIZE) return false;
  if (size1 === size2) return proof.length === 0 && hashEquals(root1, root2);
  if (size1 === 0) return proof.length === 0 && hashEquals(root1, emptyRoot());
  if (proof.length === 0) return false;

  // Step 2: when size1 is a power of two the old root is itself a node of the new tree and
  // the proof omits it, so prepend it.
  const path: readonly Uint8Array[] = isPowerOfTwo(size1) ? [root1, ...proof] : proof;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && hashEquals(fr, root1) && hashEquals(sr, root2);
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}
