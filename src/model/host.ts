/**
 * A host as netfilter's neighbours see it: interfaces and their addresses, routes, forwarding, and
 * the sockets that listen. Loaded from YAML or JSON (validated with zod, errors name the field),
 * or captured from a live namespace by src/kernel/snapshot.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatIP, maskOf, parseIP, type Cidr, type Family, type IP } from './addr';

/** One address on an interface. */
export interface IfAddr {
  ip: IP;
  prefix: number;
}

/** A network interface. */
export interface Interface {
  name: string;
  up: boolean;
  /** In the kernel's order: the first of a family is its primary address (REDIRECT, MASQUERADE). */
  addresses: IfAddr[];
}

/** One route of the main table; connected routes are derived from interface addresses. */
export interface Route {
  family: Family;
  dst: Cidr;
  via?: IP;
  dev: string;
  src?: IP;
}

/** A socket listening for connections or datagrams. */
export interface ListenSocket {
  proto: 'tcp' | 'udp';
  family: Family;
  /** The bound address; the family's any-address for a wildcard bind. */
  addr: IP;
  /** A v6 wildcard socket without IPV6_V6ONLY also takes v4 (the Linux default). */
  v6only?: boolean;
  port: number;
  uid: number;
  gid: number;
  process?: string;
  /** IP_TRANSPARENT: TPROXY may hand it packets for addresses that are not local. */
  transparent?: boolean;
}

/** A whole host. */
export interface Host {
  name?: string;
  interfaces: Interface[];
  routes: Route[];
  forwarding: { ipv4: boolean; ipv6: boolean };
  sockets: ListenSocket[];
}

const ipText = z.string().refine((s) => parseIP(s) !== null, { message: 'not an IP address' });
const cidrText = z.string().refine((s) => s === 'default' || parseIP(s.split('/')[0]) !== null, { message: 'not an address/prefix or "default"' });

/** The text form of a host (YAML or JSON), as users write it and `podtables snapshot` prints it. */
export const HostSchema = z.object({
  name: z.string().optional(),
  interfaces: z.array(z.object({
    name: z.string().min(1),
    up: z.boolean().default(true),
    addresses: z.array(z.string().regex(/^[^/]+\/\d{1,3}$/, 'expected ADDRESS/PREFIX')).default([]),
  }).strict()),
  routes: z.array(z.object({
    dst: cidrText,
    via: ipText.optional(),
    dev: z.string().min(1),
    src: ipText.optional(),
  }).strict()).default([]),
  forwarding: z.object({ ipv4: z.boolean().default(false), ipv6: z.boolean().default(false) }).strict().default({ ipv4: false, ipv6: false }),
  sockets: z.array(z.object({
    proto: z.enum(['tcp', 'udp']),
    addr: ipText.default('0.0.0.0'),
    port: z.number().int().min(0).max(65535),
    uid: z.number().int().min(0).default(0),
    gid: z.number().int().min(0).optional(),
    process: z.string().optional(),
    transparent: z.boolean().optional(),
    v6only: z.boolean().optional(),
  }).strict()).default([]),
}).strict();

export type HostText = z.input<typeof HostSchema>;

