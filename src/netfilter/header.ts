/**
 * The rule header as ip_packet_match / ip6_packet_match check it: addresses under masks, interfaces
 * (a trailing `+` matches any name with that prefix), protocol and the fragment flag, each negatable.
 * `headerMatches` reads the model rule; the walk uses the compiled form (one fixed shape, IPv4
 * addresses as 32-bit integers), and a property test holds the two to the same answers.
 */
import type { Packet } from '../model/packet';
import { protocolNumber } from '../model/protocols';
import type { Rule } from '../model/ruleset';

/** Interface name test of the kernel's ifname compare: `eth+` is a prefix, else the whole name. */
export function ifaceMatches(pattern: string, name: string | undefined): boolean {
  const n = name ?? '';
  if (pattern.endsWith('+')) return n.startsWith(pattern.slice(0, -1));
  return n === pattern;
}

const protoCache = new Map<string, number | undefined>();
/** The protocol number a rule's `-p` names (0 for all). */
export function ruleProtocol(text: string): number | undefined {
  if (!protoCache.has(text)) protoCache.set(text, text === 'all' ? 0 : protocolNumber(text));
  return protoCache.get(text);
}

const HOST4 = 0xffffffffn;
/** Address under mask, without a BigInt allocation for the common /32 and /0 cases. */
function inCidr(a: bigint, addr: bigint, mask: bigint): boolean {
  if (mask === HOST4) return a === addr;
  if (mask === 0n) return true;
  return (a & mask) === addr;
}

/** Whether the packet passes the rule's header (everything before `-m`/`-j`). */
export function headerMatches(r: Rule, p: Packet): boolean {
  if (r.source && inCidr(p.src, r.source.value.addr, r.source.value.mask) === r.source.invert) return false;
  if (r.destination && inCidr(p.dst, r.destination.value.addr, r.destination.value.mask) === r.destination.invert) return false;
  if (r.inInterface && ifaceMatches(r.inInterface.value, p.inInterface) === r.inInterface.invert) return false;
  if (r.outInterface && ifaceMatches(r.outInterface.value, p.outInterface) === r.outInterface.invert) return false;
  if (r.protocol) {
    const n = ruleProtocol(r.protocol.value);
    // `-p all` (0) matches every protocol; `! -p all` matches none, as the kernel's XT_INV_PROTO does
    const hit = n === 0 || n === p.protocol;
    if (hit === r.protocol.invert) return false;
  }
  if (r.fragment && p.fragment === r.fragment.invert) return false;
  return true;
}

/** Bits of CompiledHeader.tests: which parts the header tests, and which of those are negated. */
export const H = {
  SRC: 1, SRC_NOT: 2, DST: 4, DST_NOT: 8, IN: 16, IN_NOT: 32, IN_PREFIX: 64, OUT: 128, OUT_NOT: 256, OUT_PREFIX: 512,
  PROTO: 1024, PROTO_NOT: 2048, FRAG: 4096, FRAG_NOT: 8192,
} as const;

/** IPv6 addresses and masks of a header (IPv4 ones are the int32 fields). */
export interface Header6 {
  src: bigint;
  srcMask: bigint;
  dst: bigint;
  dstMask: bigint;
}

/** A rule's header in one fixed shape, so that the hot loop's property reads stay monomorphic. */
export interface CompiledHeader {
  /** H bits; 0 when the header tests nothing (most rules of a user chain). */
  tests: number;
  /** IPv4 source and destination, masked, and their masks, as int32 (`x | 0`). */
  src4: number;
  srcMask4: number;
  dst4: number;
  dstMask4: number;
  /** Present for an IPv6 rule that tests an address. */
  v6: Header6 | undefined;
  /** Interface names, without the trailing `+` of a prefix. */
  inIf: string;
  outIf: string;
  /** Protocol number (0 is `all`; -2 a name the protocol table does not know). */
  proto: number;
}

