/**
 * The NAT targets (libxt_NAT, libxt_REDIRECT, libxt_MASQUERADE + nf_nat): they ask for a mapping
 * of the flow's first packet and accept it. Tables and hooks are the kernel's: DNAT in nat
 * PREROUTING/OUTPUT, SNAT in nat POSTROUTING/INPUT, MASQUERADE in nat POSTROUTING, REDIRECT in nat
 * PREROUTING/OUTPUT (each refused elsewhere by both backends).
 */
import { formatIP, parseIP, type Family } from '../model/addr';
import type { GivenOption, ParseContext, TargetExtension } from './types';
import { ExtensionError } from './types';
import { at, onlyOnce, pin, serviceNumber } from './util';

/** Protocols whose ports NAT can map; others get iptables' `Need TCP, UDP, SCTP or DCCP …`. */
const PORT_PROTOCOLS = ['tcp', 'udp', 'sctp', 'dccp'];

/** Ports need `-p` of a protocol with ports; iptables looks at the number, not at a `!` before it. */
function needPortProtocol(ctx: ParseContext, o: GivenOption): void {
  if (!ctx.protocol || !PORT_PROTOCOLS.includes(ctx.protocol.value))
    throw new ExtensionError('Need TCP, UDP, SCTP or DCCP with port specification', o.token);
}

/** A port span as the NAT targets print it: `P` or `L-H`. */
const span = ([a, b]: [number, number]) => (a === b ? `${a}` : `${a}-${b}`);

/**
 * `--to-ports P[-P]` of REDIRECT and MASQUERADE: a service name only as the whole word, numbers
 * otherwise. The wording names the whole word when the first port is bad (`http-https`) and the
 * second port alone when that one is (`10-70000` names `70000`), as iptables 1.8.9 does.
 */
function parseToPorts(text: string): [number, number] {
  if (text.includes(':')) throw new ExtensionError('Invalid port:port syntax - use dash');
  const named = serviceNumber(text);
  if (named !== undefined) return [named, named];
  const num = (t: string, shown: string) => {
    if (!/^\d+$/.test(t) || Number(t) > 65535) throw new ExtensionError(`Port \`${shown}' not valid`);
    return Number(t);
  };
  const i = text.indexOf('-');
  const lo = num(i < 0 ? text : text.slice(0, i), text);
  const hi = i < 0 ? lo : num(text.slice(i + 1), text.slice(i + 1));
  if (lo > hi) throw new ExtensionError(`Port range \`${text.slice(i + 1)}' funky`);
  return [lo, hi];
}

export interface RedirectInfo {
  ports?: [number, number];
  random: boolean;
}

export const REDIRECT: TargetExtension<RedirectInfo> = {
  kind: 'target',
  name: 'REDIRECT',
  tables: ['nat'],
  hooks: ['PREROUTING', 'OUTPUT'],
  options: [
    { name: 'to-ports', args: 1 },
    { name: 'random', args: 0 },
  ],
  parse(opts, ctx) {
    onlyOnce(opts, 'REDIRECT');
    const info: RedirectInfo = { random: false };
    for (const o of opts) {
      if (o.name === 'random') info.random = true;
      else {
        needPortProtocol(ctx, o);
        info.ports = at(o, () => parseToPorts(o.args[0]));
      }
    }
    return info;
  },
  save: (i) => (i.ports ? ` --to-ports ${span(i.ports)}` : '') + (i.random ? ' --random' : ''),
  list: (i) => (i.ports ? ` redir ports ${span(i.ports)}` : '') + (i.random ? ' random' : ''),
  target(i, _p, ctx) {
    ctx.nat({ side: 'dst', pick: 'redirect', portMin: i.ports?.[0], portMax: i.ports?.[1], random: i.random });
    return { verdict: 'accept' };
  },
};

/** A `--to-destination`/`--to-source` mapping: an address range and a port range, either optional. */
export interface NatRange {
  addr?: [bigint, bigint];
  ports?: [number, number];
  /** `L-H/B`: the base of a shifted port range (DNAT revision 2). */
  base?: number;
}

export interface NatInfo extends NatRange {
  random: boolean;
  randomFully: boolean;
  persistent: boolean;
}

