/** `-j REJECT` (libipt_REJECT/libip6t_REJECT + ipt_REJECT/ip6t_REJECT): drop and answer. */
import type { Family } from '../model/addr';
import type { TargetExtension } from './types';
import { ExtensionError } from './types';
import { onlyOnce } from './util';

/** Reply types in libipt_REJECT's table order, each with its alias; lookup takes the first prefix hit. */
const TYPES: Record<Family, readonly [string, string][]> = {
  ipv4: [
    ['icmp-net-unreachable', 'net-unreach'],
    ['icmp-host-unreachable', 'host-unreach'],
    ['icmp-proto-unreachable', 'proto-unreach'],
    ['icmp-port-unreachable', 'port-unreach'],
    ['icmp-net-prohibited', 'net-prohib'],
    ['icmp-host-prohibited', 'host-prohib'],
    ['tcp-reset', 'tcp-rst'],
    ['icmp-admin-prohibited', 'admin-prohib'],
  ],
  // ip6tables has no tcp-rst alias: `--reject-with tcp-rst` is refused there
  ipv6: [
    ['icmp6-no-route', 'no-route'],
    ['icmp6-adm-prohibited', 'adm-prohibited'],
    ['icmp6-addr-unreachable', 'addr-unreach'],
    ['icmp6-port-unreachable', 'port-unreach'],
    ['tcp-reset', 'tcp-reset'],
    ['icmp6-policy-fail', 'policy-fail'],
    ['icmp6-reject-route', 'reject-route'],
  ],
};

export interface RejectInfo {
  /** The canonical type name (`icmp-port-unreachable`, `tcp-reset`, …). */
  with: string;
}

/**
 * The type a `--reject-with` word names. iptables compares case-insensitively and only as far as
 * the word goes, so `icmp-net`, `HOST` and even an empty word pick the first type they begin
 * (iptables-save shows `icmp-net-unreachable`, `icmp-host-unreachable`, `icmp-net-unreachable`).
 */
export function rejectType(word: string, family: Family): string | undefined {
  const w = word.toLowerCase();
  return TYPES[family].find(([name, alias]) => name.startsWith(w) || alias.startsWith(w))?.[0];
}

export const REJECT: TargetExtension<RejectInfo> = {
  kind: 'target',
  name: 'REJECT',
  // ipt_REJECT is registered for the filter table only: mangle INPUT, raw OUTPUT and
  // security INPUT all refuse it in both backends
  tables: ['filter'],
  hooks: ['INPUT', 'FORWARD', 'OUTPUT'],
  options: [{ name: 'reject-with', args: 1 }],
  parse(opts, ctx) {
    onlyOnce(opts, 'REJECT');
    const o = opts[0];
    const type = o ? rejectType(o.args[0], ctx.family) : undefined;
    if (o && !type) throw new ExtensionError(`unknown reject type "${o.args[0]}"`, o.token);
    const info = { with: type ?? (ctx.family === 'ipv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable') };
    // the kernel's checkentry refuses a TCP reset for rules that may see other protocols
    if (info.with === 'tcp-reset' && (ctx.protocol?.value !== 'tcp' || ctx.protocol.invert))
      throw new ExtensionError('REJECT: --reject-with tcp-reset is only valid with -p tcp', o?.token);
    return info;
  },
  save: (i) => ` --reject-with ${i.with}`,
  list: (i) => ` reject-with ${i.with}`,
  target: (i) => ({ verdict: 'reject', with: i.with }),
};
