/**
 * SHA-256 (FIPS 180-4) of short byte strings, for kube-proxy's chain names. A node with 30,000
 * Services hashes 120,000 names of under 200 bytes each; @noble/hashes spent more time there
 * (a hash object, its buffers and a digest array per call) than all the rule text took to write.
 * This version hashes the caller's buffer in place, reuses one message schedule and returns the
 * state words, from which the caller takes only the bits it needs. A property test holds it equal
 * to @noble/hashes.
 */

const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// As 32-bit integers: half of them are above 2^30, which a plain array holds as doubles.
const INIT = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

const W = new Int32Array(64);
const state = new Int32Array(8);

/** How many bytes `sha256Words` needs in its buffer for a message of `length` bytes (the message and its padding). */
export const paddedLength = (length: number): number => (((length + 8) >> 6) + 1) << 6;

/**
 * The eight state words (big-endian digest words) of SHA-256 over `bytes[0..length)`. The padding
 * is written into `bytes` after the message, so it must hold `paddedLength(length)` bytes: the
 * caller's buffer is hashed in place, with no copy. The returned array is reused by the next call.
 */
export function sha256Words(bytes: Uint8Array, length: number): Int32Array {
  const padded = pad(bytes, length);
  for (let i = 0; i < 8; i++) state[i] = INIT[i];
  for (let off = 0; off < padded; off += 64) compress(bytes, off);
  return state;
}

/** Write the padding after the message `bytes[0..length)` and return the padded length. */
function pad(bytes: Uint8Array, length: number): number {
  // Padding: 0x80, zeros, then the bit length in the last 8 bytes of a 64-byte block.
  const padded = paddedLength(length);
  if (bytes.length < padded) throw new RangeError(`sha256Words: a ${length}-byte message needs a ${padded}-byte buffer`);
  bytes[length] = 0x80;
  // zeros by hand: fill's call costs more than the few dozen bytes
  for (let i = length + 1; i < padded - 5; i++) bytes[i] = 0;
  const bits = length * 8;
  bytes[padded - 4] = bits >>> 24;
  bytes[padded - 3] = (bits >>> 16) & 255;
  bytes[padded - 2] = (bits >>> 8) & 255;
  bytes[padded - 1] = bits & 255;
  // Lengths above 2^29 bytes would need the upper length word; chain names are far shorter.
  bytes[padded - 5] = Math.floor(length / 0x20000000) & 255;
  return padded;
}

function compress(b: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++) {
    const j = off + i * 4;
    W[i] = (b[j] << 24) | (b[j + 1] << 16) | (b[j + 2] << 8) | b[j + 3];
  }
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15];
    const y = W[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  let a = state[0], bb = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[i] + W[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & bb) ^ (a & c) ^ (bb & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = bb;
    bb = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + bb) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
  state[4] = (state[4] + e) | 0;
  state[5] = (state[5] + f) | 0;
  state[6] = (state[6] + g) | 0;
  state[7] = (state[7] + h) | 0;
}
