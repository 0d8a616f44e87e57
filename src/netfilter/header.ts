/**
 * The rule header as ip_packet_match / ip6_packet_match check it: addresses under masks, interfaces
 * (a trailing `+` matches any name with that prefix), protocol and the fragment flag, each negatable.
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

/** A rule's header in one fixed shape, so that the hot loop's property reads stay monomorphic. */
export interface CompiledHeader {
  srcAddr: bigint;
  srcMask: bigint;
  /** 0: no test; 1: must match; -1: must not match. */
  src: number;
  dstAddr: bigint;
  dstMask: bigint;
  dst: number;
  inIf: string;
  inTest: number;
  outIf: string;
  outTest: number;
  /** Protocol number; -1 when the rule has no -p (0 is `all`). */
  proto: number;
  protoTest: number;
  frag: number;
}

const test = (n: { invert: boolean } | undefined): number => (n ? (n.invert ? -1 : 1) : 0);

/** The header of a rule, compiled once. */
export function compileHeader(r: Rule): CompiledHeader {
  return {
    srcAddr: r.source?.value.addr ?? 0n, srcMask: r.source?.value.mask ?? 0n, src: test(r.source),
    dstAddr: r.destination?.value.addr ?? 0n, dstMask: r.destination?.value.mask ?? 0n, dst: test(r.destination),
    inIf: r.inInterface?.value ?? '', inTest: test(r.inInterface),
    outIf: r.outInterface?.value ?? '', outTest: test(r.outInterface),
    proto: r.protocol ? ruleProtocol(r.protocol.value) ?? -2 : -1, protoTest: test(r.protocol),
    frag: test(r.fragment),
  };
}

/** headerMatches on a compiled header. */
export function compiledHeaderMatches(h: CompiledHeader, p: Packet): boolean {
  if (h.src !== 0 && inCidr(p.src, h.srcAddr, h.srcMask) !== (h.src > 0)) return false;
  if (h.dst !== 0 && inCidr(p.dst, h.dstAddr, h.dstMask) !== (h.dst > 0)) return false;
  if (h.inTest !== 0 && ifaceMatches(h.inIf, p.inInterface) !== (h.inTest > 0)) return false;
  if (h.outTest !== 0 && ifaceMatches(h.outIf, p.outInterface) !== (h.outTest > 0)) return false;
  if (h.protoTest !== 0 && (h.proto === 0 || h.proto === p.protocol) !== (h.protoTest > 0)) return false;
  if (h.frag !== 0 && p.fragment !== (h.frag > 0)) return false;
  return true;
}
