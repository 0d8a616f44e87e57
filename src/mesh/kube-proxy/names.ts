/**
 * The chain names of one generated node, as bytes: a chain is a number (its id) and its name a
 * range of one byte pool. A node with 30,000 Services has 120,000 hashed chain names; as strings
 * they were 120,000 heap objects kept alive to the end, keys of a map as large, and a string sort
 * that took 55 ms; here they are bytes the collector never scans, found by their digest in an
 * open-addressing table of typed arrays, and sorted by numbers made from the digest.
 */
import { hashEnd, writeBase32 } from './hash';
import { putBytes, type LineBuffer } from './lines';

/** A chain, by its id in a ChainNames. */
export type ChainId = number;

/** The kinds of hashed names, by prefix. */
export const SVC = 0;
export const SVL = 1;
export const EXT = 2;
export const FW = 3;
export const SEP = 4;
const PREFIXES = ['KUBE-SVC-', 'KUBE-SVL-', 'KUBE-EXT-', 'KUBE-FW-', 'KUBE-SEP-'].map((p) => Array.from(p, (c) => c.charCodeAt(0)));
const LITERAL = -1;
/** Each kind's place when the names are sorted by their bytes (KUBE-EXT-, KUBE-FW-, KUBE-SEP-, KUBE-SVC-, KUBE-SVL-). */
const KIND_ORDER = PREFIXES.map((p) => [...PREFIXES].sort(compareCodes).indexOf(p));

