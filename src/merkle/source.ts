import { HASH_SIZE, emptyRoot, nodeHash } from './hash';
import { MerkleFrontier, type CompletedSubtree } from './frontier';
import { consistencyPlan, foldSubtrees, inclusionPlan, perfectSubtrees, rangeRoot, type LeafRange, type SubtreeRef } from './tree';
import { MerkleError } from './errors';

/**
 * Proof generation over storage (e.g. PostgreSQL) instead of an in-memory leaf array.
 *
 * Every range in an RFC 6962 proof is a union of at most log2(N) perfect subtrees, and a proof
 * has at most log2(N) ranges, so with perfect-subtree hashes persisted (MerkleFrontier reports
 * them as they complete) a proof for a million-leaf log needs O(log N) lookups, which this
 * module issues as one batch per tree level it has to descend (normally a single batch).
 */
export interface SubtreeSource {
  /** Leaf hashes for leaves [start, end), in order; must return exactly end - start hashes. */
  getLeafHashes(start: number, end: number): Promise<Uint8Array[]>;
  /** Stored hash of perfect subtree (level, index), or undefined if not stored. */
  getSubtree?(level: number, index: number): Promise<Uint8Array | undefined>;
  /** Batch form of getSubtree (one round trip); preferred when present. */
  getSubtrees?(refs: readonly SubtreeRef[]): Promise<(Uint8Array | undefined)[]>;
}

export interface SourceProofOptions {
  /**
   * A missing subtree spanning at most this many leaves is computed from its leaves in one
   * read; a larger one is split into its two children, which are looked up in turn.
   * Default 256.
   */
  maxLeafRead?: number;
}

const DEFAULT_MAX_LEAF_READ = 256;

const key = (level: number, index: number): string => `${level}/${index}`;

function checkHash(h: unknown, what: string): Uint8Array {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) throw new MerkleError('BAD_HASH', `${what} is not a ${HASH_SIZE}-byte hash`);
  return h;
}

function assertSafeSize(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new MerkleError('BAD_SIZE', `${name} must be a non-negative safe integer, got ${n}`);
}

/** Resolve perfect-subtree hashes from a source, preferring stored hashes over leaf reads. */
export async function resolveSubtrees(source: SubtreeSource, refs: readonly SubtreeRef[], opts: SourceProofOptions = {}): Promise<Buffer[]> {
  const maxLeafRead = Math.max(1, opts.maxLeafRead ?? DEFAULT_MAX_LEAF_READ);
  const canLookup = typeof source.getSubtrees === 'function' || typeof source.getSubtree === 'function';
  const memo = new Map<string, Uint8Array>();
  const derived: SubtreeRef[] = []; // hashed from their children once those are known

  let pending: SubtreeRef[] = [];
  const seen = new Set<string>();
  for (const r of refs) {
    if (!Number.isInteger(r.level) || r.level < 0 || r.level > 52 || !Number.isSafeInteger(r.index) || r.index < 0) {
      throw new MerkleError('BAD_SIZE', `invalid subtree reference ${r.level}/${r.index}`);
    }
    const k = key(r.level, r.index);
    if (!seen.has(k)) {
      seen.add(k);
      pending.push(r);
    }
  }

  while (pending.length > 0) {
    // Leaves (level 0) live in the leaf table: read them alongside the subtree batch rather
    // than after it, so a proof costs one round of queries, not two.
    const direct = pending.filter((r) => r.level === 0 || !canLookup);
    const lookups = pending.filter((r) => r.level > 0 && canLookup);
    const directRead = readFromLeaves(source, direct, memo);
    // Mark handled now: if the subtree lookup below is slow, a failed leaf read must not
    // surface as an unhandled rejection. It is still awaited (and rethrown) further down.
    directRead.catch(() => undefined);
    let hashes: (Uint8Array | undefined)[] = [];
    if (lookups.length > 0) {
      if (source.getSubtrees) {
        hashes = await source.getSubtrees(lookups);
        if (!Array.isArray(hashes) || hashes.length !== lookups.length) throw new MerkleError('BAD_SOURCE', 'getSubtrees returned the wrong number of results');
      } else {
        hashes = await Promise.all(lookups.map((r) => source.getSubtree!(r.level, r.index)));
      }
    }

    const next: SubtreeRef[] = [];
    const fromLeaves: SubtreeRef[] = [];
    lookups.forEach((r, i) => {
      const h = hashes[i];
      if (h !== undefined && h !== null) memo.set(key(r.level, r.index), checkHash(h, `stored subtree ${r.level}/${r.index}`));
      else if (2 ** r.level <= maxLeafRead) fromLeaves.push(r);
      else {
        derived.push(r);
        for (const c of [
          { level: r.level - 1, index: r.index * 2 },
          { level: r.level - 1, index: r.index * 2 + 1 },
        ]) {
          const ck = key(c.level, c.index);
          if (!seen.has(ck)) {
            seen.add(ck);
            next.push(c);
          }
        }
      }
    });
    await Promise.all([directRead, readFromLeaves(source, fromLeaves, memo)]);
    pending = next;
  }

  // Children before parents, whatever order the (possibly overlapping) refs came in.
  derived.sort((a, b) => a.level - b.level);
  for (const r of derived) {
    memo.set(key(r.level, r.index), nodeHash(memo.get(key(r.level - 1, r.index * 2))!, memo.get(key(r.level - 1, r.index * 2 + 1))!));
  }
  return refs.map((r) => Buffer.from(memo.get(key(r.level, r.index))!));
}

