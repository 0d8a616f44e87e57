/** Traffic to a Service's cluster IP: KUBE-SERVICES dispatch (nat), or REJECT/DROP (filter) without endpoints. */
import type { Gen, ServiceView } from './context';
import { jump, rule, target, verdict } from './rules';
import { rejectWith } from './marks';

/** The KUBE-SERVICES rule for the cluster IP. */
export function writeClusterIP(g: Gen, v: ServiceView): void {
  const { sp } = v;
  const base = { protocol: sp.protocol, destination: sp.clusterIP, dport: sp.port };
  if (v.hasInternal) {
    g.chains.add('nat', 'KUBE-SERVICES', rule(g.nat, { ...base, comment: `${sp.name} cluster IP`, target: jump(v.internalChain) }));
    return;
  }
  const f = v.internalFilter!;
  g.chains.add('filter', 'KUBE-SERVICES', rule(g.filter, { ...base, comment: f.comment, target: filterTarget(g, f.target) }));
}

/** REJECT (with the family's default reply, as iptables-save prints it) or DROP. */
export function filterTarget(g: Gen, t: 'REJECT' | 'DROP') {
  return t === 'DROP' ? verdict('DROP') : target(g.filter, undefined, 'REJECT', ...rejectWith(g.opts.family));
}

/**
 * The first rule of the internal chain: mark for masquerade what does not come from a pod
 * (off-cluster traffic routed to the service range), or everything with --masquerade-all.
 * Without a cluster CIDR kube-proxy cannot tell pods apart and writes nothing.
 */
export function writeInternalMasquerade(g: Gen, v: ServiceView): void {
  const { sp } = v;
  if (!v.hasInternal) return;
  const base = { comment: `${sp.name} cluster IP`, protocol: sp.protocol, destination: sp.clusterIP, dport: sp.port, target: jump('KUBE-MARK-MASQ') };
  if (g.opts.masqueradeAll) g.chains.add('nat', v.internalChain, rule(g.nat, base));
  else if (g.podCidr) g.chains.add('nat', v.internalChain, rule(g.nat, { ...base, source: g.podCidr, notSource: true }));
}