/** Byte order of two names given as character codes. */
function compareCodes(x: number[], y: number[]): number {
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** The rank in byte order of the characters of each 5-bit base32 digit, for two digits at once. */
const RANK10 = Int32Array.from({ length: 1024 }, (_, v) => {
  const r = (d: number) => (d >= 26 ? d - 26 : d + 6);
  return (r(v >>> 5) << 5) | r(v & 31);
});

/** The ranks of four base32 characters (a 20-bit group of the digest) in the byte order of the characters. */
const rank20 = (g: number): number => (RANK10[g >>> 10] << 10) | RANK10[g & 1023];

const encoder = new TextEncoder();
const CHAIN_LINE_TAIL = encoder.encode(' - [0:0]\n');
const decoder = new TextDecoder();

/** `a`, or a copy twice as long (or more) when it has fewer than `need` elements. */
function grown(a: Int32Array<ArrayBuffer>, need: number): Int32Array<ArrayBuffer> {
  if (need <= a.length) return a;
  let size = a.length * 2;
  while (size < need) size *= 2;
  const b = new Int32Array(size);
  b.set(a);
  return b;
}

/** Chain names by id: literal ones (KUBE-SERVICES, INPUT) by their text, hashed ones by their digest. */
export class ChainNames {
  /** Every name's bytes, one after the other. */
  pool: Uint8Array<ArrayBuffer>;
  private poolLength = 0;
  /** Per id: where its name starts in `pool`, and its byte length. */
  start: Int32Array<ArrayBuffer>;
  length: Int32Array<ArrayBuffer>;
  /** How many names there are (ids are 0 … count-1). */
  count = 0;
  /** The longest name, in bytes. */
  maxLength = 0;
  // Per id: the kind of a hashed name (LITERAL otherwise) and the digest's first three words.
  private kind: Int32Array<ArrayBuffer>;
  private w0: Int32Array<ArrayBuffer>;
  private w1: Int32Array<ArrayBuffer>;
  private w2: Int32Array<ArrayBuffer>;
  private readonly literal = new Map<string, ChainId>();
  // Open addressing, linear probing: id + 1 per slot, 0 when free; kept at most half full.
  private slots: Int32Array<ArrayBuffer>;
  private hashedCount = 0;

  /**
   * Room for about `expected` names before anything grows. Growing is rare code that optimized
   * code reaches without type feedback: V8 threw away and recompiled the lookup each time the
   * table doubled (16 ms of compiling at 10,000 Services), besides the copies.
   */
  constructor(expected = 256) {
    const n = Math.max(256, expected + 64);
    this.pool = new Uint8Array(n * 26);
    this.start = new Int32Array(n);
    this.length = new Int32Array(n);
    this.kind = new Int32Array(n);
    this.w0 = new Int32Array(n);
    this.w1 = new Int32Array(n);
    this.w2 = new Int32Array(n);
    let slots = 1024;
    while (slots < 2 * n) slots *= 2;
    this.slots = new Int32Array(slots);
  }

  private add(kind: number, bytes: number): ChainId {
    const id = this.count++;
    if (id === this.start.length) {
      this.start = grown(this.start, id + 1);
      this.length = grown(this.length, id + 1);
      this.kind = grown(this.kind, id + 1);
      this.w0 = grown(this.w0, id + 1);
      this.w1 = grown(this.w1, id + 1);
      this.w2 = grown(this.w2, id + 1);
    }
    if (this.poolLength + bytes > this.pool.length) {
      const p = new Uint8Array(Math.max(this.pool.length * 2, this.poolLength + bytes));
      p.set(this.pool.subarray(0, this.poolLength));
      this.pool = p;
    }
    this.start[id] = this.poolLength;
    this.length[id] = bytes;
    this.kind[id] = kind;
    this.poolLength += bytes;
    if (bytes > this.maxLength) this.maxLength = bytes;
    return id;
  }

  /** The id of a literal name, added on first use. */
  id(name: string): ChainId {
    let id = this.literal.get(name);
    if (id === undefined) {
      const utf8 = encoder.encode(name);
      id = this.add(LITERAL, utf8.length);
      this.pool.set(utf8, this.start[id]);
      this.literal.set(name, id);
    }
    return id;
  }

  /** The id of a literal name if it has one. */
  find(name: string): ChainId | undefined {
    return this.literal.get(name);
  }

  /** The id of the hashed name of `kind` for the message just hashed (see hash.ts: hashStart … hashPut). */
  hashed(kind: number): ChainId {
    const w = hashEnd();
    return this.byDigest(kind, w[0], w[1], w[2] >>> 16);
  }

  /** The name of another kind with the same digest (KUBE-SVL-, KUBE-EXT-, KUBE-FW- beside a KUBE-SVC-). */
  sibling(id: ChainId, kind: number): ChainId {
    return this.byDigest(kind, this.w0[id], this.w1[id], this.w2[id]);
  }

  private byDigest(kind: number, w0: number, w1: number, w2: number): ChainId {
    // The digest's first word is uniform already: it indexes the table as it is.
    let mask = this.slots.length - 1;
    let i = (w0 + kind) & mask;
    for (let s = this.slots[i]; s !== 0; s = this.slots[(i = (i + 1) & mask)]) {
      const id = s - 1;
      if (this.w0[id] === w0 && this.w1[id] === w1 && this.w2[id] === w2 && this.kind[id] === kind) return id;
    }
    const prefix = PREFIXES[kind];
    const id = this.add(kind, prefix.length + 16);
    this.w0[id] = w0;
    this.w1[id] = w1;
    this.w2[id] = w2;
    const at = this.start[id];
    for (let k = 0; k < prefix.length; k++) this.pool[at + k] = prefix[k];
    writeBase32(this.pool, at + prefix.length, w0, w1, w2 << 16);
    if (++this.hashedCount * 2 > this.slots.length) {
      this.slots = new Int32Array(this.slots.length * 2);
      mask = this.slots.length - 1;
      for (let h = 0; h < this.count; h++) {
        if (this.kind[h] === LITERAL) continue;
        let j = (this.w0[h] + this.kind[h]) & mask;
        while (this.slots[j] !== 0) j = (j + 1) & mask;
        this.slots[j] = h + 1;
      }
    } else this.slots[i] = id + 1;
    return id;
  }

  /** The name as a string. */
  text(id: ChainId): string {
    return decoder.decode(this.pool.subarray(this.start[id], this.start[id] + this.length[id]));
  }

  /** Append the name to `out`. */
  write(id: ChainId, out: LineBuffer): void {
    out.reserve(this.length[id]);
    out.length = this.put(id, out.bytes, out.length);
  }

  /** Write the name at `at` of `b` (which has room for it) and return the position after it: copied byte by byte, two or three names per rule of 25 bytes each. */
  put(id: ChainId, b: Uint8Array, at: number): number {
    const n = this.length[id];
    const p = this.pool;
    const from = this.start[id];
    for (let i = 0; i < n; i++) b[at + i] = p[from + i];
    return at + n;
  }

  /** Append `:NAME - [0:0]` lines for `ids` (iptables-save's user chain lines). */
  writeChainLines(ids: Int32Array, out: LineBuffer): void {
    let total = 0;
    for (let k = 0; k < ids.length; k++) total += this.length[ids[k]] + 10;
    out.reserve(total);
    const b = out.bytes;
    let at = out.length;
    // Through `put` and putBytes, which the rules have made hot by now: this loop runs once, over
    // 30,000 names and more, and copying their bytes in it ran unoptimized until it was replaced
    // on the stack (twice, the first optimized version thrown away): twice as long.
    for (let k = 0; k < ids.length; k++) {
      b[at] = 58;
      at = putBytes(b, this.put(ids[k], b, at + 1), CHAIN_LINE_TAIL);
    }
    out.length = at;
  }

  /**
   * `ids` sorted by the bytes of their names, as libiptc and iptables-nft list user chains
   * (strcmp order): hashed names by their kind's prefix and digest (sortHashed), the few literal
   * ones by their bytes, each literal then put in its place by a binary search. The native sort
   * of 120,000 such names as strings took 55 ms; this takes about 15.
   */
  sort(ids: Int32Array): Int32Array {
    const n = ids.length;
    // One pass: hashed names to the front, literal ones to the back. (Each pass over 120,000
    // names runs unoptimized for a while in a fresh process: fewer passes, less of that.)
    const split = new Int32Array(n);
    let h = 0;
    let l = n;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (this.kind[id] !== LITERAL) split[h++] = id;
      else split[--l] = id;
    }
    const a = this.sortHashed(split.subarray(0, h));
    if (l === n) return a;
    const b = this.sortBytes(split.subarray(l));
    const out = new Int32Array(n);
    let o = 0;
    let from = 0;
    for (let k = 0; k < b.length; k++) {
      const id = b[k];
      // The first hashed name after this literal one.
      let lo = from;
      let hi = a.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.compare(a[mid], id) < 0) lo = mid + 1;
        else hi = mid;
      }
      out.set(a.subarray(from, lo), o);
      o += lo - from;
      from = lo;
      out[o++] = id;
    }
    out.set(a.subarray(from), o);
    return out;
  }

  /** How the bytes of two names compare (a name before any name it starts). */
  private compare(x: ChainId, y: ChainId): number {
    const p = this.pool;
    const a = this.start[x];
    const b = this.start[y];
    const n = Math.min(this.length[x], this.length[y]);
    for (let i = 0; i < n; i++) if (p[a + i] !== p[b + i]) return p[a + i] - p[b + i];
    return this.length[x] - this.length[y];
  }

  /**
   * Hashed names in byte order: by kind (no prefix starts another, and their order is the
   * prefixes' own), then by the 16 characters, each 5-bit digit turned into its character's rank
   * in byte order (the digits 2–7 sort before the letters A–Z that stand for smaller values).
   * One number per name holds the kind, the ranks of the first characters and the name's index
   * below them (53 bits in all), and the engine's native sort of a Float64Array orders them: no
   * JavaScript comparator, which in a fresh process runs uncompiled for most of its calls. Names
   * whose leading characters tie (a few among 120,000) are then put in order by their bytes.
   */
  private sortHashed(ids: Int32Array): Int32Array {
    const n = ids.length;
    let indexBits = 1;
    while (1 << indexBits < n) indexBits++;
    const scale = 2 ** indexBits;
    // Bits of the second 20-bit group of ranks that fit beside kind (3), first group (20) and index.
    const second = Math.max(0, Math.min(20, 52 - 3 - 20 - indexBits));
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      const w0 = this.w0[id] >>> 0;
      const w1 = this.w1[id] >>> 0;
      const r0 = rank20(w0 >>> 12);
      const r1 = rank20(((w0 & 0xfff) << 8) | (w1 >>> 24));
      keys[i] = ((KIND_ORDER[this.kind[id]] * 0x100000 + r0) * 2 ** second + Math.floor(r1 / 2 ** (20 - second))) * scale + i;
    }
    keys.sort();
    // The ids back in key order; runs of equal leading keys then by insertion sort of the whole
    // name. (A key's index is its low bits: the key less its leading part, not `%`, which the
    // optimizing compiler makes a call.)
    const a = new Int32Array(n);
    let previous = -1;
    for (let i = 0; i < n; i++) {
      const lead = Math.floor(keys[i] / scale);
      const x = ids[keys[i] - lead * scale];
      let j = i - 1;
      if (lead === previous) while (j >= 0 && Math.floor(keys[j] / scale) === lead && this.compare(a[j], x) > 0) a[j + 1] = a[j--];
      a[j + 1] = x;
      previous = lead;
    }
    return a;
  }

  /** `ids` sorted by the bytes of their names: a least-significant-digit radix sort, a byte per digit. */
  private sortBytes(ids: Int32Array): Int32Array {
    const n = ids.length;
    if (n < 2) return Int32Array.from(ids);
    const pool = this.pool;
    let width = 0;
    for (let i = 0; i < n; i++) width = Math.max(width, this.length[ids[i]]);
    // Digit of the i-th name at byte p: cols[p * n + i], byte + 1 (UTF-8 has no 0xff), 0 past its end.
    const cols = new Uint8Array(width * n);
    const counts = new Int32Array(width * 256);
    for (let i = 0; i < n; i++) {
      const at = this.start[ids[i]];
      const len = this.length[ids[i]];
      for (let p = 0; p < len; p++) {
        const d = pool[at + p] + 1;
        cols[p * n + i] = d;
        counts[p * 256 + d]++;
      }
      for (let p = len; p < width; p++) counts[p * 256]++;
    }
    let a = new Int32Array(n);
    let b = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    const next = new Int32Array(256);
    for (let p = width - 1; p >= 0; p--) {
      const col = p * n;
      const c = p * 256;
      // Every name has the same byte here: the pass would move nothing.
      if (counts[c + cols[col + a[0]]] === n) continue;
      let sum = 0;
      for (let d = 0; d < 256; d++) {
        next[d] = sum;
        sum += counts[c + d];
      }
      for (let i = 0; i < n; i++) {
        const x = a[i];
        b[next[cols[col + x]]++] = x;
      }
      const t = a;
      a = b;
      b = t;
    }
    for (let i = 0; i < n; i++) a[i] = ids[a[i]];
    return a;
  }
}
