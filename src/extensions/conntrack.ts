/**
 * `-m conntrack` (libxt_conntrack revision 3 + the kernel's conntrack_mt) and `-m state`, which
 * iptables 1.8.9 keeps under its own name in iptables-save on both backends but which tests the
 * same state bits. Experiments in a namespace settled the quirks noted below.
 */
import { formatIP, maskOf, parseIP, prefixOf, bits, type Family } from '../model/addr';
import type { Packet, Tuple } from '../model/packet';
import { protocolNumber } from '../model/protocols';
import type { MatchExtension, MatchResult, PrintContext } from './types';
import { ExtensionError, type GivenOption } from './types';
import { serviceNumber, bang, eachOnce, inetAton, strtoul } from './util';

/** `--ctstate` names in the order iptables prints them (INVALID first, as its bit is lowest). */
export const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'] as const;
/** `--state` names: the conntrack states without SNAT/DNAT. */
export const STATES = CT_STATES.slice(0, 5);
/** `--ctstatus` names in print order. */
export const CT_STATUSES = ['EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED'] as const;

export interface Flags {
  names: string[];
  invert: boolean;
}
export interface CtAddr {
  family: Family;
  /** Kept as given: iptables does not apply the mask to it (`10.1.2.3/8` saves as such). */
  addr: bigint;
  mask: bigint;
  invert: boolean;
}
export interface Range {
  min: number;
  max: number;
  invert: boolean;
}

export interface ConntrackInfo {
  state?: Flags;
  proto?: { number: number; invert: boolean };
  origsrc?: CtAddr;
  origdst?: CtAddr;
  replsrc?: CtAddr;
  repldst?: CtAddr;
  origsrcport?: Range;
  origdstport?: Range;
  replsrcport?: Range;
  repldstport?: Range;
  status?: Flags;
  expire?: Range;
  dir?: 'ORIGINAL' | 'REPLY';
}

const ADDR_OPTS = ['origsrc', 'origdst', 'replsrc', 'repldst'] as const;
const PORT_OPTS = ['origsrcport', 'origdstport', 'replsrcport', 'repldstport'] as const;

/**
 * A comma list of names, case-insensitive, kept in print order. As libxt_conntrack walks it, a bad
 * or empty element is quoted with the rest of the list after it (`Bad state ",RELATED"`); `state`
 * words an empty last element differently from conntrack (`NEW,` in the kernel's own runs).
 */
function parseFlags(text: string, known: readonly string[], what: string, invert: boolean): Flags {
  const set = new Set<string>();
  const elems = text.split(',');
  let pos = 0;
  elems.forEach((part, k) => {
    const u = part.toUpperCase();
    const last = k === elems.length - 1;
    if (last && part === '' && what === 'state')
      throw new ExtensionError('"--state" requires a list of states with no spaces, e.g. ESTABLISHED,RELATED');
    if (!(what === 'ctstatus' && u === 'NONE')) {
      if (!known.includes(u)) throw new ExtensionError(`Bad ${what} "${text.slice(pos)}"`);
      set.add(u);
    }
    pos += part.length + 1;
  });
  return { names: known.filter((n) => set.has(n)), invert };
}

/**
 * `addr[/mask]` as XTTYPE_HOSTMASK reads it. The address must be numeric here (iptables would
 * ask DNS). A mask is a prefix length or an address; an address mask that is not contiguous
 * becomes all ones (`/255.0.255.0`, `/33` read as 0.0.0.33, both save without a mask).
 */
function parseCtAddr(o: GivenOption, family: Family): CtAddr {
  const text = o.args[0];
  const slash = text.indexOf('/');
  const a = slash < 0 ? text : text.slice(0, slash);
  const v4 = family === 'ipv4' ? inetAton(a) : null;
  const ip = family === 'ipv4' ? (v4 === null ? null : { value: v4 }) : parseIP(a, 'ipv6');
  if (!ip) {
    const other = family === 'ipv6' && parseIP(a, 'ipv4');
    throw new ExtensionError(`getaddrinfo: ${other ? 'Address family for hostname not supported' : 'Name or service not known'}`);
  }
  const n = bits(family);
  let mask = maskOf(n, family);
  if (slash >= 0) {
    const m = text.slice(slash + 1);
    const plen = strtoul(m);
    if (plen <= n) mask = maskOf(plen, family);
    else {
      const mv = family === 'ipv4' ? inetAton(m) : parseIP(m, 'ipv6')?.value ?? null;
      if (mv === null || m === '')
        throw new ExtensionError(`conntrack: bad value for option "--${o.name}", neither a valid network mask nor valid CIDR (0-${n}).`);
      if (prefixOf(mv, family) >= 0) mask = mv;
    }
  }
  return { family, addr: ip.value, mask, invert: o.invert };
}

