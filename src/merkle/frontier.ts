import { HASH_SIZE, emptyRoot, isHexHash, nodeHash } from './hash';
import type { SubtreeRef } from './tree';
import { MerkleError } from './errors';

/** A perfect subtree finished by an append: 2^level leaves from index * 2^level. */
export interface CompletedSubtree extends SubtreeRef {
  hash: Buffer;
}

/** Persisted form of a frontier: its size and the compact-range hashes, largest subtree first. */
export interface FrontierJSON {
  v: 1;
  size: number;
  nodes: string[];
}

export interface FrontierOptions {
  /** Called for every perfect subtree of level >= 1 completed by an append (leaves are not reported). */
  onSubtree?: (subtree: CompletedSubtree) => void;
}

const NONE: readonly CompletedSubtree[] = Object.freeze([]);

function popcount(n: number): number {
  let c = 0;
  while (n > 0) {
    c += n % 2;
    n = Math.floor(n / 2);
  }
  return c;
}

/**
 * The right edge ("compact range" [0, size)) of an append-only RFC 6962 tree: one perfect
 * subtree hash per set bit of size. That is all the state needed to append and to compute the
 * root, so a log of millions of leaves can be extended and re-anchored without reading them.
 */
export class MerkleFrontier {
  // Subtree hashes, largest (leftmost) first; nodes[i] has the level of the i-th set bit of
  // size counting from the most significant end.
  private readonly stack: Buffer[];
  private count: number;
  private readonly onSubtree: ((s: CompletedSubtree) => void) | undefined;

  constructor(opts: FrontierOptions = {}) {
    this.stack = [];
    this.count = 0;
    this.onSubtree = opts.onSubtree;
  }

  /** Rebuild from a size and its compact-range hashes (largest subtree first). */
  static fromNodes(size: number, nodes: readonly Uint8Array[], opts: FrontierOptions = {}): MerkleFrontier {
    if (!Number.isSafeInteger(size) || size < 0) throw new MerkleError('BAD_SIZE', `frontier size must be a non-negative safe integer, got ${size}`);
    if (nodes.length !== popcount(size)) throw new MerkleError('BAD_FRONTIER', `frontier of size ${size} needs ${popcount(size)} nodes, got ${nodes.length}`);
    const f = new MerkleFrontier(opts);
    for (const n of nodes) {
      if (!(n instanceof Uint8Array) || n.length !== HASH_SIZE) throw new MerkleError('BAD_HASH', 'frontier node is not a 32-byte hash');
      f.stack.push(Buffer.from(n));
    }
    f.count = size;
    return f;
  }

  static fromJSON(json: unknown, opts: FrontierOptions = {}): MerkleFrontier {
    const j = json as Partial<FrontierJSON> | null;
    if (!j || typeof j !== 'object' || j.v !== 1 || !Array.isArray(j.nodes) || typeof j.size !== 'number') {
      throw new MerkleError('BAD_FRONTIER', 'not a v1 frontier JSON object');
    }
    const nodes = j.nodes.map((h, i) => {
      if (!isHexHash(h)) throw new MerkleError('BAD_HASH', `frontier node ${i} is not a lowercase hex hash`);
      return Buffer.from(h, 'hex');
    });
    return MerkleFrontier.fromNodes(j.size, nodes, opts);
  }

  get size(): number {
    return this.count;
  }

  /**
   * Append one leaf hash. Returns the perfect subtrees (level >= 1) this append completed,
   * lowest level first: one per trailing 1-bit of the old size, so O(1) amortised.
   */
  append(leafHash: Uint8Array): readonly CompletedSubtree[] {
    if (!(leafHash instanceof Uint8Array) || leafHash.length !== HASH_SIZE) throw new MerkleError('BAD_HASH', 'leaf hash must be 32 bytes');
    if (this.count >= Number.MAX_SAFE_INTEGER) throw new MerkleError('BAD_SIZE', 'frontier is full');
    let h: Uint8Array = leafHash;
    let s = this.count;
    let done: CompletedSubtree[] | undefined;
    let level = 0;
    const newSize = s + 1;
    // Each trailing 1-bit of the old size is a left sibling waiting for this subtree.
    while (s % 2 === 1) {
      const parent = nodeHash(this.stack.pop()!, h);
      h = parent;
      level++;
      s = (s - 1) / 2;
      const sub: CompletedSubtree = { level, index: newSize / 2 ** level - 1, hash: parent };
      (done ??= []).push(sub);
      this.onSubtree?.(sub);
    }
    // Copy an unmerged leaf so later caller mutation of its buffer cannot corrupt the frontier.
    this.stack.push(level === 0 ? Buffer.from(h) : (h as Buffer));
    this.count = newSize;
    return done ?? NONE;
  }

  /** Append many leaf hashes; returns every completed subtree in completion order. */
  appendAll(leafHashes: Iterable<Uint8Array>): CompletedSubtree[] {
    const out: CompletedSubtree[] = [];
    for (const h of leafHashes) {
      const done = this.append(h);
      for (const d of done) out.push(d);
    }
    return out;
  }

  /** MTH of the leaves appended so far: fold the compact range right to left, O(log N). */
  root(): Buffer {
    const st = this.stack;
    if (st.length === 0) return emptyRoot();
    let h: Buffer = st[st.length - 1]!;
    for (let i = st.length - 2; i >= 0; i--) h = nodeHash(st[i]!, h);
    return Buffer.from(h);
  }

  /** The compact range as perfect subtrees, left to right. */
  nodes(): CompletedSubtree[] {
    const out: CompletedSubtree[] = [];
    let pos = 0;
    let i = 0;
    for (let level = 52; level >= 0; level--) {
      const width = 2 ** level;
      if (Math.floor(this.count / width) % 2 === 1) {
        out.push({ level, index: pos / width, hash: Buffer.from(this.stack[i++]!) });
        pos += width;
      }
    }
    return out;
  }

  toJSON(): FrontierJSON {
    return { v: 1, size: this.count, nodes: this.stack.map((h) => h.toString('hex')) };
  }

  clone(opts: FrontierOptions = {}): MerkleFrontier {
    return MerkleFrontier.fromNodes(this.count, this.stack, opts);
  }
}
