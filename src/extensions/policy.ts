/** `-m policy`: the IPsec policy a packet was or will be handled by (libxt_policy + xt_policy). */
import { bits, formatIP, parseIP, prefixOf, type Family } from '../model/addr';
import { protocolName, protocolNumber } from '../model/protocols';
import type { GivenOption, MatchExtension, PrintContext } from './types';
import { ExtensionError } from './types';
import { eachOnce, strtoul, xtUint } from './util';

/** XT_POLICY_MAX_ELEM: elements one rule may chain with --next. */
export const POLICY_MAX_ELEM = 4;

interface Inv<T> {
  value: T;
  invert: boolean;
}

/** One policy element; a field is tested only when present. */
export interface PolicyElem {
  reqid?: Inv<number>;
  spi?: Inv<number>;
  proto?: Inv<number>;
  mode?: Inv<'transport' | 'tunnel'>;
  /** Tunnel end points: the address as given (not masked) and the prefix length. */
  tunnelSrc?: Inv<{ addr: bigint; prefix: number }>;
  tunnelDst?: Inv<{ addr: bigint; prefix: number }>;
}

export interface PolicyInfo {
  dir: 'in' | 'out';
  pol: 'ipsec' | 'none';
  strict: boolean;
  elems: PolicyElem[];
}

/** IPPROTO_AH, IPPROTO_ESP, IPPROTO_COMP: the only protocols a policy element may name. */
const IPSEC_PROTOS = [50, 51, 108];
/** Upper-case names getprotobyname knows from netbase's aliases (XTTYPE_PROTOCOL is case-sensitive). */
const PROTO_ALIASES = new Set(['IPSEC-ESP', 'IPSEC-AH', 'IPCOMP']);

function parseProto(text: string): number {
  const n = /^\d+$/.test(text) || text === text.toLowerCase() || PROTO_ALIASES.has(text) ? protocolNumber(text) : undefined;
  if (n === undefined) throw new ExtensionError(`unknown protocol "${text}" specified`);
  if (!IPSEC_PROTOS.includes(n)) throw new ExtensionError('policy match: protocol must be ah/esp/ipcomp');
  return n;
}

/**
 * XTTYPE_HOSTMASK: an address and an optional mask; the address is kept unmasked. The mask is a
 * prefix length (strtoul base 0) or else an address-shaped mask, and a mask that is not a prefix
 * becomes all ones, silently: iptables 1.8.9 saves `10.1.2.3/255.0.255.0` and `10.1.2.3/200`
 * (inet_aton reads 200 as 0.0.0.200) as plain `10.1.2.3`.
 */
function parseTunnel(o: GivenOption, family: Family): { addr: bigint; prefix: number } {
  const [a, p] = o.args[0].split('/', 2);
  const ip = parseIP(a, family);
  if (!ip) throw new ExtensionError(`host/network \`${a}' not found`);
  const all = bits(family);
  if (p === undefined) return { addr: ip.value, prefix: all };
  const n = strtoul(p);
  if (n <= all) return { addr: ip.value, prefix: n };
  let mask: bigint | undefined = parseIP(p, family)?.value;
  if (mask === undefined && family === 'ipv4' && n <= 0xffffffff) mask = BigInt(n);
  if (mask === undefined)
    throw new ExtensionError(`policy: bad value for option "--${o.name}", neither a valid network mask nor valid CIDR (0-${all}).`);
  const prefix = prefixOf(mask, family);
  return { addr: ip.value, prefix: prefix < 0 ? all : prefix };
}

const DOUBLE: Record<string, string> = {
  reqid: 'reqid', spi: 'spi', proto: 'proto', mode: 'mode', 'tunnel-src': 'tunnelSrc', 'tunnel-dst': 'tunnelDst',
};

function setElem(e: PolicyElem, o: GivenOption, family: Family): void {
  const key = DOUBLE[o.name] as keyof PolicyElem;
  if (e[key]) throw new ExtensionError(`policy match: double --${o.name} option`);
  const inv = o.invert;
  if (o.name === 'reqid') e.reqid = { value: xtUint(o, 'policy', 0, 0xffffffff), invert: inv };
  else if (o.name === 'spi') e.spi = { value: xtUint(o, 'policy', 0, 0xffffffff), invert: inv };
  else if (o.name === 'proto') e.proto = { value: parseProto(o.args[0]), invert: inv };
  else if (o.name === 'mode') {
    const m = o.args[0];
    if (m !== 'transport' && m !== 'tunnel') throw new ExtensionError(`policy match: invalid mode "${m}"`);
    e.mode = { value: m, invert: inv };
  } else if (o.name === 'tunnel-src') e.tunnelSrc = { value: parseTunnel(o, family), invert: inv };
  else e.tunnelDst = { value: parseTunnel(o, family), invert: inv };
}