const bits = (n: { invert: boolean } | undefined, on: number, not: number): number => (n ? on | (n.invert ? not : 0) : 0);
const int32 = (v: bigint): number => Number(v) | 0;
/** The address a masked compare expects; under /0 every packet matches, as inCidr says. */
const addr4 = (addr: bigint, mask: bigint): number => (mask === 0n ? 0 : int32(addr));

/** The header of a rule, compiled once. */
export function compileHeader(r: Rule, family: Packet['family']): CompiledHeader {
  const inPrefix = r.inInterface?.value.endsWith('+') ?? false;
  const outPrefix = r.outInterface?.value.endsWith('+') ?? false;
  const tests = bits(r.source, H.SRC, H.SRC_NOT) | bits(r.destination, H.DST, H.DST_NOT) |
    bits(r.inInterface, H.IN, H.IN_NOT) | (inPrefix ? H.IN_PREFIX : 0) | bits(r.outInterface, H.OUT, H.OUT_NOT) | (outPrefix ? H.OUT_PREFIX : 0) |
    bits(r.protocol, H.PROTO, H.PROTO_NOT) | bits(r.fragment, H.FRAG, H.FRAG_NOT);
  const s = r.source?.value, d = r.destination?.value;
  const v4 = family === 'ipv4';
  return {
    tests,
    src4: v4 && s ? addr4(s.addr, s.mask) : 0, srcMask4: v4 && s ? int32(s.mask) : 0,
    dst4: v4 && d ? addr4(d.addr, d.mask) : 0, dstMask4: v4 && d ? int32(d.mask) : 0,
    v6: !v4 && (s || d) ? { src: s?.addr ?? 0n, srcMask: s?.mask ?? 0n, dst: d?.addr ?? 0n, dstMask: d?.mask ?? 0n } : undefined,
    inIf: inPrefix ? r.inInterface!.value.slice(0, -1) : r.inInterface?.value ?? '',
    outIf: outPrefix ? r.outInterface!.value.slice(0, -1) : r.outInterface?.value ?? '',
    proto: r.protocol ? ruleProtocol(r.protocol.value) ?? -2 : -1,
  };
}

const ifHit = (prefix: boolean, pattern: string, name: string | undefined): boolean =>
  prefix ? (name ?? '').startsWith(pattern) : (name ?? '') === pattern;

/**
 * headerMatches on a compiled header. `src4`/`dst4` are the packet's IPv4 addresses as int32
 * (the walk keeps them beside the packet); an IPv6 header reads the packet's bigints.
 */
export function compiledHeaderMatches(h: CompiledHeader, p: Packet, src4: number, dst4: number): boolean {
  const t = h.tests;
  if (t === 0) return true;
  if (t & H.SRC) {
    const hit = h.v6 ? inCidr(p.src, h.v6.src, h.v6.srcMask) : (src4 & h.srcMask4) === h.src4;
    if (hit === ((t & H.SRC_NOT) !== 0)) return false;
  }
  if (t & H.DST) {
    const hit = h.v6 ? inCidr(p.dst, h.v6.dst, h.v6.dstMask) : (dst4 & h.dstMask4) === h.dst4;
    if (hit === ((t & H.DST_NOT) !== 0)) return false;
  }
  if (t & H.IN && ifHit((t & H.IN_PREFIX) !== 0, h.inIf, p.inInterface) === ((t & H.IN_NOT) !== 0)) return false;
  if (t & H.OUT && ifHit((t & H.OUT_PREFIX) !== 0, h.outIf, p.outInterface) === ((t & H.OUT_NOT) !== 0)) return false;
  // `-p all` (0) matches every protocol; `! -p all` matches none, as the kernel's XT_INV_PROTO does
  if (t & H.PROTO && (h.proto === 0 || h.proto === p.protocol) === ((t & H.PROTO_NOT) !== 0)) return false;
  if (t & H.FRAG && p.fragment === ((t & H.FRAG_NOT) !== 0)) return false;
  return true;
}