/** One port of a `--ct*port` range: decimal numbers wrap at 65536 (getaddrinfo stores 16 bits), or a service name. */
function parseCtPort(text: string): number {
  if (/^\d+$/.test(text)) return Number(BigInt(text) % 65536n);
  const s = serviceNumber(text);
  if (s === undefined) throw new ExtensionError(`Port "${text}" does not resolve to anything.`);
  return s;
}

/** `P`, `L:U`, `L:` or `:U`; a reversed range is kept (it then never matches). */
function parseCtPorts(o: GivenOption): Range {
  const parts = o.args[0].split(':');
  if (parts.length > 2) throw new ExtensionError(`conntrack: Too many components for option "--${o.name}" (max: 2)`);
  const min = parts[0] === '' ? 0 : parseCtPort(parts[0]);
  const max = parts.length === 1 ? min : parts[1] === '' ? 65535 : parseCtPort(parts[1]);
  return { min, max, invert: o.invert };
}

function parseExpire(o: GivenOption): Range {
  const parts = o.args[0].split(':');
  const num = (s: string, dflt: number) => {
    if (s === '') return dflt;
    const v = strtoul(s);
    if (!(v <= 0xffffffff))
      throw new ExtensionError(`conntrack: bad value for option "--ctexpire" near "${s}", or out of range (0-4294967295).`);
    return v;
  };
  if (parts.length > 2) throw new ExtensionError(`conntrack: Too many components for option "--ctexpire" (max: 2)`);
  const min = num(parts[0], 0);
  return { min, max: parts.length === 1 ? min : num(parts[1], 0xffffffff), invert: o.invert };
}

const range = (r: Range) => (r.min === r.max ? `${r.min}` : `${r.min}:${r.max}`);
const flagText = (f: Flags) => (f.names.length ? f.names.join(',') : 'NONE');

function addrText(a: CtAddr, ctx: PrintContext, forList: boolean): string {
  const p = prefixOf(a.mask, a.family);
  const suffix = p === bits(a.family) || p < 0 ? '' : `/${p}`;
  if (forList && !ctx.numeric) {
    // conntrack_dump_addr: a zero address prints as `anywhere` whatever its mask
    if (a.addr === 0n) return 'anywhere';
    const text = formatIP(a.addr, a.family);
    return (ctx.names?.hosts?.get(text) ?? text) + suffix;
  }
  return formatIP(a.addr, a.family) + suffix;
}

/** The parts of the rule in save/-L order, each as [option name, value text, invert]. */
function parts(i: ConntrackInfo, ctx: PrintContext, forList: boolean): [string, string, boolean][] {
  const out: [string, string, boolean][] = [];
  if (i.state) out.push(['ctstate', flagText(i.state), i.state.invert]);
  if (i.proto) out.push(['ctproto', String(i.proto.number), i.proto.invert]);
  for (const k of ADDR_OPTS) {
    const a = i[k];
    if (a) out.push([`ct${k}`, addrText(a, ctx, forList), a.invert]);
  }
  for (const k of PORT_OPTS) {
    const r = i[k];
    if (r) out.push([`ct${k}`, range(r), r.invert]);
  }
  if (i.status) out.push(['ctstatus', flagText(i.status), i.status.invert]);
  if (i.expire) out.push(['ctexpire', range(i.expire), i.expire.invert]);
  if (i.dir) out.push(['ctdir', i.dir, false]);
  return out;
}

/** The state bits of a packet as conntrack_mt computes them (SNAT/DNAT from the entry's NAT status). */
function stateBits(p: Packet): Set<string> {
  const s = new Set<string>([p.ct.state]);
  if (p.ct.state !== 'INVALID' && p.ct.state !== 'UNTRACKED') {
    if (p.ct.natted.src) s.add('SNAT');
    if (p.ct.natted.dst) s.add('DNAT');
  }
  return s;
}

const inRange = (r: Range, v: number) => (v >= r.min && v <= r.max) !== r.invert;
const addrHit = (a: CtAddr, v: bigint) => ((v & a.mask) === (a.addr & a.mask)) !== a.invert;

