/**
 * Rule text as kube-proxy keeps it (its LineBuffer): bytes in one growable buffer per table, with
 * the ranges each chain's rules occupy. A node with 30,000 Services has 300,000 rules; as strings
 * (one per rule, or a tree of the pieces `+` makes) they are millions of small objects that V8's
 * young generation copies again and again before the text is printed, which cost more than
 * writing them. Bytes in an ArrayBuffer are never copied by the collector, and the save form is
 * one copy of the ranges in chain order and one decode (a slice of the decoded text per range,
 * joined, was no quicker; nor was copyWithin inside one buffer shared by the tables).
 */

import type { ChainId, ChainNames } from './names';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A growable buffer of UTF-8 text. */
export class LineBuffer {
  bytes: Uint8Array;
  length = 0;

  /** A buffer with room for `capacity` bytes before it first grows. */
  constructor(capacity = 1 << 20) {
    this.bytes = new Uint8Array(capacity);
  }

  /** Make room for `need` more bytes. */
  reserve(need: number): void {
    if (this.length + need > this.bytes.length) this.grow(need);
  }

  private grow(need: number): void {
    let size = this.bytes.length * 2;
    while (size < this.length + need) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.bytes.subarray(0, this.length));
    this.bytes = b;
  }

  /** Append `s` as UTF-8. */
  write(s: string): void {
    this.reserve(3 * s.length);
    this.length = putText(this.bytes, this.length, s);
  }

  /** Append a non-negative integer in decimal. */
  writeNumber(v: number): void {
    this.reserve(16);
    this.length = putNumber(this.bytes, this.length, v);
  }

  /** Append the bytes `from[start..end)`. */
  copy(from: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (this.length + n > this.bytes.length) this.grow(n);
    // Short ranges are copied faster by hand than through a subarray view.
    if (n < 64) {
      const b = this.bytes;
      const at = this.length;
      for (let i = 0; i < n; i++) b[at + i] = from[start + i];
    } else this.bytes.set(from.subarray(start, end), this.length);
    this.length += n;
  }

  /** The text written so far. */
  text(): string {
    return decoder.decode(this.bytes.subarray(0, this.length));
  }
}

/*
 * Writers of one piece at a position of a buffer that has room for it (UTF-8 needs three bytes
 * per character at most), returning the position after it. A rule writer reserves room for the
 * whole rule once and keeps the position in a local: in a fresh process most rules are written
 * before the writers are optimized, and a buffer's fields read and written back for every piece,
 * with a room check each time, cost more than the bytes.
 */

/** Write `s` as UTF-8 at `at` (ASCII, which names, addresses and words are, copied directly). */
export function putText(b: Uint8Array, at: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    // Measured: copying by hand is quicker than the encoder's call up to a few dozen characters,
    // and the texts written here are names, addresses and option words.
    if (c >= 128) return at + encoder.encodeInto(s, b.subarray(at)).written;
    b[at + i] = c;
  }
  return at + n;
}

/** Write the bytes of `from` at `at`. */
export function putBytes(b: Uint8Array, at: number, from: Uint8Array): number {
  const n = from.length;
  // The engine's copy for the longer constant pieces (a comment's start, a DNAT target, a
  // statistic match): its call costs as much as a dozen bytes copied here once this is
  // optimized, and much less than the loop before it is, which is when most rules are written.
  if (n >= 16) b.set(from, at);
  else for (let i = 0; i < n; i++) b[at + i] = from[i];
  return at + n;
}

/** Write a non-negative integer in decimal at `at`. */
export function putNumber(b: Uint8Array, at: number, v: number): number {
  let digits = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
  const end = at + digits;
  let i = end;
  do {
    b[--i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  } while (v > 0);
  return end;
}

/** A growable array of 32-bit integers. */
class Ints {
  data: Int32Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Int32Array(capacity);
  }
  push(v: number): number {
    if (this.length === this.data.length) {
      const d = new Int32Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length] = v;
    return this.length++;
  }
}

/**
 * One table's rule text: chains in the order they were declared, each with the byte ranges of its
 * rules in `lines`, as a linked list of ranges in typed arrays. 120,000 chains as a JavaScript
 * array of ranges each were 240,000 objects for the collector to mark again and again while the
 * generator filled the heap; here a chain is a number (its id in the node's ChainNames).
 */
export class TableText {
  readonly lines: LineBuffer;
  /** Chain ids in declaration order. */
  private readonly order: Ints;
  // Per chain id: its index in `order` + 1 (0: not declared here).
  private local: Int32Array;
  // Per declared chain (by index in `order`): its first and last range (-1: no rules). Per range: start, end and the next range.
  private readonly head: Ints;
  private readonly tail: Ints;
  private readonly start: Ints;
  private readonly end: Ints;
  private readonly next: Ints;