/** A port of a NAT range: its leading digits and what follows them (`80/90` leaves `/90`). */
function natPort(text: string, whole: string): { port: number; rest: string } {
  let i = 0;
  while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
  const digits = text.slice(0, i);
  if (digits === '' || Number(digits) > 65535) throw new ExtensionError(`Port \`${whole}' not valid`);
  return { port: Number(digits), rest: text.slice(i) };
}

/** The port part of a NAT range: `P`, `L-H` or `L-H/B` (libxt_NAT parse_ports, 1.8.9 wording). */
function parseNatPorts(text: string): Pick<NatRange, 'ports' | 'base'> {
  // a service name is looked up as a whole (`:http`), never inside a range (`:ssh-http` is refused)
  const named = serviceNumber(text);
  if (named !== undefined) return { ports: [named, named] };
  const dash = text.indexOf('-');
  if (dash < 0) {
    const { port, rest } = natPort(text, text);
    if (rest) throw new ExtensionError(`Garbage after port value: \`${rest}'`);
    return { ports: [port, port] };
  }
  const lo = natPort(text.slice(0, dash), text);
  if (lo.rest) throw new ExtensionError(`Port \`${text}' not valid`);
  const after = text.slice(dash + 1);
  const hi = natPort(after, after.split('/')[0]);
  if (lo.port > hi.port) throw new ExtensionError(`Port range \`${after}' funky`);
  const out: Pick<NatRange, 'ports' | 'base'> = { ports: [lo.port, hi.port] };
  if (hi.rest.startsWith('/')) out.base = natPort(hi.rest.slice(1), hi.rest.slice(1)).port;
  else if (hi.rest) throw new ExtensionError(`Garbage after port range: \`${hi.rest}'`);
  return out;
}

/** An address or `A-B` range; iptables keeps a reversed range as given. */
function parseAddrRange(text: string, family: Family): [bigint, bigint] {
  const dash = text.indexOf('-');
  const lo = oneAddr(dash < 0 ? text : text.slice(0, dash), family);
  return [lo, dash < 0 ? lo : oneAddr(text.slice(dash + 1), family)];
}

/** One address of a range. */
function oneAddr(t: string, family: Family): bigint {
  const ip = parseIP(t, family);
  if (!ip) throw new ExtensionError(`Bad IP address "${t}"`);
  return ip.value;
}

/**
 * `[addr[-addr]][:port[-port[/base]]]`; IPv6 puts the addresses in brackets when ports follow
 * (`[2001:db8::1-2001:db8::5]:80-90`).
 */
export function parseNatRange(text: string, family: Family, ctx: ParseContext, o: GivenOption): NatRange {
  let addrText = text;
  let portText: string | undefined;
  if (family === 'ipv4') {
    const c = text.indexOf(':');
    if (c >= 0) (addrText = text.slice(0, c)), (portText = text.slice(c + 1));
  } else if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new ExtensionError(`Invalid address format "${text}"`);
    addrText = text.slice(1, close);
    // ip6tables takes the ports after the first colon past the bracket, wherever it is:
    // `[a]x` has none, and `[a]-[b]:80` has the ports `b]:80`, which it refuses
    const c = text.indexOf(':', close);
    if (c >= 0) portText = text.slice(c + 1);
  } else if (text.startsWith(':')) (addrText = ''), (portText = text.slice(1));
  const r: NatRange = {};
  if (addrText !== '') r.addr = parseAddrRange(addrText, family);
  if (portText !== undefined) {
    needPortProtocol(ctx, o);
    Object.assign(r, parseNatPorts(portText));
  }
  return r;
}

/** The range as save and -L print it. */
export function formatNatRange(r: NatRange, family: Family): string {
  const a = !r.addr ? '' : r.addr[0] === r.addr[1] ? formatIP(r.addr[0], family) : `${formatIP(r.addr[0], family)}-${formatIP(r.addr[1], family)}`;
  if (!r.ports) return a;
  const p = span(r.ports) + (r.base !== undefined ? `/${r.base}` : '');
  return family === 'ipv6' && a ? `[${a}]:${p}` : `${a}:${p}`;
}

const flagWords = (i: NatInfo, lead: string) =>
  (i.random ? `${lead}random` : '') + (i.randomFully ? `${lead}random-fully` : '') + (i.persistent ? `${lead}persistent` : '');

