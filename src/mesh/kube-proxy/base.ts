/**
 * The chains every kube-proxy node has whatever its Services: KUBE-POSTROUTING, KUBE-MARK-MASQ,
 * KUBE-FORWARD, kubelet's KUBE-FIREWALL duplicate, the canaries, and the jumps from the built-in
 * chains (installed with `iptables -I` one by one, so the last listed lands first).
 */
import type { TableName } from '../../model/ruleset';
import type { Gen } from './context';
import { addrtypeLocal, commentMatch, ctstate, markMatch, setXmark } from './rules';

/** The top-level chains in the order kube-proxy declares them in its restore input. */
export const FILTER_CHAINS = ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL'];
/** The nat table's top-level chains, in the same order. */
export const NAT_CHAINS = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'];

/** Declare the top-level chains and write the rules that do not depend on Services. */
export function writeBase(g: Gen): void {
  for (const c of FILTER_CHAINS) g.chains.chain('filter', c);
  for (const c of NAT_CHAINS) g.chains.chain('nat', c);
  g.chains.add('nat', 'KUBE-POSTROUTING', { matches: markMatch(g.mark, true), jump: 'RETURN' });
  // --xor-mark M is --set-xmark M/0 to the kernel; --or-mark M is --set-xmark M/M.
  g.chains.add('nat', 'KUBE-POSTROUTING', { target: setXmark(g.mark, '0x0') });
  // iptables 1.8.9 has --random-fully, so kube-proxy asks for it.
  g.chains.add('nat', 'KUBE-POSTROUTING', { comment: 'kubernetes service traffic requiring SNAT', target: g.opts.randomFully ? ' -j MASQUERADE --random-fully' : ' -j MASQUERADE' });
  g.chains.add('nat', 'KUBE-MARK-MASQ', { target: setXmark(g.mark, g.mark) });
  if (g.family === 'ipv4' && g.opts.localhostNodePorts) {
    g.chains.add('filter', 'KUBE-FIREWALL', {
      comment: 'block incoming localnet connections',
      destination: '127.0.0.0/8',
      source: '127.0.0.0/8',
      notSource: true,
      matches: ctstate('RELATED,ESTABLISHED,DNAT', true),
      jump: 'DROP',
    });
  }
}

/** The KUBE-FORWARD rules and the final KUBE-SERVICES → KUBE-NODEPORTS rule, written after all Services. */
export function writeTail(g: Gen): void {
  // nodePortAddresses unset: NodePorts on every local address; never on ::1, nor on 127/8 without localhost NodePorts.
  const notLocalhost = g.family === 'ipv6' ? '::1/128' : g.opts.localhostNodePorts ? undefined : '127.0.0.0/8';
  g.chains.add('nat', 'KUBE-SERVICES', {
    comment: 'kubernetes service nodeports; NOTE: this must be the last rule in this chain',
    matches: addrtypeLocal('dst'),
    destination: notLocalhost,
    notDestination: true,
    jump: 'KUBE-NODEPORTS',
  });
  // nf_conntrack_tcp_be_liberal is off in a fresh namespace, so kube-proxy drops INVALID packets.
  g.chains.add('filter', 'KUBE-FORWARD', { matches: ctstate('INVALID'), jump: 'DROP' });
  g.chains.add('filter', 'KUBE-FORWARD', { comment: 'kubernetes forwarding rules', matches: markMatch(g.mark), jump: 'ACCEPT' });
  g.chains.add('filter', 'KUBE-FORWARD', { comment: 'kubernetes forwarding conntrack rule', matches: ctstate('RELATED,ESTABLISHED'), jump: 'ACCEPT' });
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
  for (const [table, from, to, comment, ctNew] of JUMPS)
    g.chains.insert(table, from, { matches: (ctNew ? ctstate('NEW') : '') + commentMatch(comment), jump: to });
  if (g.chains.has('filter', 'KUBE-FIREWALL')) for (const from of ['INPUT', 'OUTPUT']) g.chains.add('filter', from, { jump: 'KUBE-FIREWALL' });
}

/** kube-proxy's monitor keeps an empty KUBE-PROXY-CANARY in mangle, nat and filter to notice flushes. */
export function writeCanaries(g: Gen): void {
  for (const t of ['mangle', 'nat', 'filter'] as const) g.chains.chain(t, 'KUBE-PROXY-CANARY');
}
