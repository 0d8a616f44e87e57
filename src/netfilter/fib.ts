/**
 * The host's routing answers as the engine asks them on every packet: is an address local, which
 * route a destination takes, which source address it gets, MASQUERADE's address and addrtype's
 * types. The model's functions (model/host.ts, ./addrtype) are the reference; this table gives the
 * same answers for IPv4 on plain numbers, prepared once per host (a host does not change once
 * routed), without a BigInt or string built per lookup. IPv6 asks the reference functions.
 */
import type { Family, IP } from '../model/addr';
import { allRoutes, isLocal, masqueradeAddress, route, type Host, type RouteResult } from '../model/host';
import { addrTypes } from './addrtype';

/** An IPv4 address of an interface, with its prefix as numbers. */
interface Addr4 {
  ip: IP;
  value: number;
  mask: number;
}

/** An IPv4 route of the main table as numbers, with its answer when that does not depend on the destination. */
interface Route4 {
  addr: number;
  mask: number;
  dev: string;
  via: IP | undefined;
  /** Set when the route has a src or a via (the source then depends only on the route). */
  result: RouteResult | undefined;
}

/** The address types addrtype asks for, each one shared set (callers read it, never change it). */
const TYPE_SETS: Record<string, Set<string>> = Object.fromEntries(['UNSPEC', 'MULTICAST', 'BROADCAST', 'LOCAL', 'UNICAST'].map((t) => [t, new Set([t])]));

const mask4 = (prefix: number): number => (prefix <= 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/** Routing answers of one host; IPv4 on numbers. */
export class Fib {
  /** An IPv4 route with an IPv6 gateway or source: IPv4 then asks the reference functions too. */
  private mixed: boolean;
  private local4 = new Set<number>();
  private loUp: boolean;
  private routes4: Route4[];
  /** Interface name → its IPv4 addresses (the first interface of a name, as Array.find picks it). */
  private addrs4 = new Map<string, Addr4[]>();
  private up = new Map<string, boolean>();
  /** sourceFor's fallback: the first IPv4 address of an interface other than lo. */
  private anySource: IP | undefined;
  /** MASQUERADE's fallback: the first universe-scope IPv4 address of an up interface. */
  private anyUniverse: IP | undefined;
  /** Every IPv4 address with a prefix shorter than /31, for directed broadcasts. */
  private subnets4: { value: number; mask: number; dev: string }[] = [];

  constructor(readonly host: Host) {
    const h = host;
    for (const i of h.interfaces) {
      if (!this.up.has(i.name)) this.up.set(i.name, i.up);
      const own = i.addresses.filter((a) => a.ip.family === 'ipv4').map((a) => ({ ip: a.ip, value: Number(a.ip.value), mask: mask4(a.prefix) }));
      if (!this.addrs4.has(i.name)) this.addrs4.set(i.name, own);
      for (const a of i.addresses) {
        if (a.ip.family !== 'ipv4') continue;
        const n = Number(a.ip.value);
        if (i.up) this.local4.add(n);
        if (i.name !== 'lo') this.anySource ??= a.ip;
        if (i.up && n >>> 24 !== 127) this.anyUniverse ??= a.ip;
        if (a.prefix < 31) this.subnets4.push({ value: n, mask: mask4(a.prefix), dev: i.name });
      }
    }
    this.loUp = !!h.interfaces.find((i) => i.name === 'lo')?.up;
    this.mixed = allRoutes(h).some((r) => r.family === 'ipv4' && (r.via?.family === 'ipv6' || r.src?.family === 'ipv6'));
    // longest mask first; equal masks keep their order, so the first match is the one model route() picks
    this.routes4 = allRoutes(h)
      .filter((r) => r.family === 'ipv4' && this.up.get(r.dev) === true)
      .sort((a, b) => (a.dst.mask === b.dst.mask ? 0 : a.dst.mask < b.dst.mask ? 1 : -1))
      .map((r) => ({
        addr: Number(r.dst.addr), mask: Number(r.dst.mask), dev: r.dev, via: r.via,
        result: r.src || r.via ? { type: 'unicast' as const, dev: r.dev, via: r.via, src: r.src ?? this.source4(r.dev, Number(r.via!.value)) } : undefined,
      }));
  }

  /** Whether `addr` is an address of this host (model isLocal). */
  isLocal(family: Family, addr: bigint): boolean {
    if (family !== 'ipv4') return isLocal(this.host, { family, value: addr });
    const n = Number(addr);
    return this.local4.has(n) || (n >>> 24 === 127 && this.loUp);
  }

  /** The route to `dst` (model route): a shared answer, which callers only read. */
  route(family: Family, dst: bigint): RouteResult | undefined {
    if (family !== 'ipv4' || this.mixed) return route(this.host, { family, value: dst });
    const n = Number(dst);
    if (this.local4.has(n) || (n >>> 24 === 127 && this.loUp)) return { type: 'local', dev: 'lo', src: { family, value: dst } };
    for (const r of this.routes4) {
      if (((n & r.mask) >>> 0) !== r.addr) continue;
      return r.result ?? { type: 'unicast', dev: r.dev, via: r.via, src: this.source4(r.dev, n) };
    }
    return undefined;
  }

  /** inet_select_addr on IPv4 (model sourceFor). */
  private source4(dev: string, near: number): IP | undefined {
    const own = this.addrs4.get(dev) ?? [];
    for (const a of own) if (((a.value & a.mask) >>> 0) === ((near & a.mask) >>> 0)) return a.ip;
    return own[0]?.ip ?? this.anySource;
  }

  /** MASQUERADE's address out of `dev` towards `near` (model masqueradeAddress). */
  masquerade(dev: string, near: IP): IP | undefined {
    if (near.family !== 'ipv4') return masqueradeAddress(this.host, dev, near);
    const n = Number(near.value);
    let first: IP | undefined;
    for (const a of this.addrs4.get(dev) ?? []) {
      if (a.value >>> 24 === 127) continue;
      if (((a.value & a.mask) >>> 0) === ((n & a.mask) >>> 0)) return a.ip;
      first ??= a.ip;
    }
    return first ?? this.anyUniverse;
  }

  /** addrtype's types of `addr` (./addrtype addrTypes): one shared set, which callers only read. */
  addrType(family: Family, addr: bigint, iface?: string): Set<string> {
    if (family !== 'ipv4') return addrTypes(this.host, family, addr, iface);
    const n = Number(addr);
    if (n === 0) return TYPE_SETS.UNSPEC;
    if (n >>> 28 === 0xe) return TYPE_SETS.MULTICAST;
    if (n === 0xffffffff) return TYPE_SETS.BROADCAST;
    for (const s of this.subnets4)
      if (((s.value & s.mask) >>> 0) === ((n & s.mask) >>> 0) && ((n | s.mask) >>> 0) === 0xffffffff && (!iface || iface === s.dev)) return TYPE_SETS.BROADCAST;
    let local: boolean;
    if (iface) local = (this.addrs4.get(iface) ?? []).some((a) => a.value === n) || (iface === 'lo' && n >>> 24 === 127 && (this.local4.has(n) || this.loUp));
    else local = this.local4.has(n) || (n >>> 24 === 127 && this.loUp);
    return local ? TYPE_SETS.LOCAL : TYPE_SETS.UNICAST;
  }
}