/** DNAT and SNAT differ in their option name, side, hooks and whether --random-fully exists. */
function natTarget(name: 'DNAT' | 'SNAT'): TargetExtension<NatInfo> {
  const to = name === 'DNAT' ? 'to-destination' : 'to-source';
  return {
    kind: 'target',
    name,
    tables: ['nat'],
    hooks: name === 'DNAT' ? ['PREROUTING', 'OUTPUT'] : ['POSTROUTING', 'INPUT'],
    options: [
      { name: to, args: 1 },
      { name: 'random', args: 0 },
      ...(name === 'SNAT' ? [{ name: 'random-fully', args: 0 }] : []),
      { name: 'persistent', args: 0 },
    ],
    parse(opts, ctx) {
      onlyOnce(opts, name);
      const info: NatInfo = { random: false, randomFully: false, persistent: false };
      let given = false;
      for (const o of opts) {
        if (o.name === 'random') info.random = true;
        else if (o.name === 'random-fully') info.randomFully = true;
        else if (o.name === 'persistent') info.persistent = true;
        else {
          // the range's fields in its own order (addr, ports, base), as an assign would copy them
          let r: NatRange;
          try {
            r = parseNatRange(o.args[0], ctx.family, ctx, o);
          } catch (e) {
            throw pin(e, o);
          }
          if (r.addr !== undefined) info.addr = r.addr;
          if (r.ports !== undefined) info.ports = r.ports;
          if (r.base !== undefined) info.base = r.base;
          given = true;
        }
      }
      if (!given) throw new ExtensionError(`${name}: option "--${to}" must be specified`);
      return info;
    },
    save: (i, ctx) => ` --${to} ${formatNatRange(i, ctx.family)}${flagWords(i, ' --')}`,
    list: (i, ctx) => ` to:${formatNatRange(i, ctx.family)}${flagWords(i, ' ')}`,
    target(i, _p, ctx) {
      ctx.nat({
        side: name === 'DNAT' ? 'dst' : 'src',
        addrMin: i.addr?.[0],
        addrMax: i.addr?.[1],
        portMin: i.ports?.[0],
        portMax: i.ports?.[1],
        random: i.random || i.randomFully,
        persistent: i.persistent,
      });
      if (i.base !== undefined) ctx.note(`${name}: ports shifted from base ${i.base} are not modelled; the range is used as is`);
      return { verdict: 'accept' };
    },
  };
}

// the name is spelled out so that the registry test can find each object's name beside it
export const DNAT: TargetExtension<NatInfo> = { ...natTarget('DNAT'), name: 'DNAT' };
export const SNAT: TargetExtension<NatInfo> = { ...natTarget('SNAT'), name: 'SNAT' };

export interface MasqueradeInfo {
  ports?: [number, number];
  random: boolean;
  randomFully: boolean;
}

export const MASQUERADE: TargetExtension<MasqueradeInfo> = {
  kind: 'target',
  name: 'MASQUERADE',
  tables: ['nat'],
  hooks: ['POSTROUTING'],
  options: [
    { name: 'to-ports', args: 1 },
    { name: 'random', args: 0 },
    { name: 'random-fully', args: 0 },
  ],
  parse(opts, ctx) {
    onlyOnce(opts, 'MASQUERADE');
    const info: MasqueradeInfo = { random: false, randomFully: false };
    for (const o of opts) {
      if (o.name === 'random') info.random = true;
      else if (o.name === 'random-fully') info.randomFully = true;
      else {
        needPortProtocol(ctx, o);
        info.ports = at(o, () => parseToPorts(o.args[0]));
      }
    }
    return info;
  },
  save: (i) => (i.ports ? ` --to-ports ${span(i.ports)}` : '') + (i.random ? ' --random' : '') + (i.randomFully ? ' --random-fully' : ''),
  list: (i) => (i.ports ? ` masq ports: ${span(i.ports)}` : '') + (i.random ? ' random' : '') + (i.randomFully ? ' random-fully' : ''),
  target(i, _p, ctx) {
    ctx.nat({ side: 'src', pick: 'masquerade', portMin: i.ports?.[0], portMax: i.ports?.[1], random: i.random || i.randomFully });
    return { verdict: 'accept' };
  },
};