/** Compute subtrees from their leaves, coalescing adjacent subtrees into one read each. */
async function readFromLeaves(source: SubtreeSource, refs: SubtreeRef[], memo: Map<string, Uint8Array>): Promise<void> {
  if (refs.length === 0) return;
  const spans = refs.map((r) => ({ ref: r, start: r.index * 2 ** r.level, end: (r.index + 1) * 2 ** r.level })).sort((a, b) => a.start - b.start);
  const groups: { start: number; end: number; members: typeof spans }[] = [];
  for (const s of spans) {
    const g = groups[groups.length - 1];
    if (g && s.start <= g.end) {
      g.end = Math.max(g.end, s.end);
      g.members.push(s);
    } else groups.push({ start: s.start, end: s.end, members: [s] });
  }
  await Promise.all(
    groups.map(async (g) => {
      const leaves = await source.getLeafHashes(g.start, g.end);
      if (!Array.isArray(leaves) || leaves.length !== g.end - g.start) {
        throw new MerkleError('BAD_SOURCE', `getLeafHashes(${g.start}, ${g.end}) returned ${Array.isArray(leaves) ? leaves.length : 'no'} hashes`);
      }
      leaves.forEach((h, i) => {
        checkHash(h, `leaf hash ${g.start + i}`);
      });
      for (const m of g.members) memo.set(key(m.ref.level, m.ref.index), rangeRoot(leaves, m.start - g.start, m.end - g.start));
    }),
  );
}

/** Resolve the MTH of every plan range (all ranges in one batch). */
async function resolveRanges(source: SubtreeSource, ranges: readonly LeafRange[], opts: SourceProofOptions): Promise<Buffer[]> {
  const parts = ranges.map((r) => perfectSubtrees(r.start, r.end));
  const hashes = await resolveSubtrees(source, parts.flat(), opts);
  let i = 0;
  return parts.map((p) => {
    const hs = hashes.slice(i, i + p.length);
    i += p.length;
    return foldSubtrees(hs);
  });
}

/** MTH(D[0:treeSize]) from a source. */
export async function rootFromSource(source: SubtreeSource, treeSize: number, opts: SourceProofOptions = {}): Promise<Buffer> {
  assertSafeSize('treeSize', treeSize);
  if (treeSize === 0) return emptyRoot();
  const [root] = await resolveRanges(source, [{ start: 0, end: treeSize }], opts);
  return root!;
}

/** RFC 6962 PATH(index, D[0:treeSize]) from a source; same bytes as inclusionProof(). */
export async function inclusionProofFromSource(source: SubtreeSource, index: number, treeSize: number, opts: SourceProofOptions = {}): Promise<Buffer[]> {
  return resolveRanges(source, inclusionPlan(index, treeSize), opts);
}

/** RFC 6962 PROOF(m, D[0:n]) from a source; same bytes as consistencyProof(). */
export async function consistencyProofFromSource(source: SubtreeSource, m: number, n: number, opts: SourceProofOptions = {}): Promise<Buffer[]> {
  return resolveRanges(source, consistencyPlan(m, n), opts);
}

/** Rebuild a frontier for the first `size` leaves (e.g. after a restart) from a source. */
export async function frontierFromSource(
  source: SubtreeSource,
  size: number,
  opts: SourceProofOptions & { onSubtree?: (s: CompletedSubtree) => void } = {},
): Promise<MerkleFrontier> {
  assertSafeSize('size', size);
  const refs = perfectSubtrees(0, size);
  const hashes = await resolveSubtrees(source, refs, opts);
  return MerkleFrontier.fromNodes(size, hashes, { onSubtree: opts.onSubtree });
}