  /**
   * A table of the chains in `chains`, whose rules are expected to take about `capacity` bytes
   * in about `chainCount` chains: arrays that never grow are also code that is never thrown away
   * (optimized code that reached the rare growing branch was deoptimized and compiled again).
   */
  constructor(
    readonly chains: ChainNames,
    capacity?: number,
    chainCount = 1024,
  ) {
    this.lines = new LineBuffer(capacity);
    this.order = new Ints(chainCount);
    this.local = new Int32Array(chainCount);
    this.head = new Ints(chainCount);
    this.tail = new Ints(chainCount);
    this.start = new Ints(2 * chainCount);
    this.end = new Ints(2 * chainCount);
    this.next = new Ints(2 * chainCount);
  }

  /** The index of a chain in declaration order, declaring it on first use. */
  declare(id: ChainId): number {
    if (id >= this.local.length) {
      let size = this.local.length * 2;
      while (size <= id) size *= 2;
      const l = new Int32Array(size);
      l.set(this.local);
      this.local = l;
    }
    const at = this.local[id];
    if (at !== 0) return at - 1;
    this.head.push(-1);
    this.tail.push(-1);
    this.local[id] = this.order.push(id) + 1;
    return this.order.length - 1;
  }

  /** Whether the chain is declared. */
  has(id: ChainId): boolean {
    return id < this.local.length && this.local[id] !== 0;
  }

  /** The declared chains' ids, in declaration order. */
  ids(): Int32Array {
    return this.order.data.subarray(0, this.order.length);
  }

  /** The declared chains' names, in declaration order. */
  get names(): string[] {
    return Array.from(this.ids(), (id) => this.chains.text(id));
  }

  private range(start: number, end: number, next: number): number {
    this.start.push(start);
    this.end.push(end);
    return this.next.push(next);
  }

  /** Record that `lines[start..end)` holds rules appended to chain `id`. */
  append(id: ChainId, start: number, end: number): void {
    const c = this.declare(id);
    const last = this.tail.data[c];
    // Consecutive rules of one chain (a whole KUBE-SEP chain, say) make one range.
    if (last >= 0 && this.end.data[last] === start) this.end.data[last] = end;
    else {
      const r = this.range(start, end, -1);
      if (last >= 0) this.next.data[last] = r;
      else this.head.data[c] = r;
      this.tail.data[c] = r;
    }
  }

  /** Record that `lines[start..end)` holds a rule inserted at the head of chain `id`. */
  insert(id: ChainId, start: number, end: number): void {
    const c = this.declare(id);
    const r = this.range(start, end, this.head.data[c]);
    this.head.data[c] = r;
    if (this.tail.data[c] < 0) this.tail.data[c] = r;
  }

  /** Copy the rules of chain `id` to `out`. */
  copyChain(id: ChainId, out: LineBuffer): void {
    if (!this.has(id)) return;
    const bytes = this.lines.bytes;
    const start = this.start.data;
    const end = this.end.data;
    const next = this.next.data;
    for (let r = this.head.data[this.local[id] - 1]; r >= 0; r = next[r]) out.copy(bytes, start[r], end[r]);
  }

  /** The byte length of a chain's rules, and its ranges as [start, end, …]. */
  private ranges(id: ChainId): number[] {
    const out: number[] = [];
    for (let r = this.head.data[this.local[id] - 1]; r >= 0; r = this.next.data[r]) out.push(this.start.data[r], this.end.data[r]);
    return out;
  }

  /** Whether chain `id` holds the same rule text here as chain `otherId` in `other`. */
  sameChain(id: ChainId, other: TableText, otherId: ChainId | undefined): boolean {
    if (otherId === undefined || !this.has(id) || !other.has(otherId)) return false;
    const a = this.ranges(id);
    const b = other.ranges(otherId);
    let la = 0;
    let lb = 0;
    for (let i = 0; i < a.length; i += 2) la += a[i + 1] - a[i];
    for (let i = 0; i < b.length; i += 2) lb += b[i + 1] - b[i];
    if (la !== lb) return false;
    // Walk both range lists byte by byte.
    const x = this.lines.bytes;
    const y = other.lines.bytes;
    let i = 0;
    let j = 0;
    let p = a[0];
    let q = b[0];
    for (let k = 0; k < la; k++) {
      while (p === a[i + 1]) p = a[(i += 2)];
      while (q === b[j + 1]) q = b[(j += 2)];
      if (x[p++] !== y[q++]) return false;
    }
    return true;
  }
}