/** Build a Host from its text form; throws HostError naming the field when it is not valid. */
export function hostFromText(raw: unknown): Host {
  const r = HostSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new HostError(`${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  const t = r.data;
  const interfaces: Interface[] = t.interfaces.map((i, n) => ({
    name: i.name,
    up: i.up,
    addresses: i.addresses.map((a, k) => {
      const [addr, prefix] = a.split('/');
      const ip = parseIP(addr);
      const p = Number(prefix);
      if (!ip || p > (ip.family === 'ipv4' ? 32 : 128)) throw new HostError(`interfaces.${n}.addresses.${k}: not an ADDRESS/PREFIX: ${a}`);
      return { ip, prefix: p };
    }),
  }));
  const routes: Route[] = [];
  t.routes.forEach((r, n) => {
    const via = r.via ? parseIP(r.via)! : undefined;
    const src = r.src ? parseIP(r.src)! : undefined;
    let dst: Cidr;
    if (r.dst === 'default') {
      const family = via?.family ?? src?.family ?? 'ipv4';
      dst = { family, addr: 0n, mask: 0n };
    } else {
      const [a, p] = r.dst.split('/');
      const ip = parseIP(a)!;
      const len = p === undefined ? (ip.family === 'ipv4' ? 32 : 128) : Number(p);
      const mask = maskOf(len, ip.family);
      dst = { family: ip.family, addr: ip.value & mask, mask };
    }
    if (!interfaces.some((i) => i.name === r.dev)) throw new HostError(`routes.${n}.dev: no interface named ${r.dev}`);
    routes.push({ family: dst.family, dst, via, dev: r.dev, src });
  });
  const sockets: ListenSocket[] = t.sockets.map((s) => {
    const addr = parseIP(s.addr)!;
    return { proto: s.proto, family: addr.family, addr, port: s.port, uid: s.uid, gid: s.gid ?? s.uid, process: s.process, transparent: s.transparent, v6only: s.v6only };
  });
  if (!interfaces.some((i) => i.name === 'lo')) interfaces.unshift(loopback());
  return { name: t.name, interfaces, routes, forwarding: t.forwarding, sockets };
}

/** Parse a host from YAML or JSON text (JSON is YAML). */
export function parseHost(text: string): Host {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new HostError(`not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  return hostFromText(raw);
}

/** The text form of a host, for `podtables snapshot` and round trips. */
export function hostToText(h: Host): HostText {
  return {
    name: h.name,
    interfaces: h.interfaces.map((i) => ({ name: i.name, up: i.up, addresses: i.addresses.map((a) => `${formatIP(a.ip.value, a.ip.family)}/${a.prefix}`) })),
    routes: h.routes.map((r) => ({
      dst: r.dst.mask === 0n ? 'default' : `${formatIP(r.dst.addr, r.family)}/${prefixLen(r.dst)}`,
      ...(r.via ? { via: formatIP(r.via.value, r.via.family) } : {}),
      dev: r.dev,
      ...(r.src ? { src: formatIP(r.src.value, r.src.family) } : {}),
    })),
    forwarding: { ...h.forwarding },
    sockets: h.sockets.map((s) => ({
      proto: s.proto, addr: formatIP(s.addr.value, s.family), port: s.port, uid: s.uid, gid: s.gid,
      ...(s.process ? { process: s.process } : {}), ...(s.transparent ? { transparent: true } : {}), ...(s.v6only ? { v6only: true } : {}),
    })),
  };
}

const prefixLen = (c: Cidr): number => {
  let n = 0;
  for (let m = c.mask; m !== 0n; m = (m << 1n) & ((1n << BigInt(c.family === 'ipv4' ? 32 : 128)) - 1n)) n++;
  return n;
};

/** A host error a user caused (bad host file, impossible packet): printed as its message. */
export class HostError extends Error {}

function loopback(): Interface {
  return { name: 'lo', up: true, addresses: [{ ip: parseIP('127.0.0.1')!, prefix: 8 }, { ip: parseIP('::1')!, prefix: 128 }] };
}

/** The embedded pod: lo, eth0 10.244.0.13/24, default via 10.244.0.1, forwarding off. */
export function defaultPodHost(sockets: HostText['sockets'] = []): Host {
  return hostFromText({
    name: 'pod',
    interfaces: [{ name: 'lo', addresses: ['127.0.0.1/8', '::1/128'] }, { name: 'eth0', addresses: ['10.244.0.13/24'] }],
    routes: [{ dst: 'default', via: '10.244.0.1', dev: 'eth0' }],
    sockets,
  });
}

/** The outcome of a route lookup. */
export interface RouteResult {
  /** local: delivered to this host (the kernel's local table); unicast: sent out `dev`. */
  type: 'local' | 'unicast';
  dev: string;
  via?: IP;
  /** The preferred source address (the route's src, else one of the device's addresses). */
  src?: IP;
}

const localCache = new WeakMap<Host, Map<string, string>>();
/** Local addresses (`family/value`) → the interface holding them, for up interfaces (a host is not changed once routed). */
function localAddrs(h: Host): Map<string, string> {
  let m = localCache.get(h);
  if (!m) {
    m = new Map();
    for (const i of h.interfaces) if (i.up) for (const a of i.addresses) if (!m.has(`${a.ip.family}/${a.ip.value}`)) m.set(`${a.ip.family}/${a.ip.value}`, i.name);
    localCache.set(h, m);
  }
  return m;
}

/** Whether `ip` is an address of this host, as the kernel's local table says (all of 127/8 is). */
export function isLocal(h: Host, ip: IP): boolean {
  if (localAddrs(h).has(`${ip.family}/${ip.value}`)) return true;
  // the kernel adds `local 127.0.0.0/8 dev lo`: the whole loopback prefix is local once lo is up
  return ip.family === 'ipv4' && ip.value >> 24n === 127n && !!h.interfaces.find((i) => i.name === 'lo')?.up;
}

/** The interface holding `ip`, when it is local. */
export function interfaceOf(h: Host, ip: IP): Interface | undefined {
  return h.interfaces.find((i) => i.addresses.some((a) => a.ip.family === ip.family && a.ip.value === ip.value));
}

/** The primary address of a family on an interface (REDIRECT of arriving packets uses it). */
export function primaryAddress(h: Host, dev: string, family: Family): IP | undefined {
  return h.interfaces.find((i) => i.name === dev)?.addresses.find((a) => a.ip.family === family)?.ip;
}

const routeCache = new WeakMap<Host, Route[]>();
/** All routes of the main table: explicit ones and the connected prefixes of every up interface (a host is not changed once routed). */
export function allRoutes(h: Host): Route[] {
  let r = routeCache.get(h);
  if (!r) routeCache.set(h, (r = computeRoutes(h)));
  return r;
}

function computeRoutes(h: Host): Route[] {
  const connected: Route[] = [];
  for (const i of h.interfaces) {
    if (!i.up || i.name === 'lo') continue;
    for (const a of i.addresses) {
      const mask = maskOf(a.prefix, a.ip.family);
      connected.push({ family: a.ip.family, dst: { family: a.ip.family, addr: a.ip.value & mask, mask }, dev: i.name, src: a.ip });
    }
  }
  return [...connected, ...h.routes];
}

/** Look up `dst` as the kernel's fib does: local table first, then the longest prefix of main. */
export function route(h: Host, dst: IP): RouteResult | undefined {
  // a local destination always leaves by lo, whatever interface holds the address
  if (isLocal(h, dst)) return { type: 'local', dev: 'lo', src: dst };
  let best: Route | undefined;
  let bestMask = -1n;
  // routes are prefixes, so a longer prefix is a numerically larger mask
  for (const r of allRoutes(h)) {
    if (r.family !== dst.family || (dst.value & r.dst.mask) !== r.dst.addr || r.dst.mask <= bestMask) continue;
    if (!h.interfaces.find((i) => i.name === r.dev)?.up) continue;
    best = r;
    bestMask = r.dst.mask;
  }
  if (!best) return undefined;
  return { type: 'unicast', dev: best.dev, via: best.via, src: best.src ?? sourceFor(h, best.dev, best.via ?? dst) };
}

/** inet_select_addr: an address of `dev` in the same subnet as `near`, else the device's primary. */
export function sourceFor(h: Host, dev: string, near: IP): IP | undefined {
  const i = h.interfaces.find((x) => x.name === dev);
  const fam = i?.addresses.filter((a) => a.ip.family === near.family) ?? [];
  const same = fam.find((a) => (a.ip.value & maskOf(a.prefix, near.family)) === (near.value & maskOf(a.prefix, near.family)));
  if (same) return same.ip;
  if (fam[0]) return fam[0].ip;
  // no address on the device: the kernel takes one of another interface (not loopback first)
  for (const x of h.interfaces) for (const a of x.addresses) if (a.ip.family === near.family && x.name !== 'lo') return a.ip;
  return undefined;
}

/**
 * MASQUERADE's address: inet_select_addr(out, nexthop, RT_SCOPE_UNIVERSE), which passes over
 * host-scope addresses (127/8, ::1): masquerading out lo takes another interface's address (kernel
 * trace: a SYN to 127.0.0.1 came back in with source 10.99.0.1 under `-A POSTROUTING -j MASQUERADE`).
 */
export function masqueradeAddress(h: Host, dev: string, near: IP): IP | undefined {
  const universe = (a: IfAddr) => a.ip.family === near.family && !(near.family === 'ipv4' ? a.ip.value >> 24n === 127n : a.ip.value === 1n);
  const own = h.interfaces.find((x) => x.name === dev)?.addresses.filter(universe) ?? [];
  const same = own.find((a) => (a.ip.value & maskOf(a.prefix, near.family)) === (near.value & maskOf(a.prefix, near.family)));
  if (same ?? own[0]) return (same ?? own[0]).ip;
  for (const x of h.interfaces) if (x.up) for (const a of x.addresses) if (universe(a)) return a.ip;
  return undefined;
}

/** The listening socket that takes a packet to addr:port: an exact bind wins over a wildcard. */
export function findSocket(h: Host, proto: 'tcp' | 'udp', dst: IP, port: number): ListenSocket | undefined {
  let wild: ListenSocket | undefined;
  for (const s of h.sockets) {
    if (s.proto !== proto || s.port !== port) continue;
    if (s.family === dst.family && s.addr.value === dst.value) return s;
    if (s.addr.value === 0n && (s.family === dst.family || (s.family === 'ipv6' && dst.family === 'ipv4' && !s.v6only))) {
      // a v4 wildcard beats a dual-stack v6 one for v4 packets (it is more specific in the kernel's scoring)
      if (!wild || (wild.family !== dst.family && s.family === dst.family)) wild = s;
    }
  }
  return wild;
}