export interface MemorySourceStats {
  /** getLeafHashes calls and the number of leaves they returned. */
  leafReads: number;
  leavesRead: number;
  /** Subtree hashes asked for, and round trips used to ask (a batch counts once). */
  subtreeLookups: number;
  roundTrips: number;
}

export interface MemorySourceOptions {
  /** Which completed subtree levels to keep (default: all levels >= 1). */
  storeLevel?: (level: number) => boolean;
  /** Expose getSubtrees (batched) rather than only getSubtree. Default true. */
  batched?: boolean;
}

/**
 * In-memory SubtreeSource: an append-only leaf list plus the perfect subtrees its frontier
 * completed. Mirrors what a database-backed log would persist, and counts accesses so tests
 * and benchmarks can check the O(log N) lookup claim. Hashes are kept in flat per-level
 * buffers so a million-leaf log costs ~64 MB rather than millions of small objects.
 */
export class MemorySubtreeSource implements SubtreeSource {
  readonly frontier: MerkleFrontier;
  stats: MemorySourceStats = { leafReads: 0, leavesRead: 0, subtreeLookups: 0, roundTrips: 0 };
  getSubtrees?: (refs: readonly SubtreeRef[]) => Promise<(Uint8Array | undefined)[]>;
  // levels[0] holds leaf hashes; levels[l] the stored level-l subtrees, densely by index.
  private readonly levels: { buf: Buffer; count: number }[] = [];
  private readonly store: (level: number) => boolean;

  constructor(opts: MemorySourceOptions = {}) {
    this.store = opts.storeLevel ?? (() => true);
    this.frontier = new MerkleFrontier({ onSubtree: (s) => this.put(s) });
    if (opts.batched !== false) {
      this.getSubtrees = async (refs) => {
        this.stats.roundTrips++;
        this.stats.subtreeLookups += refs.length;
        return refs.map((r) => this.lookup(r.level, r.index));
      };
    }
  }

  private put(s: CompletedSubtree): void {
    if (s.level > 0 && !this.store(s.level)) return;
    const lv = (this.levels[s.level] ??= { buf: Buffer.alloc(HASH_SIZE * 16), count: 0 });
    // Subtrees of one level complete strictly left to right, so storage stays dense.
    if (s.index !== lv.count) throw new MerkleError('BAD_SOURCE', `subtree ${s.level}/${s.index} stored out of order`);
    if ((lv.count + 1) * HASH_SIZE > lv.buf.length) {
      const grown = Buffer.alloc(lv.buf.length * 2);
      lv.buf.copy(grown, 0, 0, lv.count * HASH_SIZE);
      lv.buf = grown;
    }
    lv.buf.set(s.hash, lv.count * HASH_SIZE);
    lv.count++;
  }

  private lookup(level: number, index: number): Buffer | undefined {
    const lv = this.levels[level];
    if (level === 0 || !lv || !Number.isSafeInteger(index) || index < 0 || index >= lv.count) return undefined;
    return Buffer.from(lv.buf.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE));
  }

  get size(): number {
    return this.frontier.size;
  }

  /** Number of stored perfect subtrees (level >= 1). */
  get storedSubtrees(): number {
    return this.levels.reduce((a, lv, l) => a + (l > 0 && lv ? lv.count : 0), 0);
  }

  append(leafHash: Uint8Array): void {
    const index = this.frontier.size;
    this.frontier.append(leafHash);
    this.put({ level: 0, index, hash: leafHash as Buffer });
  }

  appendAll(leafHashes: Iterable<Uint8Array>): void {
    for (const h of leafHashes) this.append(h);
  }

  resetStats(): void {
    this.stats = { leafReads: 0, leavesRead: 0, subtreeLookups: 0, roundTrips: 0 };
  }

  async getLeafHashes(start: number, end: number): Promise<Buffer[]> {
    const size = this.frontier.size;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > size || start > end) {
      throw new MerkleError('BAD_SIZE', `leaf range [${start}, ${end}) outside log of size ${size}`);
    }
    this.stats.leafReads++;
    this.stats.leavesRead += end - start;
    const lv = this.levels[0]!;
    const out: Buffer[] = new Array(end - start);
    for (let i = start; i < end; i++) out[i - start] = Buffer.from(lv.buf.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
    return out;
  }

  async getSubtree(level: number, index: number): Promise<Buffer | undefined> {
    this.stats.roundTrips++;
    this.stats.subtreeLookups++;
    return this.lookup(level, index);
  }
}
