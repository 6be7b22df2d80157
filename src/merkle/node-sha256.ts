/**
 * SHA-256 of one RFC 6962 interior node, 0x01 ‖ left ‖ right (65 bytes), written into a buffer the
 * caller owns. Hand-written on purpose: node:crypto has no "digest into" (every digest is a new
 * Buffer plus a call into C++), and a tree of N leaves hashes N − 1 of these fixed-size inputs, so
 * bulk tree hashing is dominated by that allocation. The input is always exactly two blocks (the
 * second is the last byte, the padding and the fixed length 520 bits), so the message schedule
 * needs no general padding code. Checked against node:crypto by test/merkle.node-hash.test.ts
 * and the RFC 6962 vectors.
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74,
  0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d,
  0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e,
  0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
  0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

// Reused state: hashing is synchronous and these never escape.
const W = new Int32Array(64);
const H = new Int32Array(8);
const pair = new Uint8Array(64);

function compress(): void {
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15]!;
    const w2 = W[i - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = H[0]!;
  let b = H[1]!;
  let c = H[2]!;
  let d = H[3]!;
  let e = H[4]!;
  let f = H[5]!;
  let g = H[6]!;
  let h = H[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  H[0] = (H[0]! + a) | 0;
  H[1] = (H[1]! + b) | 0;
  H[2] = (H[2]! + c) | 0;
  H[3] = (H[3]! + d) | 0;
  H[4] = (H[4]! + e) | 0;
  H[5] = (H[5]! + f) | 0;
  H[6] = (H[6]! + g) | 0;
  H[7] = (H[7]! + h) | 0;
}

/**
 * Node hash of the 64 bytes src[off .. off+64) (left child then right child) into
 * dst[dest .. dest+32). Every input byte is read before the first output byte is written, so
 * dst may overlap src (bottom-up hashing in place).
 */
export function nodeSha256Into(src: Uint8Array, off: number, dst: Uint8Array, dest: number): void {
  H.set(IV);
  // Block 1: 0x01 ‖ src[off .. off+63).
  W[0] = (0x01 << 24) | (src[off]! << 16) | (src[off + 1]! << 8) | src[off + 2]!;
  for (let i = 1; i < 16; i++) {
    const p = off + 4 * i - 1;
    W[i] = (src[p]! << 24) | (src[p + 1]! << 16) | (src[p + 2]! << 8) | src[p + 3]!;
  }
  compress();
  // Block 2: the last input byte, the 0x80 terminator, zeros, and the length (65 bytes = 520 bits).
  W[0] = (src[off + 63]! << 24) | (0x80 << 16);
  W.fill(0, 1, 15);
  W[15] = 520;
  compress();
  for (let i = 0; i < 8; i++) {
    const v = H[i]!;
    const p = dest + 4 * i;
    dst[p] = v >>> 24;
    dst[p + 1] = (v >>> 16) & 0xff;
    dst[p + 2] = (v >>> 8) & 0xff;
    dst[p + 3] = v & 0xff;
  }
}

/** Node hash of two separate 32-byte children into dst[dest .. dest+32). */
export function nodeSha256PairInto(left: Uint8Array, right: Uint8Array, dst: Uint8Array, dest: number): void {
  pair.set(left, 0);
  pair.set(right, 32);
  nodeSha256Into(pair, 0, dst, dest);
}
