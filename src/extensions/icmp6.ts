/**
 * `-m icmp6 --icmpv6-type` (libip6t_icmp6 + the kernel's icmp6_match), loaded by itself for
 * `-p icmpv6`. Unlike icmp there is no `any`: type 255 is a plain type.
 */
import type { MatchExtension } from './types';
import { type IcmpInfo, type IcmpName, listIcmpType, parseIcmpOpts, saveIcmpType } from './icmp';
import { bang } from './util';

const t = (name: string, type: number): IcmpName => ({ name, type, min: 0, max: 0xff });
const c = (name: string, type: number, code: number): IcmpName => ({ name, type, min: code, max: code });

/** The names `ip6tables -p icmpv6 -h` lists, in its order, aliases right after their name. */
export const ICMP6_NAMES: readonly IcmpName[] = [
  t('destination-unreachable', 1), c('no-route', 1, 0), c('communication-prohibited', 1, 1),
  c('beyond-scope', 1, 2), c('address-unreachable', 1, 3), c('port-unreachable', 1, 4),
  c('failed-policy', 1, 5), c('reject-route', 1, 6), t('packet-too-big', 2), t('time-exceeded', 3),
  t('ttl-exceeded', 3), c('ttl-zero-during-transit', 3, 0), c('ttl-zero-during-reassembly', 3, 1),
  t('parameter-problem', 4), c('bad-header', 4, 0), c('unknown-header-type', 4, 1), c('unknown-option', 4, 2),
  t('echo-request', 128), t('ping', 128), t('echo-reply', 129), t('pong', 129), t('router-solicitation', 133),
  t('router-advertisement', 134), t('neighbour-solicitation', 135), t('neighbor-solicitation', 135),
  t('neighbour-advertisement', 136), t('neighbor-advertisement', 136), t('redirect', 137),
];

export const icmp6: MatchExtension<IcmpInfo> = {
  kind: 'match',
  name: 'icmp6',
  family: 'ipv6',
  protocol: 'ipv6-icmp',
  options: [{ name: 'icmpv6-type', args: 1, invert: true }],
  parse: (opts) => parseIcmpOpts(opts, 'icmp6', ICMP6_NAMES, 'ICMPv6'),
  save: (i) => `${bang(i.invert)} --icmpv6-type ${saveIcmpType(i, false)}`,
  // -L calls the protocol by its /etc/protocols name: `ipv6-icmptype 128`, `ipv6-icmp echo-request`
  list: (i, ctx) => listIcmpType('ipv6-icmp', i, ICMP6_NAMES, ctx),
  match(i, p) {
    if (p.protocol !== 58 || p.fragment) return false;
    return (p.icmpType === i.type && p.icmpCode >= i.codeMin && p.icmpCode <= i.codeMax) !== i.invert;
  },
};