/** conntrack_mt, step by step in the kernel's order; an entry-less packet matches only through --ctstate. */
function matchConntrack(i: ConntrackInfo, p: Packet): MatchResult {
  if (i.state) {
    const bitsHit = i.state.names.some((n) => stateBits(p).has(n));
    if (bitsHit === i.state.invert) return false;
  }
  if (p.ct.state === 'INVALID' || p.ct.state === 'UNTRACKED') return !!i.state;
  if (i.dir && (i.dir === 'REPLY') !== p.ct.reply) return false;
  const needTuples = ADDR_OPTS.some((k) => i[k]) || PORT_OPTS.some((k) => i[k]);
  const { orig, repl } = p.ct;
  if (needTuples && (!orig || !repl)) return { undecided: 'the conntrack tuples of this flow are not known' };
  const tuple = (k: string): Tuple => (k.startsWith('orig') ? orig! : repl!);
  for (const k of ADDR_OPTS) {
    const a = i[k];
    if (a && !addrHit(a, k.endsWith('src') ? tuple(k).src : tuple(k).dst)) return false;
  }
  if (i.proto && (p.protocol === i.proto.number) === i.proto.invert) return false;
  for (const k of PORT_OPTS) {
    const r = i[k];
    if (r && !inRange(r, k.endsWith('srcport') ? tuple(k).sport : tuple(k).dport)) return false;
  }
  if (i.status && i.status.names.some((n) => p.ct.status.has(n as never)) === i.status.invert) return false;
  if (i.expire) return { undecided: 'conntrack timeouts (--ctexpire) are not modelled' };
  return true;
}

export const conntrack: MatchExtension<ConntrackInfo> = {
  kind: 'match',
  name: 'conntrack',
  options: [
    { name: 'ctstate', args: 1, invert: true },
    { name: 'ctproto', args: 1, invert: true },
    { name: 'ctorigsrc', args: 1, invert: true },
    { name: 'ctorigdst', args: 1, invert: true },
    { name: 'ctreplsrc', args: 1, invert: true },
    { name: 'ctrepldst', args: 1, invert: true },
    { name: 'ctorigsrcport', args: 1, invert: true },
    { name: 'ctorigdstport', args: 1, invert: true },
    { name: 'ctreplsrcport', args: 1, invert: true },
    { name: 'ctrepldstport', args: 1, invert: true },
    { name: 'ctstatus', args: 1, invert: true },
    { name: 'ctexpire', args: 1, invert: true },
    { name: 'ctdir', args: 1 },
  ],
  parse(opts, ctx) {
    const info: ConntrackInfo = {};
    eachOnce(opts, 'conntrack', (o) => {
      const k = o.name.slice(2);
      if (o.name === 'ctstate') info.state = parseFlags(o.args[0], CT_STATES, 'ctstate', o.invert);
      else if (o.name === 'ctstatus') info.status = parseFlags(o.args[0], CT_STATUSES, 'ctstatus', o.invert);
      else if (o.name === 'ctproto') {
        const n = protocolNumber(o.args[0]);
        if (n === undefined) throw new ExtensionError(`unknown protocol "${o.args[0]}" specified`);
        info.proto = { number: n, invert: o.invert };
      } else if ((ADDR_OPTS as readonly string[]).includes(k)) info[k as (typeof ADDR_OPTS)[number]] = parseCtAddr(o, ctx.family);
      else if ((PORT_OPTS as readonly string[]).includes(k)) info[k as (typeof PORT_OPTS)[number]] = parseCtPorts(o);
      else if (o.name === 'ctexpire') info.expire = parseExpire(o);
      else {
        const d = o.args[0].toUpperCase();
        if (d !== 'ORIGINAL' && d !== 'REPLY') throw new ExtensionError(`conntrack: Bad value for "--ctdir" option: "${o.args[0]}"`);
        info.dir = d;
      }
    });
    if (opts.length === 0) throw new ExtensionError('conntrack: At least one option is required');
    return info;
  },
  save: (i, ctx) => parts(i, ctx, false).map(([n, v, inv]) => `${bang(inv)} --${n} ${v}`).join(''),
  list: (i, ctx) => parts(i, ctx, true).map(([n, v, inv]) => `${bang(inv)} ${n} ${v}`).join(''),
  match: (i, p) => matchConntrack(i, p),
};

/** `-m state --state`: the same state test as --ctstate, without SNAT/DNAT. */
export const state: MatchExtension<Flags> = {
  kind: 'match',
  name: 'state',
  options: [{ name: 'state', args: 1, invert: true }],
  parse(opts) {
    let info: Flags | undefined;
    eachOnce(opts, 'state', (o) => {
      info = parseFlags(o.args[0], STATES, 'state', o.invert);
    });
    if (!info) throw new ExtensionError('state: option "--state" must be specified');
    return info;
  },
  save: (i) => `${bang(i.invert)} --state ${i.names.join(',')}`,
  list: (i) => `${bang(i.invert)} state ${i.names.join(',')}`,
  match: (i, p) => i.names.includes(p.ct.state) !== i.invert,
};
