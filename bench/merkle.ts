import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { HASH_SIZE, leafHash } from '../src/merkle/hash';
import { MemorySubtreeSource, inclusionProofFromSource } from '../src/merkle/source';
import { inclusionPlan, inclusionProof, merkleRoot, verifyInclusion } from '../src/merkle/tree';

/**
 * Merkle benchmarks. Every timing is also given as a ratio to raw SHA-256 of the same number
 * of 65-byte node inputs measured in the same run, so figures stay comparable across machines
 * (and across a noisy shared machine). A ratio near 1 means the code is hash-bound.
 */

const raw: (b: Uint8Array) => Buffer =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (b) => crypto.hash('sha256', b, 'buffer') as Buffer
    : (b) => crypto.createHash('sha256').update(b).digest();

/** Seconds to SHA-256 `count` distinct 65-byte inputs (the size of an interior node input). */
function rawHashSeconds(count: number): number {
  const input = Buffer.alloc(65, 1);
  const t = performance.now();
  for (let i = 0; i < count; i++) {
    input.writeUInt32LE(i, 1);
    raw(input);
  }
  return (performance.now() - t) / 1000;
}

/** Median seconds over `runs` runs of fn (small operations are noisy on a shared machine). */
async function median(runs: number, fn: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    await fn();
    times.push((performance.now() - t) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function medianRaw(runs: number, count: number): Promise<number> {
  return median(runs, () => rawHashSeconds(count));
}

const round = (x: number, digits = 4): number => Number(x.toPrecision(digits));

export interface MerkleBenchOptions {
  /** Log size; default 1,000,000. */
  leaves?: number;
  /** Leaves appended for the incremental anchor; default 1,000. */
  append?: number;
}

export async function benchMerkle(opts: MerkleBenchOptions = {}): Promise<Record<string, number | string>> {
  const N = opts.leaves ?? 1_000_000;
  const A = opts.append ?? 1_000;
  const out: Record<string, number | string> = { leaves: N };

  // Leaf hashes as views into one buffer: the bench measures tree hashing, not allocation.
  const flat = Buffer.allocUnsafe(N * HASH_SIZE);
  const seed = Buffer.alloc(8);
  for (let i = 0; i < N; i++) {
    seed.writeUInt32LE(i);
    leafHash(seed).copy(flat, i * HASH_SIZE);
  }
  const leaves = Array.from({ length: N }, (_, i) => flat.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
  rawHashSeconds(50_000); // warm up

  // 1. Full root over N leaves: N - 1 node hashes.
  const rawRoot = rawHashSeconds(N - 1);
  const t0 = performance.now();
  const root = merkleRoot(leaves);
  const rootS = (performance.now() - t0) / 1000;
  out.root_1M_s = round(rootS);
  out.root_raw_sha256_s = round(rawRoot);
  out.root_ratio = round(rootS / rawRoot, 3);

  // 2a. In-memory inclusion proof: must hash every sibling subtree, ~N node hashes.
  const idx = Math.floor(N * 0.6180339887);
  const memNodes = inclusionPlan(idx, N).reduce((a, r) => a + (r.end - r.start - 1), 0);
  let memProof: Buffer[] = [];
  const memS = await median(3, () => (memProof = inclusionProof(idx, leaves)));
  if (!verifyInclusion(leaves[idx]!, idx, N, memProof, root)) throw new Error('bench: in-memory proof does not verify');
  const rawMem = await medianRaw(3, memNodes);
  out.inclusion_mem_ms = round(memS * 1000);
  out.inclusion_mem_nodes_hashed = memNodes;
  out.inclusion_mem_ratio = round(memS / rawMem, 3);

  // 2b. Storage-backed inclusion proof with persisted perfect subtrees: O(log N) lookups.
  const tb = performance.now();
  const src = new MemorySubtreeSource();
  for (let i = 0; i < N; i++) src.append(leaves[i]!);
  out.frontier_build_1M_s = round((performance.now() - tb) / 1000);
  if (!src.frontier.root().equals(root)) throw new Error('bench: frontier root differs');
  const P = 2_000;
  const picks = Array.from({ length: P }, (_, k) => Math.floor((((k * 2654435761) % 2 ** 32) / 2 ** 32) * N));
  src.resetStats();
  let proofNodes = 0;
  const ts = performance.now();
  for (const i of picks) proofNodes += (await inclusionProofFromSource(src, i, N)).length;
  const srcS = (performance.now() - ts) / 1000 / P;
  const check = await inclusionProofFromSource(src, idx, N);
  if (check.some((h, k) => !h.equals(memProof[k]!))) throw new Error('bench: source proof differs from in-memory proof');
  const avgNodes = proofNodes / P;
  const rawSrc = (await medianRaw(5, Math.round(avgNodes * 1000))) / 1000;
  out.inclusion_source_us = round(srcS * 1e6);
  out.inclusion_source_lookups_per_proof = round((src.stats.subtreeLookups + src.stats.leavesRead) / P, 3);
  out.inclusion_source_proof_nodes = round(avgNodes, 3);
  out.inclusion_source_ratio = round(srcS / rawSrc, 3);

  // 3. Incremental anchor: append A leaves to the N-leaf frontier, then take the root.
  const extra = Array.from({ length: A }, (_, i) => leafHash(Buffer.from(`extra-${i}`)));
  const base = src.frontier;
  let merges = 0;
  let incRoot!: Buffer;
  const runs = 21;
  const clones = Array.from({ length: runs }, () => base.clone());
  let c = 0;
  const incS = await median(runs, () => {
    const f = clones[c++]!;
    merges = 0;
    for (const h of extra) merges += f.append(h).length;
    incRoot = f.root();
  });
  const rootFolds = clones[0]!.nodes().length - 1;
  const incNodes = merges + rootFolds;
  const rawInc = await medianRaw(runs, incNodes);
  out.incremental_anchor_ms = round(incS * 1000);
  out.incremental_anchor_nodes_hashed = incNodes;
  out.incremental_anchor_ratio = round(incS / rawInc, 3);
  const full = merkleRoot([...leaves, ...extra]);
  if (!full.equals(incRoot)) throw new Error('bench: incremental root differs from full recompute');
  out.incremental_vs_full_recompute_speedup = round(rootS / incS, 3);

  out.raw_sha256_ns_per_node = round((rawRoot / (N - 1)) * 1e9);
  out.node = process.version;
  return out;
}

function printTable(r: Record<string, number | string>): void {
  const w = Math.max(...Object.keys(r).map((k) => k.length));
  for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(w)}  ${v}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchMerkle()
    .then(printTable)
    .catch((e) => {
      console.error(e);
      process.exitCode = 1;
    });
}
