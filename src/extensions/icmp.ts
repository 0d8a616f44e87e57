/**
 * `-m icmp --icmp-type` (libxt_icmp + the kernel's icmp_mt). iptables loads it by itself for
 * `-p icmp`. The name table and its quirks (prefix lookup, aliases) are shared with icmp6.
 */
import type { MatchExtension, PrintContext } from './types';
import { ExtensionError, type GivenOption } from './types';
import { bang, eachOnce, strtoul } from './util';

/** One entry of iptables' ICMP name table: a type and the code range the name stands for. */
export interface IcmpName {
  name: string;
  type: number;
  min: number;
  max: number;
}

/** The parsed `--icmp-type`/`--icmpv6-type`: type, code range, negation. */
export interface IcmpInfo {
  type: number;
  codeMin: number;
  codeMax: number;
  invert: boolean;
}

const t = (name: string, type: number, min = 0, max = 0xff): IcmpName => ({ name, type, min, max });
const c = (name: string, type: number, code: number): IcmpName => ({ name, type, min: code, max: code });

/**
 * The names `iptables -p icmp -h` lists, in its order, aliases right after the name they stand
 * for: the order decides which name -L prints and which two an ambiguous prefix names.
 */
export const ICMP_NAMES: readonly IcmpName[] = [
  t('any', 0xff), t('echo-reply', 0), t('pong', 0), t('destination-unreachable', 3),
  c('network-unreachable', 3, 0), c('host-unreachable', 3, 1), c('protocol-unreachable', 3, 2),
  c('port-unreachable', 3, 3), c('fragmentation-needed', 3, 4), c('source-route-failed', 3, 5),
  c('network-unknown', 3, 6), c('host-unknown', 3, 7), c('network-prohibited', 3, 9),
  c('host-prohibited', 3, 10), c('TOS-network-unreachable', 3, 11), c('TOS-host-unreachable', 3, 12),
  c('communication-prohibited', 3, 13), c('host-precedence-violation', 3, 14), c('precedence-cutoff', 3, 15),
  t('source-quench', 4), t('redirect', 5), c('network-redirect', 5, 0), c('host-redirect', 5, 1),
  c('TOS-network-redirect', 5, 2), c('TOS-host-redirect', 5, 3), t('echo-request', 8), t('ping', 8),
  t('router-advertisement', 9), t('router-solicitation', 10), t('time-exceeded', 11), t('ttl-exceeded', 11),
  c('ttl-zero-during-transit', 11, 0), c('ttl-zero-during-reassembly', 11, 1), t('parameter-problem', 12),
  c('ip-header-bad', 12, 0), c('required-option-missing', 12, 1), t('timestamp-request', 13),
  t('timestamp-reply', 14), t('address-mask-request', 17), t('address-mask-reply', 18),
];

/**
 * Parse a type argument as libxt_icmp does: a case-insensitive *prefix* of a name (two hits are
 * "Ambiguous", even for the empty string), else `type[/code]` numbers read by strtoul base 0.
 * `what` is `ICMP` or `ICMPv6`, as the messages say.
 */
export function parseIcmpType(text: string, names: readonly IcmpName[], what: string, invert: boolean): IcmpInfo {
  let hit: IcmpName | undefined;
  const low = text.toLowerCase();
  for (const n of names) {
    if (!n.name.toLowerCase().startsWith(low)) continue;
    if (hit) throw new ExtensionError(`Ambiguous ${what} type \`${text}': \`${hit.name}' or \`${n.name}'?`);
    hit = n;
  }
  if (hit) return { type: hit.type, codeMin: hit.min, codeMax: hit.max, invert };
  const slash = text.indexOf('/');
  const type = strtoul(slash < 0 ? text : text.slice(0, slash));
  if (!(type <= 0xff)) throw new ExtensionError(`Unknown ${what} type \`${text}'`);
  if (slash < 0) return { type, codeMin: 0, codeMax: 0xff, invert };
  const code = strtoul(text.slice(slash + 1));
  if (!(code <= 0xff)) throw new ExtensionError(`Unknown ${what} code \`${text}'`);
  return { type, codeMin: code, codeMax: code, invert };
}

/** The one mandatory, once-only option of icmp and icmp6, with xtables' wording when it is missing. */
export function parseIcmpOpts(opts: GivenOption[], ext: string, names: readonly IcmpName[], what: string): IcmpInfo {
  let info: IcmpInfo | undefined;
  eachOnce(opts, ext, (o) => {
    info = parseIcmpType(o.args[0], names, what, o.invert);
  });
  if (!info) throw new ExtensionError(`${ext}: option "--${ext === 'icmp' ? 'icmp-type' : 'icmpv6-type'}" must be specified`);
  return info;
}

/** The save form's value: `8`, `3/1`, and `any` for icmp's wildcard type 255. */
export function saveIcmpType(i: IcmpInfo, wildcard: boolean): string {
  if (wildcard && i.type === 0xff) return 'any';
  if (i.codeMin === i.codeMax) return `${i.type}/${i.codeMin}`;
  return String(i.type);
}

/**
 * -L text after the protocol word: a name from the table when one has exactly this type and code
 * range (`echo-request`, `!port-unreachable`), else `type 3 code 1` glued to the word before it,
 * as print_icmptype prints it (`icmptype 8`, `icmp !type 3 code 1`). -n never uses names.
 */
export function listIcmpType(word: string, i: IcmpInfo, names: readonly IcmpName[], ctx: PrintContext): string {
  if (!ctx.numeric) {
    const n = names.find((x) => x.type === i.type && x.min === i.codeMin && x.max === i.codeMax);
    if (n) return ` ${word} ${i.invert ? '!' : ''}${n.name}`;
  }
  let s = ` ${word}${i.invert ? ' !' : ''}type ${i.type}`;
  if (i.codeMin === i.codeMax) s += ` code ${i.codeMin}`;
  else if (i.codeMin !== 0 || i.codeMax !== 0xff) s += ` codes ${i.codeMin}-${i.codeMax}`;
  return s;
}

export const icmp: MatchExtension<IcmpInfo> = {
  kind: 'match',
  name: 'icmp',
  family: 'ipv4',
  protocol: 'icmp',
  options: [{ name: 'icmp-type', args: 1, invert: true }],
  parse: (opts) => parseIcmpOpts(opts, 'icmp', ICMP_NAMES, 'ICMP'),
  save: (i) => `${bang(i.invert)} --icmp-type ${saveIcmpType(i, true)}`,
  list: (i, ctx) => listIcmpType('icmp', i, ICMP_NAMES, ctx),
  match(i, p) {
    // icmp_mt: later fragments carry no ICMP header and never match; type 255 is a wildcard
    if (p.protocol !== 1 || p.fragment) return false;
    const hit = i.type === 0xff || (p.icmpType === i.type && p.icmpCode >= i.codeMin && p.icmpCode <= i.codeMax);
    return hit !== i.invert;
  },
};
