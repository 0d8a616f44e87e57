/**
 * The chains every kube-proxy node has whatever its Services: KUBE-POSTROUTING, KUBE-MARK-MASQ,
 * KUBE-FORWARD, kubelet's KUBE-FIREWALL duplicate, the canaries, and the jumps from the built-in
 * chains (installed with `iptables -I` one by one, so the last listed lands first).
 */
import type { TableName } from '../../model/ruleset';
import type { Gen } from './context';
import { match, rule, target, jump, verdict } from './rules';

/** The top-level chains in the order kube-proxy declares them in its restore input. */
export const FILTER_CHAINS = ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL'];
/** The nat table's top-level chains, in the same order. */
export const NAT_CHAINS = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'];

/** Declare the top-level chains and write the rules that do not depend on Services. */
export function writeBase(g: Gen): void {
  const { filter, nat } = g;
  for (const c of FILTER_CHAINS) g.chains.chain('filter', c);
  for (const c of NAT_CHAINS) g.chains.chain('nat', c);
  g.chains.add('nat', 'KUBE-POSTROUTING', rule(nat, { matches: [match(nat, undefined, 'mark', '!', '--mark', `${g.mark}/${g.mark}`)], target: verdict('RETURN') }));
  // --xor-mark M is --set-xmark M/0 to the kernel; --or-mark M is --set-xmark M/M.
  g.chains.add('nat', 'KUBE-POSTROUTING', rule(nat, { target: target(nat, undefined, 'MARK', '--set-xmark', `${g.mark}/0x0`) }));
  // iptables 1.8.9 has --random-fully, so kube-proxy asks for it.
  g.chains.add('nat', 'KUBE-POSTROUTING', rule(nat, { comment: 'kubernetes service traffic requiring SNAT', target: g.opts.randomFully ? target(nat, undefined, 'MASQUERADE', '--random-fully') : target(nat, undefined, 'MASQUERADE') }));
  g.chains.add('nat', 'KUBE-MARK-MASQ', rule(nat, { target: target(nat, undefined, 'MARK', '--set-xmark', `${g.mark}/${g.mark}`) }));
  if (g.opts.family === 'ipv4' && g.opts.localhostNodePorts) {
    g.chains.add('filter', 'KUBE-FIREWALL', rule(filter, {
      comment: 'block incoming localnet connections',
      destination: '127.0.0.0/8',
      source: '127.0.0.0/8',
      notSource: true,
      matches: [match(filter, undefined, 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED,DNAT')],
      target: verdict('DROP'),
    }));
  }
}

/** The KUBE-FORWARD rules and the final KUBE-SERVICES → KUBE-NODEPORTS rule, written after all Services. */
export function writeTail(g: Gen): void {
  const { filter, nat } = g;
  const v6 = g.opts.family === 'ipv6';
  // nodePortAddresses unset: NodePorts on every local address; never on ::1, nor on 127/8 without localhost NodePorts.
  const notLocalhost = v6 ? '::1/128' : g.opts.localhostNodePorts ? undefined : '127.0.0.0/8';
  g.chains.add('nat', 'KUBE-SERVICES', rule(nat, {
    comment: 'kubernetes service nodeports; NOTE: this must be the last rule in this chain',
    matches: [match(nat, undefined, 'addrtype', '--dst-type', 'LOCAL')],
    destination: notLocalhost,
    notDestination: true,
    target: jump('KUBE-NODEPORTS'),
  }));
  // nf_conntrack_tcp_be_liberal is off in a fresh namespace, so kube-proxy drops INVALID packets.
  g.chains.add('filter', 'KUBE-FORWARD', rule(filter, { matches: [match(filter, undefined, 'conntrack', '--ctstate', 'INVALID')], target: verdict('DROP') }));
  g.chains.add('filter', 'KUBE-FORWARD', rule(filter, {
    comment: 'kubernetes forwarding rules',
    matches: [match(filter, undefined, 'mark', '--mark', `${g.mark}/${g.mark}`)],
    target: verdict('ACCEPT'),
  }));
  g.chains.add('filter', 'KUBE-FORWARD', rule(filter, {
    comment: 'kubernetes forwarding conntrack rule',
    matches: [match(filter, undefined, 'conntrack', '--ctstate', 'RELATED,ESTABLISHED')],
    target: verdict('ACCEPT'),
  }));
}

/** [table, built-in chain, kube chain, comment, needs ctstate NEW], in kube-proxy's EnsureRule order. */
const JUMPS: [TableName, string, string, string, boolean][] = [
  ['filter', 'INPUT', 'KUBE-EXTERNAL-SERVICES', 'kubernetes externally-visible service portals', true],
  ['filter', 'FORWARD', 'KUBE-EXTERNAL-SERVICES', 'kubernetes externally-visible service portals', true],
  ['filter', 'INPUT', 'KUBE-NODEPORTS', 'kubernetes health check service ports', false],
  ['filter', 'FORWARD', 'KUBE-SERVICES', 'kubernetes service portals', true],
  ['filter', 'OUTPUT', 'KUBE-SERVICES', 'kubernetes service portals', true],
  ['filter', 'FORWARD', 'KUBE-FORWARD', 'kubernetes forwarding rules', false],
  ['filter', 'INPUT', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', true],
  ['filter', 'OUTPUT', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', true],
  ['filter', 'FORWARD', 'KUBE-PROXY-FIREWALL', 'kubernetes load balancer firewall', true],
  ['nat', 'OUTPUT', 'KUBE-SERVICES', 'kubernetes service portals', false],
  ['nat', 'PREROUTING', 'KUBE-SERVICES', 'kubernetes service portals', false],
  ['nat', 'POSTROUTING', 'KUBE-POSTROUTING', 'kubernetes postrouting rules', false],
];

/** The jumps from built-in chains; kubelet's KUBE-FIREWALL jumps come last, as on an AKS node where kubelet made them first. */
export function writeJumps(g: Gen): void {
  for (const [table, from, to, comment, ctNew] of JUMPS) {
    const ctx = table === 'nat' ? g.nat : g.filter;
    const r = rule(ctx, { matches: ctNew ? [match(ctx, undefined, 'conntrack', '--ctstate', 'NEW'), match(ctx, undefined, 'comment', '--comment', comment)] : [match(ctx, undefined, 'comment', '--comment', comment)], target: jump(to) });
    g.chains.chain(table, from).unshift(r);
  }
  if (g.chains.tables.get('filter')?.has('KUBE-FIREWALL'))
    for (const from of ['INPUT', 'OUTPUT']) g.chains.add('filter', from, rule(g.filter, { target: jump('KUBE-FIREWALL') }));
}

/** kube-proxy's monitor keeps an empty KUBE-PROXY-CANARY in mangle, nat and filter to notice flushes. */
export function writeCanaries(g: Gen): void {
  for (const t of ['mangle', 'nat', 'filter'] as const) g.chains.chain(t, 'KUBE-PROXY-CANARY');
}
