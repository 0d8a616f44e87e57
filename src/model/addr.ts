/**
 * IP addresses and masks as the kernel holds them: a family and a 32- or 128-bit integer.
 * Parsing leans on ipaddr.js; printing follows glibc's inet_ntop, which is what iptables calls.
 */
import ipaddr from 'ipaddr.js';

/** Address family of a ruleset, a packet or an address. */
export type Family = 'ipv4' | 'ipv6';

/** One address: its family and its value as an unsigned integer. */
export interface IP {
  family: Family;
  value: bigint;
}

/** An address with a mask, as `-s`/`-d` and most address options hold it. */
export interface Cidr {
  family: Family;
  /** The address with the mask already applied (iptables stores it that way). */
  addr: bigint;
  mask: bigint;
}

export const bits = (f: Family): number => (f === 'ipv4' ? 32 : 128);
const all = (f: Family): bigint => (1n << BigInt(bits(f))) - 1n;

/** Parse one address of the given family (or either when `family` is omitted); null if invalid. */
export function parseIP(text: string, family?: Family): IP | null {
  if (family !== 'ipv6') {
    const v = dottedQuad(text);
    if (v >= 0) return { family: 'ipv4', value: BigInt(v) };
    if (v === BAD_QUAD) return null;
  }
  if (family !== 'ipv4' && text.includes(':') && ipaddr.IPv6.isValid(text) && !text.includes('%')) {
    const b = ipaddr.IPv6.parse(text).toByteArray();
    let v = 0n;
    for (const x of b) v = (v << 8n) | BigInt(x);
    return { family: 'ipv6', value: v };
  }
  return null;
}

const NOT_QUAD = -1;
const BAD_QUAD = -2;

/**
 * The value of a dotted quad: four decimal parts of one to three digits, each 0-255 without a
 * leading zero (iptables reads 010 as octal elsewhere). NOT_QUAD when the text is not four such
 * parts, BAD_QUAD when it is but a part is out of range or has a leading zero. Read digit by
 * digit: a dump has an address on most rules.
 */
function dottedQuad(text: string): number {
  const n = text.length;
  if (n < 7 || n > 15) return NOT_QUAD;
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  let bad = false;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || (i < n && dots === 3)) return NOT_QUAD;
      if (part > 255 || (digits > 1 && text.charCodeAt(i - digits) === 48)) bad = true;
      v = v * 256 + part;
      if (i < n) dots++;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
    } else return NOT_QUAD;
  }
  if (dots !== 3) return NOT_QUAD;
  return bad ? BAD_QUAD : v;
}

/** Whether the text is one or more decimal digits. */
function allDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** The IPv4 mask of each prefix length, made once. */
const MASKS4: bigint[] = Array.from({ length: 33 }, (_, p) => (p === 0 ? 0n : BigInt((0xffffffff << (32 - p)) >>> 0)));

/** Prefix length of a contiguous mask, or -1 when the mask has holes. */
export function prefixOf(mask: bigint, family: Family): number {
  if (family === 'ipv4') {
    // contiguous when the inverted mask is all ones below its top bit
    const inv = ~Number(mask) >>> 0;
    return (inv & (inv + 1)) === 0 ? Math.clz32(inv) : -1;
  }
  const n = bits(family);
  let len = 0;
  while (len < n && ((mask >> BigInt(n - 1 - len)) & 1n) === 1n) len++;
  return maskOf(len, family) === mask ? len : -1;
}

/** The mask of a prefix length. */
export function maskOf(prefix: number, family: Family): bigint {
  const n = bits(family);
  if (prefix <= 0) return 0n;
  return (all(family) >> BigInt(n - prefix)) << BigInt(n - prefix);
}

/**
 * Parse `addr[/prefix|/dotted-mask]` as iptables does for -s/-d: the mask is applied to the address.
 * Returns an error text naming what is wrong when the input is not an address.
 */
export function parseCidr(text: string, family: Family): Cidr | string {
  const slash = text.indexOf('/');
  const a = slash < 0 ? text : text.slice(0, slash);
  const m = slash < 0 ? null : text.slice(slash + 1);
  if (family === 'ipv4') return parseCidr4(a, m);
  const ip = parseIP(a, family);
  if (!ip) return `host/network \`${a}' not found`;
  let mask: bigint;
  if (m === null) mask = all(family);
  else if (allDigits(m)) {
    const p = Number(m);
    if (p > bits(family)) return `invalid mask \`${m}' specified`;
    mask = maskOf(p, family);
  } else {
    const mi = parseIP(m, family);
    if (!mi) return `invalid mask \`${m}' specified`;
    mask = mi.value;
  }
  return { family, addr: ip.value & mask, mask };
}

