/**
 * `-m addrtype` (libxt_addrtype revision 1 + the kernel's addrtype_mt_v1): the routing table's type
 * of the source or destination address, optionally looked up on the packet's own interface.
 */
import type { Hook } from '../model/ruleset';
import type { MatchExtension } from './types';
import { ExtensionError } from './types';
import { eachOnce, exclusive } from './util';

/** Route types in the kernel's RTN_* order, which is also the order iptables prints them in. */
export const ADDR_TYPES = [
  'UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE',
  'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE',
] as const;

export interface TypeSet {
  types: string[];
  invert: boolean;
}

export interface AddrtypeInfo {
  src?: TypeSet;
  dst?: TypeSet;
  /** `--limit-iface-in/out`: look the address up on the packet's input or output interface only. */
  limit?: 'in' | 'out';
}

/** Hooks a `--limit-iface-*` option may be used from (addrtype_mt_checkentry_v1). */
export const LIMIT_IFACE_HOOKS = {
  in: ['PREROUTING', 'INPUT', 'FORWARD'],
  out: ['OUTPUT', 'POSTROUTING', 'FORWARD'],
} as const;

/**
 * The hooks this rule's addrtype may be used from: any without an interface limit, else those of
 * LIMIT_IFACE_HOOKS (the kernel refuses `--limit-iface-in` reachable from OUTPUT/POSTROUTING and
 * `--limit-iface-out` from PREROUTING/INPUT, also through user chains). The static `hooks` field
 * cannot say this, as it depends on the options.
 */
export function addrtypeHooks(info: AddrtypeInfo): readonly Hook[] | undefined {
  return info.limit ? LIMIT_IFACE_HOOKS[info.limit] : undefined;
}

function parseTypes(text: string, invert: boolean): TypeSet {
  const set = new Set<string>();
  for (const part of text.split(',')) {
    const u = part.toUpperCase();
    if (!(ADDR_TYPES as readonly string[]).includes(u)) throw new ExtensionError(`addrtype: bad type "${part}"`);
    set.add(u);
  }
  return { types: ADDR_TYPES.filter((t) => set.has(t)), invert };
}

/**
 * The kernel refuses, for IPv6, the types its IPv6 lookup cannot tell (checked in this order by
 * addrtype_mt_checkentry_v1; iptables-restore then only says the line failed).
 */
function checkIPv6(types: Set<string>): void {
  if (types.has('BLACKHOLE')) throw new ExtensionError('addrtype: ipv6 BLACKHOLE matching not supported');
  if (['PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'].some((t) => types.has(t)))
    throw new ExtensionError('addrtype: ipv6 PROHIBIT (THROW, NAT ..) matching not supported');
  if (types.has('BROADCAST')) throw new ExtensionError('addrtype: ipv6 does not support BROADCAST matching');
}

const saveSet = (opt: string, s?: TypeSet) => (s ? `${s.invert ? ' !' : ''} --${opt} ${s.types.join(',')}` : '');
const listSet = (word: string, s?: TypeSet) => (s ? ` ${word} ${s.invert ? '!' : ''}${s.types.join(',')}` : '');

export const addrtype: MatchExtension<AddrtypeInfo> = {
  kind: 'match',
  name: 'addrtype',
  hooksFor: addrtypeHooks,
  options: [
    { name: 'src-type', args: 1, invert: true },
    { name: 'dst-type', args: 1, invert: true },
    { name: 'limit-iface-in', args: 0 },
    { name: 'limit-iface-out', args: 0 },
  ],
  parse(opts, ctx) {
    const info: AddrtypeInfo = {};
    eachOnce(opts, 'addrtype', (o) => {
      if (o.name === 'src-type') info.src = parseTypes(o.args[0], o.invert);
      else if (o.name === 'dst-type') info.dst = parseTypes(o.args[0], o.invert);
      else info.limit = o.name === 'limit-iface-in' ? 'in' : 'out';
    });
    if (!info.src && !info.dst) throw new ExtensionError('addrtype: you must specify --src-type or --dst-type');
    exclusive(opts, 'addrtype', ['limit-iface-in', 'limit-iface-out'], ['limit-iface-in', 'limit-iface-out']);
    if (ctx.family === 'ipv6') checkIPv6(new Set([...(info.src?.types ?? []), ...(info.dst?.types ?? [])]));
    return info;
  },
  save: (i) =>
    saveSet('src-type', i.src) + saveSet('dst-type', i.dst) +
    (i.limit === 'in' ? ' --limit-iface-in' : i.limit === 'out' ? ' --limit-iface-out' : ''),
  list: (i) =>
    ' ADDRTYPE match' + listSet('src-type', i.src) + listSet('dst-type', i.dst) +
    (i.limit === 'in' ? ' limit-in' : i.limit === 'out' ? ' limit-out' : ''),
  match(i, p, ctx) {
    const iface = i.limit === 'in' ? p.inInterface : i.limit === 'out' ? p.outInterface : undefined;
    const hit = (s: TypeSet, addr: bigint) => {
      const have = ctx.addrType(addr, iface);
      return s.types.some((t) => have.has(t)) !== s.invert;
    };
    if (i.src && !hit(i.src, p.src)) return false;
    if (i.dst && !hit(i.dst, p.dst)) return false;
    return true;
  },
};