/** policy_check, then the options table's `--next` needs `--strict`. */
function finalCheck(info: PolicyInfo, nexts: number): void {
  if (info.pol === 'none') {
    if (info.strict) throw new ExtensionError('policy match: policy none but --strict given');
    if (nexts) throw new ExtensionError('policy match: policy none but policy given');
  }
  info.elems.forEach((e, i) => {
    if (info.strict && Object.keys(e).length === 0)
      throw new ExtensionError(`policy match: empty policy element ${i}. --strict is in effect, but at least one of reqid, spi, tunnel-src, tunnel-dst, proto or mode is required.`);
    if ((e.tunnelSrc || e.tunnelDst) && (e.mode?.value === 'tunnel') === !!e.mode?.invert)
      throw new ExtensionError('policy match: --tunnel-src/--tunnel-dst is only valid in tunnel mode');
  });
  if (nexts && !info.strict) throw new ExtensionError('policy: option "--next" also requires "--strict".');
}

function tunnelText(label: string, t: Inv<{ addr: bigint; prefix: number }> | undefined, fam: Family): string {
  if (!t) return '';
  const p = t.value.prefix === bits(fam) ? '' : `/${t.value.prefix}`;
  return `${t.invert ? ' !' : ''} ${label} ${formatIP(t.value.addr, fam)}${p}`;
}

/** print_entry's order: reqid, spi, proto, mode, tunnel-dst, tunnel-src. */
function elemText(e: PolicyElem, pre: string, ctx: PrintContext, numericProto: boolean): string {
  const b = (x?: { invert: boolean }) => (x?.invert ? ' !' : '');
  let s = '';
  if (e.reqid) s += `${b(e.reqid)} ${pre}reqid ${e.reqid.value}`;
  if (e.spi) s += `${b(e.spi)} ${pre}spi 0x${e.spi.value.toString(16)}`;
  if (e.proto) s += `${b(e.proto)} ${pre}proto ${numericProto ? e.proto.value : protocolName(e.proto.value)}`;
  if (e.mode) s += `${b(e.mode)} ${pre}mode ${e.mode.value}`;
  s += tunnelText(`${pre}tunnel-dst`, e.tunnelDst, ctx.family) + tunnelText(`${pre}tunnel-src`, e.tunnelSrc, ctx.family);
  return s;
}

const flagsText = (i: PolicyInfo, pre: string) =>
  ` ${pre}dir ${i.dir} ${pre}pol ${i.pol}` + (i.strict ? ` ${pre}strict` : '');

export const policy: MatchExtension<PolicyInfo> = {
  kind: 'match',
  name: 'policy',
  // xt_policy's checkentry: an input policy has no place on the way out, and the reverse
  hooksFor: (i) => (i.dir === 'in' ? ['PREROUTING', 'INPUT', 'FORWARD'] : ['FORWARD', 'OUTPUT', 'POSTROUTING']),
  options: [
    { name: 'dir', args: 1 },
    { name: 'pol', args: 1 },
    { name: 'strict', args: 0 },
    { name: 'reqid', args: 1, invert: true, repeat: true },
    { name: 'spi', args: 1, invert: true, repeat: true },
    { name: 'tunnel-src', args: 1, invert: true, repeat: true },
    { name: 'tunnel-dst', args: 1, invert: true, repeat: true },
    { name: 'proto', args: 1, invert: true, repeat: true },
    { name: 'mode', args: 1, invert: true, repeat: true },
    { name: 'next', args: 0, repeat: true },
  ],
  parse(opts, ctx) {
    let dir: PolicyInfo['dir'] | undefined;
    const info: PolicyInfo = { dir: 'in', pol: 'ipsec', strict: false, elems: [] };
    const elems: PolicyElem[] = [{}];
    let nexts = 0;
    eachOnce(opts, 'policy', (o) => {
      if (o.name === 'dir') {
        if (o.args[0] !== 'in' && o.args[0] !== 'out') throw new ExtensionError(`policy_match: invalid dir "${o.args[0]}"`);
        dir = o.args[0];
      } else if (o.name === 'pol') {
        if (o.args[0] !== 'ipsec' && o.args[0] !== 'none') throw new ExtensionError(`policy match: invalid policy "${o.args[0]}"`);
        info.pol = o.args[0];
      } else if (o.name === 'strict') info.strict = true;
      else if (o.name === 'next') {
        if (++nexts === POLICY_MAX_ELEM) throw new ExtensionError('policy match: maximum policy depth reached');
        elems.push({});
      } else setElem(elems[elems.length - 1], o, ctx.family);
    }, ['reqid', 'spi', 'tunnel-src', 'tunnel-dst', 'proto', 'mode', 'next']);
    if (!dir) throw new ExtensionError('policy match: neither --dir in nor --dir out specified');
    info.dir = dir;
    // with --pol none the elements are not counted: what was given for them is dropped
    info.elems = info.pol === 'none' && nexts === 0 ? [] : elems;
    finalCheck(info, nexts);
    return info;
  },
  save: (i, ctx) => flagsText(i, '--') + i.elems.map((e) => elemText(e, '--', ctx, false)).join(' --next'),
  list: (i, ctx) =>
    ' policy match' + flagsText(i, '') +
    i.elems.map((e, k) => (i.elems.length > 1 ? ` [${k}]` : '') + elemText(e, '', ctx, ctx.numeric)).join(''),
  /**
   * The model has no IPsec: no packet carries a security path or leaves through a transform, so
   * xt_policy finds no policy, which `--pol none` matches and `--pol ipsec` does not.
   */
  match: (i) => i.pol === 'none',
};