/** parseCidr for IPv4, on numbers: the address and the mask become bigints once, at the end. */
function parseCidr4(a: string, m: string | null): Cidr | string {
  const e = cidr4Numbers(a, m, NUMBERS);
  return e ?? cidr4(NUMBERS.addr, NUMBERS.mask);
}

/** An IPv4 address and mask as unsigned 32-bit numbers. */
export interface Cidr4Numbers {
  addr: number;
  mask: number;
}
const NUMBERS: Cidr4Numbers = { addr: 0, mask: 0 };

/**
 * parseCidr(text, 'ipv4') without making the Cidr: the masked address and the mask are left in
 * `out`; the error text when the input is not an address. For readers that share equal Cidrs,
 * which compare these numbers before making one.
 */
export function parseCidr4Numbers(text: string, out: Cidr4Numbers): string | undefined {
  const slash = text.indexOf('/');
  return slash < 0 ? cidr4Numbers(text, null, out) : cidr4Numbers(text.slice(0, slash), text.slice(slash + 1), out);
}

function cidr4Numbers(a: string, m: string | null, out: Cidr4Numbers): string | undefined {
  const v = dottedQuad(a);
  if (v < 0) return `host/network \`${a}' not found`;
  let mask: number;
  if (m === null) mask = 0xffffffff;
  else if (allDigits(m)) {
    const p = Number(m);
    if (p > 32) return `invalid mask \`${m}' specified`;
    mask = p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;
  } else {
    const mv = dottedQuad(m);
    if (mv < 0) return `invalid mask \`${m}' specified`;
    mask = mv;
  }
  out.addr = (mask & v) >>> 0;
  out.mask = mask;
  return undefined;
}

/** The IPv4 Cidr of a masked address and a mask given as unsigned 32-bit numbers. */
export function cidr4(addr: number, mask: number): Cidr {
  const p = prefixOf4(mask);
  return { family: 'ipv4', addr: BigInt(addr), mask: p >= 0 ? MASKS4[p] : BigInt(mask) };
}

/** prefixOf for an IPv4 mask as a number. */
function prefixOf4(mask: number): number {
  const inv = ~mask >>> 0;
  return (inv & (inv + 1)) === 0 ? Math.clz32(inv) : -1;
}

/** The 256 octets as text, made once: a dump prints an address on most rules. */
const OCTETS: string[] = Array.from({ length: 256 }, (_, i) => String(i));

/** Format an address the way glibc's inet_ntop does. */
export function formatIP(value: bigint, family: Family): string {
  if (family === 'ipv4') {
    const v = Number(value);
    return OCTETS[v >>> 24] + '.' + OCTETS[(v >>> 16) & 255] + '.' + OCTETS[(v >>> 8) & 255] + '.' + OCTETS[v & 255];
  }
  const w: number[] = [];
  for (let i = 7; i >= 0; i--) w.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // longest run of zero words, first one on a tie, only when at least two long
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (bestLen < 2) best = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (best >= 0 && i >= best && i < best + bestLen) {
      if (i === best) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    // an embedded IPv4 address, as glibc prints ::a.b.c.d and ::ffff:a.b.c.d
    if (i === 6 && best === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      out += `${w[6] >> 8}.${w[6] & 255}.${w[7] >> 8}.${w[7] & 255}`;
      break;
    }
    out += w[i].toString(16);
  }
  if (best >= 0 && best + bestLen === 8) out += ':';
  return out;
}

/** `addr/prefix` (or `addr/dotted-mask` for v4 masks with holes), as iptables-save prints -s/-d. */
export function formatCidr(c: Cidr): string {
  const p = prefixOf(c.mask, c.family);
  return `${formatIP(c.addr, c.family)}/${p >= 0 ? p : formatIP(c.mask, c.family)}`;
}

/** Whether `ip` falls inside `c`. */
export function cidrContains(c: Cidr, ip: IP): boolean {
  return c.family === ip.family && (ip.value & c.mask) === c.addr;
}

/** The any-address mask (0.0.0.0/0 or ::/0). */
export function anyCidr(family: Family): Cidr {
  return { family, addr: 0n, mask: 0n };
}
